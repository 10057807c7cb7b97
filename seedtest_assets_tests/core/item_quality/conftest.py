"""The simulated week every item-quality test reads (computed once per module)."""

from seedtest_assets_tests.core.item_quality.test_assess import week  # noqa: F401
