"""Instants at which tests freeze the code's clock (``settings.frozen_utc_now``).

Tests that depend on "now" freeze it (the ``clock`` fixture of ``conftest.py``) and compute
what they expect from that same clock, never from the real one at import or fixture time.
The instants are in the past (Dagster's partitions follow the real clock: a partition key
must exist at the real time too) and after ``SEEDTEST_PARTITIONS_START``.
"""

from datetime import datetime

#: An ordinary instant: a Wednesday, mid-day UTC.
NOON = datetime(2026, 3, 11, 12, 30)
#: Just after midnight UTC: attempts of 3 minutes ago land on yesterday (a complete day).
JUST_AFTER_MIDNIGHT = datetime(2026, 3, 11, 0, 0, 30)
#: The last instant at which an attempt of 3 minutes ago is yesterday's.
MIDNIGHT_PLUS_2_59 = datetime(2026, 3, 11, 0, 2, 59)
#: Either side of the Monday 00:00 UTC week boundary: the last complete week changes between
#: them (2026-03-02 on Sunday night, 2026-03-09 on Monday morning).
SUNDAY_NIGHT = datetime(2026, 3, 15, 23, 59, 50)
MONDAY_MORNING = datetime(2026, 3, 16, 0, 0, 10)
