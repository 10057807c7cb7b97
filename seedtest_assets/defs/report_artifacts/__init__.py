"""The ``report_artifacts`` Dagster definitions; the computation is in
:mod:`seedtest_assets.core.report_artifacts`."""
