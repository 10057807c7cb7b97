from datetime import datetime, timedelta

import polars as pl
import pytest

from seedtest_assets.core.attempts import REJECT_REASONS, ValidationLimits, validate_attempts
from seedtest_assets.core.attempts.validate import ATTEMPT_COLUMNS, parse_attempts
from seedtest_assets_tests.factories import DAY, at, attempts_frame, planted_day

NOW = datetime(2026, 3, 10)


def with_lookups(frame: pl.DataFrame, known_users=(1, 2, 3), item_topics=None) -> pl.DataFrame:
    """Add the columns the read query's outer joins provide."""
    item_topics = item_topics or {100: 1, 101: 1, 200: 2}
    # Ids are text; the tests name them by number for brevity.
    topics = {str(k): str(v) for k, v in item_topics.items()}
    return frame.with_columns(
        user_known=pl.col("user_id").is_in([str(u) for u in known_users]),
        item_topic_id=pl.col("item_id").replace_strict(
            topics, default=None, return_dtype=pl.String
        ),
    )


def test_every_planted_reason_is_caught_and_nothing_is_lost():
    frame, expected = planted_day()
    result = validate_attempts(with_lookups(frame), now=NOW)

    by_reason = dict(result.rejects.group_by("reason").agg(pl.col("rows").sum()).iter_rows())
    assert by_reason == expected
    assert set(by_reason) <= set(REJECT_REASONS)
    assert sorted(result.valid["id"].to_list()) == [1, 2, 3, 4, 5, 6]
    assert result.valid.height + result.rejected_rows == frame.height


def test_raw_json_keeps_the_rejected_row():
    frame, _ = planted_day()
    rejects = validate_attempts(with_lookups(frame), now=NOW).rejects
    raw = rejects.filter(pl.col("reason") == "response_time_negative")["raw"].item()
    assert '"response_time_ms":-1' in raw and '"id":13' in raw
    conflict = rejects.filter(pl.col("reason") == "duplicate_id_conflict")["raw"].item()
    assert conflict.startswith("[") and conflict.count('"id":17') == 2


def test_future_timestamps_rejected_beyond_tolerance_only():
    frame = attempts_frame(
        [
            {"id": 1, "user_id": 1, "attempted_at": NOW + timedelta(minutes=4)},
            {"id": 2, "user_id": 1, "attempted_at": NOW + timedelta(minutes=6)},
        ]
    )
    result = validate_attempts(with_lookups(frame), now=NOW)
    assert result.valid["id"].to_list() == [1]
    assert result.rejects.select("attempt_id", "reason").rows() == [(2, "future_timestamp")]


def test_a_row_with_two_problems_gets_two_records_but_counts_once():
    frame = attempts_frame(
        [{"id": 7, "user_id": 999, "response_time_ms": -5, "attempted_at": at(DAY, 9)}]
    )
    result = validate_attempts(with_lookups(frame), now=NOW)
    assert sorted(result.rejects["reason"]) == ["response_time_negative", "unknown_user"]
    assert result.rejected_rows == 1 and result.valid.height == 0


def test_kept_copy_of_identical_duplicate_that_is_also_bad():
    row = {"id": 8, "user_id": 999, "attempted_at": at(DAY, 9)}
    result = validate_attempts(with_lookups(attempts_frame([row, row, row])), now=NOW)
    # two extra copies + the kept copy rejected as unknown_user = all three rows
    assert result.rejected_rows == 3 and result.valid.height == 0


@pytest.mark.parametrize("rt, ok", [(0, True), (3_600_000, True), (3_600_001, False)])
def test_response_time_limit_is_inclusive(rt, ok):
    frame = attempts_frame(
        [{"id": 1, "user_id": 1, "response_time_ms": rt, "attempted_at": at(DAY, 9)}]
    )
    result = validate_attempts(with_lookups(frame), now=NOW, limits=ValidationLimits())
    assert (result.valid.height == 1) is ok


def test_empty_input():
    frame = attempts_frame([])
    result = validate_attempts(with_lookups(frame), now=NOW)
    assert result.valid.height == 0 and result.rejects.height == 0 and result.rejected_rows == 0


def as_text(frame: pl.DataFrame) -> pl.DataFrame:
    """The frame as the SQLite read delivers it: every attempt column but id as text."""
    return frame.with_columns(
        [
            pl.col(c).cast(pl.Int8).cast(pl.String)
            if c == "is_correct"
            else pl.col(c).cast(pl.String)
            for c in frame.columns
            if c not in ("id", "user_known", "item_topic_id")
        ]
    )


def test_text_columns_parse_strictly_and_typed_ones_pass_through():
    frame = with_lookups(
        attempts_frame([{"id": i, "user_id": 1, "attempted_at": at(DAY, 9)} for i in range(1, 9)])
    )
    text = as_text(frame).with_columns(
        attempted_at=pl.Series(
            [
                "2026-03-02 09:00:00",
                "2026-03-02T09:00:00.123",
                "2026-03-02 09:00:00.1234567",  # nanoseconds: truncated to microseconds
                "2026-03-02 09:00:00+09:00",  # a zone: not naive UTC
                "2026-03-02 09:00",  # no seconds
                "1772442000",
                "2026-02-30 09:00:00",
                None,
            ]
        ),
        is_correct=pl.Series(["1", "0", "1", "1", "1", "1", "1", "yes"]),
    )
    parsed = parse_attempts(text)
    assert parsed["attempted_at"].to_list() == [
        datetime(2026, 3, 2, 9),
        datetime(2026, 3, 2, 9, 0, 0, 123_000),
        datetime(2026, 3, 2, 9, 0, 0, 123_456),
        None,
        None,
        datetime(2026, 3, 2, 9),
        None,
        None,
    ]
    assert parsed["_unparsed_attempted_at"].to_list() == [False] * 3 + [True] * 2 + [
        False,
        True,
        False,
    ]
    assert parsed["_numeric_ts"].to_list() == [False] * 5 + [True, False, False]
    assert parsed["_bad_value"][7] == "is_correct='yes'"
    assert parsed["is_correct"].to_list()[:2] == [True, False]
    # PostgreSQL's typed frame is left alone.
    typed = parse_attempts(frame)
    assert typed.select(ATTEMPT_COLUMNS).equals(frame.select(ATTEMPT_COLUMNS))
    assert typed["_bad_value"].null_count() == frame.height


def test_an_id_with_copies_outside_the_frame_is_a_conflict_under_each_copy_s_day():
    frame = with_lookups(
        attempts_frame(
            [
                {"id": 1, "user_id": 1, "attempted_at": at(DAY, 9)},
                {"id": 2, "user_id": 1, "attempted_at": at(DAY, 9)},  # a copy elsewhere
                {"id": 3, "user_id": 1, "attempted_at": at(DAY, 10)},
                {"id": 3, "user_id": 1, "attempted_at": at(DAY + timedelta(days=1), 10)},
            ]
        )
    )
    others = pl.DataFrame({"id": [2], "n_other": [2]})
    result = validate_attempts(frame, now=NOW, other_copies=others)
    assert result.valid["id"].to_list() == [1]
    assert result.rejects.select(
        "partition_date", "attempt_id", "reason", "rows", "detail"
    ).rows() == [
        (DAY, 2, "duplicate_id_conflict", 1, "3 differing copies in the table, 1 on this day"),
        (DAY, 3, "duplicate_id_conflict", 1, "2 differing copies in the table, 1 on this day"),
        (
            DAY + timedelta(days=1),
            3,
            "duplicate_id_conflict",
            1,
            "2 differing copies in the table, 1 on this day",
        ),
    ]
    assert result.rejected_rows == 3
    # Without the knowledge of the other copies, id 2 would have been valid.
    assert 2 in validate_attempts(frame, now=NOW).valid["id"].to_list()


def _student_day(n: int, rt: int, user: int = 1, day=DAY, first_id: int = 1) -> list[dict]:
    return [
        {
            "id": first_id + i,
            "user_id": user,
            "response_time_ms": rt,
            "attempted_at": at(day, 1) + timedelta(seconds=i),
        }
        for i in range(n)
    ]


def test_a_student_day_beyond_the_attempt_limit_is_quarantined_whole():
    limits = ValidationLimits(max_attempts_per_student_day=5)
    rows = (
        _student_day(6, 1_000)  # one too many: all six go
        + _student_day(5, 1_000, user=2, first_id=100)  # at the limit: fine
        + _student_day(6, 1_000, day=DAY + timedelta(days=1), first_id=200)  # another day
        + [{"id": 300, "user_id": 1, "item_id": 999, "attempted_at": at(DAY, 2)}]  # not counted
    )
    frame = with_lookups(attempts_frame(rows))
    result = validate_attempts(frame, now=NOW, limits=limits)
    rej = result.rejects.filter(pl.col("reason") == "student_day_attempts")
    assert sorted(rej["attempt_id"]) == list(range(1, 7)) + list(range(200, 206))
    assert rej["detail"][0] == f"student 1 on {DAY}: 6 valid attempts (limit 5)"
    assert set(rej["partition_date"]) == {DAY, DAY + timedelta(days=1)}
    assert sorted(result.valid["id"]) == list(range(100, 105))
    assert result.student_days.rows() == [
        ("1", DAY, 6, 6_000),
        ("1", DAY + timedelta(days=1), 6, 6_000),
    ]
    assert result.valid.height + result.rejected_rows == frame.height


def test_a_student_day_beyond_16_hours_of_study_is_quarantined_whole():
    hour = 3_600_000
    rows = _student_day(17, hour) + _student_day(16, hour, user=2, first_id=100)
    result = validate_attempts(with_lookups(attempts_frame(rows)), now=NOW)
    rej = result.rejects.filter(pl.col("reason") == "student_day_study_time")
    assert sorted(rej["attempt_id"]) == list(range(1, 18))
    assert rej["detail"][0] == f"student 1 on {DAY}: 17.0 h of response time (limit 16 h)"
    assert sorted(result.valid["id"]) == list(range(100, 116))  # exactly 16 h is possible
    assert set(REJECT_REASONS) >= {"student_day_attempts", "student_day_study_time"}


# --------------------------------------------------------------------------- text ids
def test_ids_no_one_could_mean_are_quarantined_with_the_column_and_why():
    long = "u" * 256
    ids = {
        20: ("", "user_id: empty"),
        21: ("   ", "user_id: whitespace only"),
        22: (" u-1", "user_id: leading or trailing whitespace"),
        23: ("u-1\n", "user_id: leading or trailing whitespace"),
        24: ("u-\x001", "user_id: a control character"),
        25: (long, "user_id: 256 characters, more than 255"),
    }
    rows = [{"id": i, "user_id": u, "attempted_at": at(DAY, 9)} for i, (u, _) in ids.items()]
    frame = with_lookups(attempts_frame(rows), known_users=[u for u, _ in ids.values()])
    result = validate_attempts(frame, now=NOW)
    bad = result.rejects.filter(pl.col("reason") == "bad_id").sort("attempt_id")
    assert bad["attempt_id"].to_list() == list(ids)
    assert bad["detail"].to_list() == [why for _, why in ids.values()]
    # The raw row keeps the id exactly as it came (the JSON escapes the control character).
    assert '"user_id":"u-\\u00001"' in bad["raw"][4]
    assert result.valid.height == 0
    assert result.valid.height + result.rejected_rows == frame.height


def test_every_id_column_is_checked_and_detail_names_each_bad_one():
    rows = [{"id": 1, "user_id": 1, "session_id": "", "item_id": 100, "topic_id": " 1"}]
    frame = with_lookups(attempts_frame([{**r, "attempted_at": at(DAY, 9)} for r in rows]))
    bad = validate_attempts(frame, now=NOW).rejects.filter(pl.col("reason") == "bad_id")
    assert bad["detail"].item() == "session_id: empty; topic_id: leading or trailing whitespace"


def test_ids_that_differ_in_case_or_normalisation_or_look_like_sql_or_paths_are_kept_apart():
    import unicodedata

    nfc = unicodedata.normalize("NFC", "학생-é")
    nfd = unicodedata.normalize("NFD", "학생-é")
    assert nfc != nfd
    users = ["U-1", "u-1", nfc, nfd, "1'; DROP TABLE users; --", "../../etc/passwd", "a/b\\c"]
    rows = [{"id": i, "user_id": u, "attempted_at": at(DAY, 9)} for i, u in enumerate(users, 1)]
    frame = with_lookups(attempts_frame(rows), known_users=users)
    result = validate_attempts(frame, now=NOW)
    assert result.rejects.height == 0
    # Byte for byte: nothing trimmed, folded or normalised, each its own student.
    assert result.valid.sort("id")["user_id"].to_list() == users
    assert result.valid["user_id"].n_unique() == len(users)


def test_numeric_ids_from_a_source_become_their_text():
    frame = attempts_frame([{"id": 1, "user_id": 7, "attempted_at": at(DAY, 9)}])
    typed = with_lookups(frame, known_users=[7]).with_columns(
        pl.col("user_id").cast(pl.Int64), pl.col("item_id").cast(pl.Int64)
    )
    result = validate_attempts(typed, now=NOW)
    assert result.valid["user_id"].to_list() == ["7"]
    assert result.valid.schema["item_id"] == pl.String


def _bad_ids_frame() -> pl.DataFrame:
    users = ["", "   ", " u-1", "u-1\n", "u-\x001", "u" * 256, "u-1", "U-1", "학생"]
    rows = [
        {"id": i, "user_id": u, "session_id": ["s", "", " s"][i % 3], "attempted_at": at(DAY, 9)}
        for i, u in enumerate(users * 3, 1)
    ]
    return with_lookups(attempts_frame(rows), known_users=users)


@pytest.mark.parametrize("judge", ["python", "every_row", "distinct"])
@pytest.mark.parametrize("frame", [_bad_ids_frame, lambda: with_lookups(planted_day()[0])])
def test_each_way_of_judging_ids_gives_the_same_result(monkeypatch, judge, frame):
    """Small frames are judged in Python, medium ones row by row in one query, large ones per
    distinct value (validate._id_problems): the same records and rows whichever way."""
    from seedtest_assets.core.attempts import validate

    raw = frame()
    expected = validate_attempts(raw, now=NOW)  # this size: the Python way
    assert raw.height <= validate._JUDGE_IN_PYTHON
    limits = {"python": (10**9, 10**9), "every_row": (0, 10**9), "distinct": (0, 0)}[judge]
    monkeypatch.setattr(validate, "_JUDGE_IN_PYTHON", limits[0])
    monkeypatch.setattr(validate, "_JUDGE_ROWS", limits[1])
    got = validate_attempts(raw, now=NOW)
    order = ["attempt_id", "reason"]
    assert got.rejects.sort(order).equals(expected.rejects.sort(order))
    assert got.valid.sort("id").equals(expected.valid.sort("id"))
    assert got.rejects.filter(pl.col("reason") == "bad_id").height > 0


def test_student_days_are_grouped_when_the_whole_frame_passes_a_limit_but_no_day_does():
    # 2 students x 5 attempts: 10 in the frame, over the limit of 5, but no student-day is.
    limits = ValidationLimits(max_attempts_per_student_day=5)
    rows = _student_day(5, 1_000) + _student_day(5, 1_000, user=2, first_id=100)
    result = validate_attempts(with_lookups(attempts_frame(rows)), now=NOW, limits=limits)
    assert result.rejects.height == 0 and result.valid.height == 10
    assert result.student_days.height == 0
    assert dict(result.student_days.schema) == dict(
        validate_attempts(with_lookups(attempts_frame(rows[:1])), now=NOW).student_days.schema
    )
