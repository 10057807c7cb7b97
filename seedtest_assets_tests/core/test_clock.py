"""The code's one clock, ``settings.utc_now``, and its test-only freeze (in process and, via
``SEEDTEST_FROZEN_NOW``, in subprocesses); off unless a test turns it on."""

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from seedtest_assets.core import settings
from seedtest_assets.core.settings import FROZEN_NOW_ENV, frozen_utc_now, utc_now
from seedtest_assets.defs.automation.sensors import _last_day
from seedtest_assets_tests.clock import JUST_AFTER_MIDNIGHT, NOON

ROOT = Path(__file__).resolve().parents[2]


def real_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def test_unset_it_is_the_real_clock_in_naive_utc(monkeypatch):
    monkeypatch.delenv(FROZEN_NOW_ENV, raising=False)
    before = real_now()
    now = utc_now()
    assert now.tzinfo is None and before <= now <= real_now()


def test_frozen_in_process_moves_only_when_told_and_restores(monkeypatch):
    monkeypatch.delenv(FROZEN_NOW_ENV, raising=False)
    with frozen_utc_now(NOON) as clock:
        assert utc_now() == utc_now() == NOON == clock.now
        assert clock.advance(timedelta(hours=12)) == utc_now() == NOON + timedelta(hours=12)
        with frozen_utc_now(datetime(2026, 3, 11, 21, 30, tzinfo=UTC).astimezone()):
            assert utc_now() == datetime(2026, 3, 11, 21, 30)  # aware: converted to UTC
        assert utc_now() == NOON + timedelta(hours=12)  # nested freeze restored
        assert clock.env() == {FROZEN_NOW_ENV: "2026-03-12T00:30:00"}
    assert settings._frozen is None
    before = real_now()
    assert before <= utc_now() <= real_now()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2026-03-11T12:30:00", NOON),
        ("2026-03-11T21:30:00+09:00", NOON),  # an offset: converted to UTC
        (" 2026-03-11 12:30 ", NOON),
    ],
)
def test_the_environment_variable_freezes_it_read_at_each_call(monkeypatch, raw, expected):
    monkeypatch.setenv(FROZEN_NOW_ENV, raw)
    assert utc_now() == expected
    monkeypatch.setenv(FROZEN_NOW_ENV, "2026-03-11T00:00:30")
    assert utc_now() == JUST_AFTER_MIDNIGHT
    with frozen_utc_now(NOON + timedelta(days=1)):
        assert utc_now() == NOON + timedelta(days=1)  # the in-process freeze comes first
    monkeypatch.setenv(FROZEN_NOW_ENV, "")
    before = real_now()
    assert before <= utc_now() <= real_now()  # empty = unset


def test_a_malformed_value_fails_loudly_instead_of_meaning_real_time(monkeypatch):
    monkeypatch.setenv(FROZEN_NOW_ENV, "yesterday")
    with pytest.raises(ValueError, match=FROZEN_NOW_ENV):
        utc_now()


def test_subprocesses_honour_the_environment_variable():
    code = "from seedtest_assets.core.settings import utc_now; print(utc_now().isoformat())"
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env={**_clean_env(), FROZEN_NOW_ENV: "2026-03-11T00:00:30"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert proc.stdout.strip() == "2026-03-11T00:00:30"
    assert "clock is frozen (test only)" in proc.stderr  # never silent


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != FROZEN_NOW_ENV}


def test_no_deployment_or_laptop_file_turns_it_on():
    files = [
        *(p for p in (ROOT / "deploy").rglob("*") if p.is_file()),
        ROOT / "dagster.yaml",
        ROOT / "workspace.yaml",
        ROOT / "Makefile",
        ROOT / "pyproject.toml",
    ]
    assert len(files) > 5
    assert [str(p) for p in files if FROZEN_NOW_ENV in p.read_text(errors="replace")] == []


def test_the_sensor_asks_our_clock_for_the_last_complete_day():
    assert _last_day(JUST_AFTER_MIDNIGHT).isoformat() == "2026-03-10"
    assert _last_day(JUST_AFTER_MIDNIGHT - timedelta(minutes=1)).isoformat() == "2026-03-09"
    assert _last_day(datetime(2025, 1, 6, 12)) is None  # before the first day ends
