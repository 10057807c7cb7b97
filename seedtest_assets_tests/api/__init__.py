"""Tests of the θ-update service (seedtest_assets/api)."""
