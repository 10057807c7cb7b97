"""SeedTest Analytics: exam attempts -> features, IRT calibration, abilities, KPIs and reports.

The package is a functional core (domain modules that never import Dagster) with a thin
Dagster shell (``assets.py``/``checks.py``/``schedules.py`` beside each domain's core, collected
in :mod:`seedtest_assets.definitions`).
"""
