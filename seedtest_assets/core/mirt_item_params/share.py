"""No one student dominates a calibration: each student's share of the window is capped (no
Dagster).

Marginal maximum likelihood weights every response alike, so a student who answers far more
than anyone else pulls every item they answered towards their own ability. The per-day
plausibility limits (:mod:`seedtest_assets.core.attempts.validate`) quarantine a flood in one day;
this cap bounds what a student can add over a whole window within those limits.

Rule (:func:`cap_student_responses`): after capping, no student keeps more than
``max_share`` (default 3%) as many responses as all the other students together keep, but
every student keeps at least ``floor`` (default 100) responses if they have them. The caps
are a fixed point (each student's cap depends on the others' kept responses, which depend on
their caps), found by iterating from "keep everything"; it converges because the caps only
decrease. Relative to the *others*, a flood cannot raise its own cap. A capped student keeps
responses evenly spread over their window in time order, so the kept ones represent all of
their weeks.

Why these defaults (measured on the generator, every weekly window of each population):

- real students: with 3% no student of a population of 300 or more is ever capped (2,000
  students: the heaviest has 0.3% of the others' responses); 160 students x 2 weeks cap one
  student by 30 responses, 100 students x 12 weeks cap six. 2% would already cap one or two
  students in most 300-student populations, 5% would protect less (below);
- the floor keeps small windows from capping anyone for being merely active (150 students x
  1 week: the heaviest has 54 responses);
- a bot answering at random, 900 responses a day for 20 days (under the per-day limits):
  on 300 students x 4 weeks it moves the link from A 1.13 / B 0.12 to 2.17 / -0.36 and the
  slope correlation with the truth from 0.58 to 0.33; capped at 3% (297 responses) the link
  stays at 1.12 / 0.08 and the correlation at 0.54 (5%: 1.20 / 0.12, 0.54). On 1,000
  students (baseline 1.08 / 0.14, 0.77): uncapped 1.19 / 0.00, 0.50; at 3% 1.08 / 0.13, 0.70
  (5%: 0.69, 2%: 0.74).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

DEFAULT_MAX_SHARE = 0.03
DEFAULT_FLOOR = 100
_MAX_ITERATIONS = 1_000


@dataclass(frozen=True)
class StudentCap:
    """What the cap did to one calibration window.

    Attributes:
        max_share, floor: the rule's parameters.
        capped: one row per capped student: ``user_id``, ``responses`` (valid, in the
            window), ``kept``; sorted by responses, most first.
        responses_before, responses_after: the window's responses.
        largest_share_before, largest_share_after: the largest share of the window one
            student has (kept responses / all kept responses), before and after the cap.
    """

    max_share: float
    floor: int
    capped: pl.DataFrame
    responses_before: int
    responses_after: int
    largest_share_before: float
    largest_share_after: float

    @property
    def applied(self) -> bool:
        return self.capped.height > 0

    def metadata(self) -> dict:
        """For the asset's materialization (JSON-able)."""
        return {
            "max_share_of_others": self.max_share,
            "floor": self.floor,
            "capped_students": self.capped.height,
            "dropped_responses": self.responses_before - self.responses_after,
            "largest_share_before": round(self.largest_share_before, 4),
            "largest_share_after": round(self.largest_share_after, 4),
        }

    def samples(self, n: int = 10) -> list[str]:
        return [
            f"student {r['user_id']}: {r['responses']} -> {r['kept']} responses"
            for r in self.capped.head(n).iter_rows(named=True)
        ]


def student_caps(counts: np.ndarray, max_share: float, floor: int) -> np.ndarray:
    """Responses each student keeps (the fixed point of the rule in the module doc)."""
    counts = np.asarray(counts, dtype=np.int64)
    kept = counts.copy()
    for _ in range(_MAX_ITERATIONS):
        others = kept.sum() - kept
        cap = np.maximum(floor, np.floor(max_share * others).astype(np.int64))
        new = np.minimum(counts, cap)
        if np.array_equal(new, kept):
            return kept
        kept = new
    return kept  # pragma: no cover - the caps only decrease, so this is not reached


def _largest_share(kept: np.ndarray) -> float:
    total = int(kept.sum())
    return float(kept.max() / total) if total else 0.0


def cap_student_responses(
    responses: pl.DataFrame,
    *,
    max_share: float = DEFAULT_MAX_SHARE,
    floor: int = DEFAULT_FLOOR,
) -> tuple[pl.DataFrame, StudentCap]:
    """``responses`` with each student's responses capped (see the module doc).

    Args:
        responses: at least ``user_id``, ``attempted_at`` and ``id`` (the time order of a
            student's responses; ties by id).
        max_share: the most one student may keep, as a share of the others' kept responses.
        floor: responses every student may keep whatever the share.

    Returns:
        The kept rows (the same columns, in the input order) and what was capped.
    """
    if not max_share > 0:
        raise ValueError(f"max_share must be > 0, got {max_share}")
    counts = responses.group_by("user_id").agg(responses=pl.len().cast(pl.Int64)).sort("user_id")
    n = counts["responses"].to_numpy()
    kept = student_caps(n, max_share, floor) if n.size else n
    counts = counts.with_columns(kept=pl.Series(kept, dtype=pl.Int64))
    capped = counts.filter(pl.col("kept") < pl.col("responses"))
    share_before = _largest_share(n) if n.size else 0.0
    share_after = _largest_share(kept) if n.size else 0.0
    out = responses
    if capped.height:
        # Evenly spread over the student's window: row r of n is kept when the running
        # quota floor((r + 1) k / n) steps up, which keeps exactly k rows.
        ranked = (
            responses.with_row_index("_order")
            .join(capped.select("user_id", "responses", "kept"), on="user_id", how="left")
            .sort("user_id", "attempted_at", "id")
            .with_columns(_r=pl.int_range(pl.len()).over("user_id").cast(pl.Int64))
        )
        keep = pl.col("kept").is_null() | (
            ((pl.col("_r") + 1) * pl.col("kept")) // pl.col("responses")
            > (pl.col("_r") * pl.col("kept")) // pl.col("responses")
        )
        out = ranked.filter(keep).sort("_order").select(responses.columns)
    info = StudentCap(
        max_share=max_share,
        floor=floor,
        capped=capped.sort("responses", "user_id", descending=[True, False]),
        responses_before=responses.height,
        responses_after=out.height,
        largest_share_before=share_before,
        largest_share_after=share_after,
    )
    return out, info
