"""Fixtures of the source tests."""

from seedtest_assets_tests.product_source import source_env  # noqa: F401  (fixture)
