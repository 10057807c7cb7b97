"""Weekly item calibration (no Dagster here): ``pipeline.calibrate_week``."""
