"""Ability estimates (no Dagster here): ``pipeline.score_week`` and ``pipeline.score_students``."""
