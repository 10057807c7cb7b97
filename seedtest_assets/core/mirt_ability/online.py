"""Online ability update: re-score students now, answering like the original API (no Dagster).

The original updated a student's theta when a test session completed
(``POST /analysis/irt/update-theta {user_id, session_id?, lookback_days}``) and answered
``{status: ok, user_id, theta, se, model, version, updated_at}`` or
``{status: noop, user_id, message}``. :func:`update_theta` is that operation for any number of
students at once; the attempts sensor's ``student_rescore_job`` (source ``online``),
``seedtest score --user U`` (source ``on_demand``) and the θ-update service
(``seedtest serve``, source ``api``, :mod:`seedtest_assets.api`) all call it.

Each scored student gets a new versioned ``mirt_ability`` row (:func:`.pipeline.score_students`:
the latest calibrated item parameters, EAP over the valid attempts of the last
``lookback_days`` days). A student with no scorable attempt in that window (none at all, all
rejected by validation, or only items not calibrated yet) is a no-op, as is everyone when no
item parameters exist yet: nothing is written for them and nothing fails.

``ENABLE_IRT_ONLINE_UPDATE`` (default on) switches off the *automatic* update only (the
sensor stops requesting it); explicit re-scores still work.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import polars as pl
from sqlalchemy import Engine

from seedtest_assets.core import settings
from seedtest_assets.core.mirt_ability.pipeline import (
    DEFAULT_LOOKBACK_WEEKS,
    ROWS_SCHEMA,
    ScoringBasis,
    score_students,
    scoring_basis,
)

#: Same window as the weekly batch (12 weeks), so an online theta and the next weekly theta
#: rest on the same evidence. The original's examples passed 30.
DEFAULT_LOOKBACK_DAYS = 7 * DEFAULT_LOOKBACK_WEEKS

ENABLE_ENV = "ENABLE_IRT_ONLINE_UPDATE"
_FALSE = {"0", "false", "no", "off"}


def online_updates_enabled(environ: Mapping[str, str] | None = None) -> bool:
    """``ENABLE_IRT_ONLINE_UPDATE``: on unless set to 0/false/no/off (any case)."""
    return (settings.env(ENABLE_ENV, environ) or "true").lower() not in _FALSE


@dataclass(frozen=True)
class ThetaResult:
    """One student's answer, with the fields of the original API.

    Attributes:
        status: ``"ok"`` (a row was written) or ``"noop"`` (nothing to score).
        theta, se: ability and standard error on the calibration's theta scale (``ok`` only).
        model, version: IRT model and item-parameter version used (``ok`` only).
        updated_at: the row's ``fitted_at``, naive UTC (``ok`` only).
        message: why nothing was written (``noop`` only).
    """

    user_id: str
    status: str
    theta: float | None = None
    se: float | None = None
    model: str | None = None
    version: str | None = None
    updated_at: datetime | None = None
    n_responses: int | None = None
    message: str | None = None

    def to_api(self) -> dict[str, object]:
        """The original API's JSON body (``updated_at`` as ISO-8601 UTC with ``Z``)."""
        if self.status != "ok":
            return {"status": self.status, "user_id": self.user_id, "message": self.message}
        return {
            "status": "ok",
            "user_id": self.user_id,
            "theta": self.theta,
            "se": self.se,
            "model": self.model,
            "version": self.version,
            "updated_at": self.updated_at.isoformat() + "Z" if self.updated_at else None,
        }


@dataclass(frozen=True)
class OnlineUpdate:
    """Everything one :func:`update_theta` call did.

    Attributes:
        results: one per distinct requested student, in request order.
        rows: the ``mirt_ability`` rows written (``ROWS_SCHEMA``), one per ``ok`` result.
        version: item-parameter version used (``None`` when nothing is calibrated).
    """

    results: list[ThetaResult]
    rows: pl.DataFrame
    version: str | None

    @property
    def scored(self) -> list[str]:
        return [r.user_id for r in self.results if r.status == "ok"]

    @property
    def noop(self) -> list[str]:
        return [r.user_id for r in self.results if r.status != "ok"]


def update_theta(
    engine: Engine,
    user_ids: Sequence[str],
    *,
    now: datetime,
    model: str = "2PL",
    lookback_days: int = DEFAULT_LOOKBACK_DAYS,
    source: str = "online",
    basis: ScoringBasis | None = None,
) -> OnlineUpdate:
    """Re-score ``user_ids`` now and append one versioned ``mirt_ability`` row per student.

    Args:
        engine: the warehouse.
        user_ids: students (duplicates are scored once).
        now: the scoring time, naive UTC: the window is the ``lookback_days`` days up to and
            including ``now``'s day, and ``fitted_at`` / ``updated_at`` is ``now``.
        model: the IRT model whose latest calibrated item parameters are used.
        lookback_days: window length in days (>= 1).
        source: ``mirt_ability.source`` of the rows (``online``, ``on_demand`` or ``api``).
        basis: the item bank and prior to score with (:func:`.pipeline.scoring_basis`; the
            θ-update service keeps one in memory); None loads the latest now.

    Returns:
        :class:`OnlineUpdate`; students without scorable attempts are ``noop`` results.
    """
    if lookback_days < 1:
        raise ValueError("lookback_days must be >= 1")
    ids = list(dict.fromkeys(str(u) for u in user_ids))
    empty = pl.DataFrame(schema=ROWS_SCHEMA)
    if not ids:
        return OnlineUpdate([], empty, None)
    if basis is None:
        basis = scoring_basis(engine, model, now.date())
    if basis is None:
        msg = f"no {model} item parameters calibrated yet: nothing to score with"
        return OnlineUpdate([ThetaResult(u, "noop", message=msg) for u in ids], empty, None)
    run = score_students(
        engine,
        ids,
        now=now,
        model=model,
        lookback_days=lookback_days,
        source=source,
        basis=basis,
    )
    by_user = {str(r["user_id"]): r for r in run.rows.iter_rows(named=True)}
    results = []
    for u in ids:
        r = by_user.get(u)
        if r is None:
            results.append(
                ThetaResult(
                    u,
                    "noop",
                    message=f"no scorable attempts for user {u} in the last {lookback_days} "
                    f"days: theta not updated",
                )
            )
            continue
        results.append(
            ThetaResult(
                u,
                "ok",
                theta=float(r["theta"]),
                se=float(r["se"]),
                model=str(r["model"]),
                version=str(r["version"]),
                updated_at=r["fitted_at"],
                n_responses=int(r["n_responses"]),
            )
        )
    return OnlineUpdate(results, run.rows, run.version)
