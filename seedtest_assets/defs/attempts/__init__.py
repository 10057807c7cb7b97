"""The ``attempts`` Dagster definitions; the computation is in
:mod:`seedtest_assets.core.attempts`."""
