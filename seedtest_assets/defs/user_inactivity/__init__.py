"""The ``user_inactivity`` Dagster definitions; the computation is in
:mod:`seedtest_assets.core.user_inactivity`."""
