"""The Dagster shell, in dg's project layout, loaded by :mod:`seedtest_assets.definitions`.

Per-domain ``assets.py`` and ``checks.py``; ``automation/`` (jobs, schedules, the sensor);
``resources.py``; ``partitions.py``. Each reads through resources, calls the core, writes and
attaches metadata.
"""
