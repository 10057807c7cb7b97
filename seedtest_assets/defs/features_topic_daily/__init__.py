"""The ``features_topic_daily`` Dagster definitions; the computation is in
:mod:`seedtest_assets.core.features_topic_daily`."""
