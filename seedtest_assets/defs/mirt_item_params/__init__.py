"""The ``mirt_item_params`` Dagster definitions; the computation is in
:mod:`seedtest_assets.core.mirt_item_params`."""
