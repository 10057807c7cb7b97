"""Reading a student's stored θ (no scoring, no writes): what ``seedtest theta`` prints.

Two questions, both answered from ``mirt_ability``:

- *this week's* θ: the ``weekly`` row of ``week_start`` (the batch's θ at the end of that week,
  the one the week's KPIs and report show);
- *the current* θ: the student's newest row of any source (``weekly``, ``online`` or
  ``on_demand``), i.e. the view ``mirt_ability_latest`` (migration 0002, newest ``fitted_at``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Engine

from seedtest_assets.core.mirt_ability import table
from seedtest_assets.core.mirt_ability.online import ThetaResult


@dataclass(frozen=True)
class StoredTheta:
    """One stored ``mirt_ability`` row: the student's θ, SE and where it came from."""

    user_id: str
    week_start: date
    theta: float
    se: float
    model: str
    version: str
    source: str
    fitted_at: datetime

    def to_api(self) -> dict[str, object]:
        """``{status: ok, user_id, theta, se, model, version, week_start, source, updated_at}``:
        the re-score answer's fields (``updated_at`` = ``fitted_at`` as ISO-8601 UTC with
        ``Z``, formatted by :meth:`ThetaResult.to_api`) plus the row's week and source."""
        body = ThetaResult(
            self.user_id,
            "ok",
            theta=self.theta,
            se=self.se,
            model=self.model,
            version=self.version,
            updated_at=self.fitted_at,
        ).to_api()
        updated_at = body.pop("updated_at")
        return {
            **body,
            "week_start": self.week_start.isoformat(),
            "source": self.source,
            "updated_at": updated_at,
        }


def stored_theta(
    engine: Engine, user_id: str, week_start: date | None = None
) -> StoredTheta | None:
    """The student's weekly θ of ``week_start``, or (``None``) their current θ; None: no row.

    A re-run week has one weekly row; should there ever be more, the newest counts.
    """
    with engine.connect() as conn:
        row = table.read_stored_theta(conn, user_id, week_start)
    if row is None:
        return None
    return StoredTheta(
        user_id=str(row["user_id"]),
        week_start=row["week_start"],
        theta=float(row["theta"]),
        se=float(row["se"]),
        model=str(row["model"]),
        version=str(row["version"]),
        source=str(row["source"]),
        fitted_at=row["fitted_at"],
    )
