"""The ``topic_ability`` Dagster definitions; the computation is in
:mod:`seedtest_assets.core.topic_ability`."""
