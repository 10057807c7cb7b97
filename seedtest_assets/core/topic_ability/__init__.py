"""Per-topic ability, a stored weekly output (no Dagster here): ``pipeline.materialize_week``
computes and stores a week; ``table`` owns every statement against ``topic_ability``."""
