"""The ``weekly_kpi`` Dagster definitions; the computation is in
:mod:`seedtest_assets.core.weekly_kpi`."""
