"""The owner of the ``truth_*`` tables' reads: the synthetic generator's ground truth.

:func:`~seedtest_assets.core.synthetic.load.load` writes them with the population; the demo's
comparison with the estimates (``core/weekly_kpi/truth.py`` does the arithmetic) reads them
here. They never exist in production.
"""

from __future__ import annotations

from datetime import date

import polars as pl
from sqlalchemy import Connection, select

from seedtest_assets.core.warehouse import read_frame
from seedtest_assets.core.warehouse import schema as s


def read_truth_items(conn: Connection) -> pl.DataFrame:
    """Every generated item: ``item_id, topic_id, model`` (2PL or 3PL), ``a, b, c``."""
    return read_frame(conn, select(s.truth_items))


def read_truth_users(conn: Connection) -> pl.DataFrame:
    """Every generated student: ``user_id, theta0, growth_per_week`` (theta units per active
    week), ``churn_week`` (first Monday without activity; null = stayed), ``reached_goal``."""
    return read_frame(conn, select(s.truth_users))


def read_truth_theta(conn: Connection, week_start: date | None = None) -> pl.DataFrame:
    """``user_id, week_start, theta``: the true ability per student-week (of ``week_start``
    only, if given)."""
    t = s.truth_theta_weekly
    stmt = select(t)
    if week_start is not None:
        stmt = stmt.where(t.c.week_start == week_start)
    return read_frame(conn, stmt)
