"""``item_quality``: each week's item bank judged as a psychometrician would (no Dagster)."""
