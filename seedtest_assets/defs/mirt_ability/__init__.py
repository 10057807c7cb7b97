"""The ``mirt_ability`` Dagster definitions; the computation is in
:mod:`seedtest_assets.core.mirt_ability`."""
