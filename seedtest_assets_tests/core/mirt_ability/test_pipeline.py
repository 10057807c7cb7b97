"""The versioned history and the mirt_ability_latest view, on both backends."""

from datetime import date, datetime

import polars as pl
from sqlalchemy import text

from seedtest_assets.core.warehouse import insert_frame, make_engine, transaction
from seedtest_assets.core.warehouse import schema as s


def test_latest_view_returns_each_students_newest_row(warehouse_url):
    rows = pl.DataFrame(
        {
            "user_id": [1, 1, 1, 2],
            "week_start": [date(2026, 3, 2), date(2026, 3, 9), date(2026, 3, 9), date(2026, 3, 2)],
            "theta": [0.1, 0.2, 0.35, -1.0],
            "se": [0.4, 0.35, 0.3, 0.5],
            "model": ["2PL"] * 4,
            "version": ["2PL@2026-03-02", "2PL@2026-03-09", "2PL@2026-03-09", "2PL@2026-03-02"],
            "source": ["weekly", "weekly", "online", "weekly"],
            "n_responses": [10, 20, 25, 8],
            "fitted_at": [
                datetime(2026, 3, 9, 3, 10),
                datetime(2026, 3, 16, 3, 10),
                datetime(2026, 3, 17, 18, 0),
                datetime(2026, 3, 9, 3, 10),
            ],
        }
    )
    engine = make_engine(warehouse_url)
    with transaction(engine) as conn:
        insert_frame(conn, s.mirt_ability, rows)
    with engine.connect() as conn:
        latest = conn.execute(
            text("SELECT user_id, theta, source FROM mirt_ability_latest ORDER BY user_id")
        ).all()
        history = conn.execute(text("SELECT count(*) FROM mirt_ability")).scalar_one()
    engine.dispose()
    assert [tuple(r) for r in latest] == [("1", 0.35, "online"), ("2", -1.0, "weekly")]
    assert history == 4  # the history is kept
