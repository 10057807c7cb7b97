"""The partition model, as decided with measurements in docs/adr/0001-partitions.md.

- ``daily``: one partition per UTC day, for ``features_topic_daily`` and ``user_inactivity``.
  A range of days is one vectorized run (``DAILY_BACKFILL`` = ``BackfillPolicy.single_run``).
- ``weekly``: Monday-to-Sunday UTC weeks keyed by the Monday, for ``weekly_kpi``,
  ``mirt_item_params``, ``mirt_ability``, ``topic_ability`` and ``report_artifacts``: each
  week's batch covers the whole population in one run; in a backfill one week per run
  (``WEEKLY_BACKFILL``; weeks build on earlier weeks, e.g. calibration anchors on last week's
  items). Weekly assets read their
  days through the default time-window mapping (a week = its 7 daily partitions). The week in
  progress is a partition too (``end_offset=1``): ``weekly_kpi`` refreshes it every day. The
  Monday schedules target the week that just ended (:func:`last_complete_week`), so the
  calibration and the reports only ever run on complete weeks unless someone asks.
- ``users``: a dynamic partition per student (key = the student's id: ``str(user_id)`` for an
  integer, the text id verbatim when Dagster can take it, :func:`user_partition_key`),
  registered by the attempts sensor, for the per-student assets under the ``student/`` key prefix
  (``student/mirt_ability``, ``student/report_artifacts``): where a person sees one student's
  state and re-scores or re-renders one student. The weekly batch and the sensor's burst run
  record per-student materializations in bulk inside their own run (1 run, not 1 per
  student); backfills over ``users`` are for a handful of students only (Dagster launches one
  run per non-contiguous key).

Measured predictions (ADR): weekly batch = 1 run per week; a burst of 1,000 finished sessions =
1 run per sensor tick; one student = 1 run; a backfill of k weeks with their days from the UI
= 1 run over the days, then 1 per week (two steps: the dialog takes one partitions definition
at its roots; ADR Amendment 3); the same in one API request = 1 + k to 1 + 5k runs (five
weekly assets, Amendment 4).
"""

from __future__ import annotations

import numbers
import re
import unicodedata
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from typing import Any

import dagster as dg

from seedtest_assets.core import settings
from seedtest_assets.core.ids import shown

#: First partition (a Monday): where the data start (``settings.partitions_start``), so the UI
#: shows no "missing" partitions before them and backfills never walk into empty weeks.
PARTITIONS_START = settings.partitions_start().isoformat()

daily = dg.DailyPartitionsDefinition(start_date=PARTITIONS_START, timezone="UTC")

# day_offset=1: weeks start on Monday, as the original's --week YYYY-MM-DD (a Monday).
# end_offset=1: the week in progress exists as a partition (the daily KPI refresh). All weekly
# assets share this one definition so a backfill can group a week's assets into one run (ADR
# 0001, Amendment 3).
weekly = dg.WeeklyPartitionsDefinition(
    start_date=PARTITIONS_START, day_offset=1, timezone="UTC", end_offset=1
)

users = dg.DynamicPartitionsDefinition(name="users")

DAILY_BACKFILL = dg.BackfillPolicy.single_run()
WEEKLY_BACKFILL = dg.BackfillPolicy.multi_run(max_partitions_per_run=1)
#: One run per contiguous key range (Dagster's behaviour): fine for one student or a handful.
USERS_BACKFILL = dg.BackfillPolicy.single_run()


#: Dagster Beta APIs this code location uses on purpose, and why. Everything else Beta or
#: Preview is an error in the tests (pyproject's filterwarnings).
ACCEPTED_BETA: dict[str, str] = {
    "backfill_policy": "a range of days is one vectorized run and weeks run one per run "
    "(ADR 0001): measured, and the run counts in the docs depend on it",
    "allow_nonexistent_upstream_partitions": "windows reaching back (calibration links to the "
    "previous week, features and KPIs read earlier days): the first partitions have no "
    "earlier ones and must still run",
    "`owners` of initializer `SensorDefinition.__init__`": "not ours (we set no owners): "
    "Dagster passes owners=None when it resolves a sensor's resources; pyproject's "
    "filterwarnings lets exactly this message through",
}


@contextmanager
def accepted_beta(name: str) -> Iterator[None]:
    """Use the Dagster Beta feature ``name`` (a key of :data:`ACCEPTED_BETA`) without its
    warning; any other Beta warning inside still surfaces."""
    if name not in ACCEPTED_BETA:
        raise KeyError(f"{name!r} is not an accepted Beta feature (see ACCEPTED_BETA)")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=f".*{re.escape(name)}", category=dg.BetaWarning)
        yield


def asset_with_backfill_policy(
    *, backfill_policy: dg.BackfillPolicy, **kwargs: Any
) -> Callable[[Callable[..., Any]], dg.AssetsDefinition]:
    """``dg.asset(backfill_policy=..., **kwargs)``: Dagster's asset decorator, with the Beta
    ``backfill_policy`` accepted (:data:`ACCEPTED_BETA`)."""
    with accepted_beta("backfill_policy"):
        return dg.asset(backfill_policy=backfill_policy, **kwargs)


def window_back(start_offset: int, end_offset: int) -> dg.TimeWindowPartitionMapping:
    """Read the partitions ``start_offset..end_offset`` relative to this one (e.g. -1, -1: the
    previous week), where the window may reach before the first partition (the early
    partitions still run, on what exists)."""
    with accepted_beta("allow_nonexistent_upstream_partitions"):
        return dg.TimeWindowPartitionMapping(
            start_offset=start_offset,
            end_offset=end_offset,
            allow_nonexistent_upstream_partitions=True,
        )


#: Substrings Dagster refuses in partition keys (``INVALID_PARTITION_SUBSTRINGS`` of
#: ``dagster._core.definitions.partitions.utils.base``, enforced for static partitions): ``...``
#: separates a range's ends (UI, ``--partition-range``), the controls do not display in the UI.
#: Dagster does not check dynamic keys at all; we hold them to the same rule.
FORBIDDEN_KEY_SUBSTRINGS = ("...", "\a", "\b", "\f", "\n", "\r", "\t", "\v", "\0")
#: Longest ``users`` key (characters). An OIDC ``sub`` has at most 255 ASCII characters; 255
#: characters are at most 1,020 UTF-8 bytes, far inside PostgreSQL's 2,704-byte b-tree entry
#: that Dagster's unique index on (partitions_def_name, partition) and its event-log index on
#: (asset_key, event type, partition) must hold (a ~2,690-byte key already fails there).
MAX_USER_KEY_CHARS = 255


#: Printable ASCII without "...", the shape of nearly every real id: accepted without the
#: per-character Unicode scan (a sensor tick checks every id of up to 100,000 attempts).
_PLAIN_KEY = re.compile(rf"(?!.*\.\.\.)[ -~]{{1,{MAX_USER_KEY_CHARS}}}")


def _user_key_problem(key: str) -> str | None:
    """Why ``key`` cannot be a ``users`` partition key, or None."""
    if _PLAIN_KEY.fullmatch(key):
        return None
    if not key:
        return "it is empty (Dagster treats an empty partition key as no partition)"
    if len(key) > MAX_USER_KEY_CHARS:
        return f"it has {len(key):,} characters, more than {MAX_USER_KEY_CHARS}"
    found = [s for s in FORBIDDEN_KEY_SUBSTRINGS if s in key]
    if found:
        return f"it contains {found!r} (Dagster reserves '...' for ranges; no control characters)"
    for char in key:
        category = unicodedata.category(char)
        if category == "Cc":
            return f"it contains the control character {char!r}"
        if category == "Cs":
            return f"it contains the lone surrogate {char!r} (not valid UTF-8)"
    return None


def is_valid_user_partition_key(user_id: int | str) -> bool:
    """True when :func:`user_partition_key` accepts ``user_id``."""
    if isinstance(user_id, str):
        return _user_key_problem(user_id) is None
    return isinstance(user_id, numbers.Integral)


def user_partition_key(user_id: int | str) -> str:
    """The ``users`` partition key of a student: the product's own id, so an operator finds a
    student in the UI by the id they know.

    An integer is ``str(int(user_id))`` (as always). A text id is the key verbatim when Dagster
    can take it: 1 to :data:`MAX_USER_KEY_CHARS` characters, none of Dagster's forbidden
    substrings (:data:`FORBIDDEN_KEY_SUBSTRINGS`: ``...`` and control characters), no other
    control character (Unicode ``Cc``) and no lone surrogate. Anything else raises
    ``ValueError`` naming the id and the rule; nothing is rewritten, so a key is always exactly
    an id (docs/operations.md, "users partitions").
    """
    if isinstance(user_id, str):
        problem = _user_key_problem(user_id)
        if problem is None:
            return user_id
        raise ValueError(
            f"student id {shown(user_id)} cannot be a 'users' partition key: {problem}. A key "
            f"is the id itself: 1-{MAX_USER_KEY_CHARS} characters, no '...', no control characters"
        )
    if isinstance(user_id, numbers.Integral):
        return str(int(user_id))
    raise TypeError(f"a student id is text or an integer, got {type(user_id).__name__}")


def week_key(day: date) -> str:
    """The ``weekly`` partition key (the Monday, ISO) of the week containing ``day``."""
    return (day - timedelta(days=day.weekday())).isoformat()


def last_complete_week(now: datetime) -> str:
    """The ``weekly`` key of the last week that has fully ended at ``now`` (UTC)."""
    return week_key(now.date() - timedelta(days=7))


def partition_days(context: dg.AssetExecutionContext) -> tuple[date, date]:
    """The run's time partitions as UTC days ``[start, end)`` (one partition or a range)."""
    window = context.partition_time_window
    return window.start.date(), window.end.date()
