"""The ``item_quality`` Dagster definitions; the computation is in
:mod:`seedtest_assets.core.item_quality`."""
