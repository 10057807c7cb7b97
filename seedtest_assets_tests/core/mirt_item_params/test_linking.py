import polars as pl
import pytest

from seedtest_assets.core.mirt_item_params.linking import (
    MIN_COMMON_ITEMS,
    apply_link,
    mean_sigma_link,
)


def items(b, a=None, flagged=None):
    n = len(b)
    return pl.DataFrame(
        {
            "item_id": list(range(n)),
            "a": a or [1.0] * n,
            "b": b,
            "c": [0.0] * n,
            "d": [-x for x in b],
            "flagged": flagged or [False] * n,
        }
    )


def test_recovers_a_known_linear_transformation():
    new_b = [(-1.5 + 0.2 * i) for i in range(15)]
    previous = items([2 * b + 1 for b in new_b])
    link = mean_sigma_link(items(new_b), previous)
    assert pytest.approx(2.0) == link.A and pytest.approx(1.0) == link.B
    assert link.common == 15
    linked = apply_link(items(new_b, a=[1.5] * 15), link)
    assert linked["b"].to_list() == pytest.approx(previous["b"].to_list())
    assert linked["a"].to_list() == pytest.approx([0.75] * 15)  # a / A
    # d stays consistent with the slope-intercept form: d = -a b
    assert (linked["d"] + linked["a"] * linked["b"]).abs().max() == pytest.approx(0.0)


def test_an_outlier_item_does_not_distort_the_link():
    new_b = [(-2 + 0.3 * i) for i in range(15)]
    new = items([*new_b, -178.0], a=[1.0] * 15 + [0.006])
    previous = items([*new_b, 3.0])
    link = mean_sigma_link(new, previous)
    assert pytest.approx(1.0) == link.A and pytest.approx(0.0) == link.B and link.common == 15


def test_flagged_items_are_not_used_and_too_few_common_items_give_identity():
    b = [float(i) / 4 for i in range(MIN_COMMON_ITEMS)]
    flagged = [True] + [False] * (MIN_COMMON_ITEMS - 1)
    link = mean_sigma_link(items(b, flagged=flagged), items([x + 0.5 for x in b]))
    assert link.identity and link.common == MIN_COMMON_ITEMS - 1
