"""Ids of any dtype (data.IdCodes): integers of any width, strings, categoricals, enums give
the same calibration, scores and growth as integer ids, keyed by the original ids in their
original dtype; null ids and ids whose dtype cannot be matched raise a clear ValueError."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from seedtest_assets.core.irt import ItemBank, calibrate, score, simulate
from seedtest_assets.core.irt.data import IdCodes, response_arrays
from seedtest_assets.core.irt.growth import score_growth


@pytest.mark.parametrize(
    "series",
    [
        pl.Series("x", [9, 5, 12, 5, 7, 9, 9], dtype=pl.Int32),
        pl.Series("x", [3, 3, 8, 200], dtype=pl.UInt8),
        pl.Series("x", ["b", "a", "c", "a", "b"]),  # unsorted strings: hash pass
        pl.Series("x", ["a", "a", "b", "d", "d"]),  # sorted strings: running count
        pl.Series("x", ["학생", "z", "é", "Z", "a", "\U0001f600", "e\u0301", "é"]),  # code points
        pl.Series("x", ["z", "é", "a", "Z", "z"]).cast(pl.Categorical),
        pl.Series("x", ["lo", "hi", "lo", "mid"]).cast(pl.Enum(["lo", "mid", "hi"])),
        pl.Series("x", [date(2026, 1, 3), date(2026, 1, 1), date(2026, 1, 3)]),
    ],
    ids=["int32", "uint8", "str", "str-sorted", "str-unicode", "categorical", "enum", "date"],
)
@pytest.mark.parametrize("small_in_python", [True, False])
def test_encode_decode_round_trip_in_the_original_dtype(monkeypatch, series, small_in_python):
    """A few text ids are numbered in Python, more by polars: the same codes either way."""
    from seedtest_assets.core.irt import data

    if not small_in_python:
        monkeypatch.setattr(data, "ENCODE_IN_PYTHON", 0)
    codes, ids = IdCodes.encode(series)
    assert codes.dtype == np.int64
    assert ids.ids.dtype == series.dtype
    assert ids.ids.to_list() == series.unique().sort().to_list()  # polars' order of the dtype
    assert ids.decode(codes).to_list() == series.to_list()
    assert ids.decode(codes).dtype == series.dtype
    np.testing.assert_array_equal(codes, series.rank("dense").to_numpy() - 1)


@pytest.fixture(scope="module")
def id_forms():
    """The same simulated responses with integer, zero-padded string (same order as the
    integers), UUID (an unrelated order) and categorical ids, and the id maps."""
    responses, items, _ = simulate(1_500, 60, 20, seed=4)
    rng = np.random.default_rng(0)
    users = responses["user_id"].unique().sort()
    user_map = pl.DataFrame(
        {
            "user_id": users,
            "padded": [f"u-{i:06d}" for i in range(users.len())],
            "uuid": [str(uuid.UUID(bytes=rng.bytes(16), version=4)) for _ in range(users.len())],
        }
    )
    item_map = pl.DataFrame(
        {"item_id": items["item_id"], "text": [f"item-{i:04d}" for i in range(items.height)]}
    )
    joined = responses.join(user_map, on="user_id").join(item_map, on="item_id")
    forms = {
        "int": responses,
        "padded": joined.select(user_id="padded", item_id="text", is_correct="is_correct"),
        "uuid": joined.select(user_id="uuid", item_id="text", is_correct="is_correct"),
    }
    forms["categorical"] = forms["uuid"].with_columns(
        pl.col("user_id", "item_id").cast(pl.Categorical)
    )
    return forms, user_map, item_map, items


# Same order of users and items as the integers: the very same arithmetic, bit for bit. UUIDs
# order users differently, so sums over users run in another order (rounding only).
TOLERANCE = {"padded": 0.0, "uuid": 1e-8, "categorical": 1e-8}


@pytest.mark.parametrize("form", ["padded", "uuid", "categorical"])
def test_calibration_and_scores_equal_integer_ids(id_forms, form):
    forms, user_map, item_map, _ = id_forms
    responses = forms[form]
    user_col = "padded" if form == "padded" else "uuid"
    base = calibrate(forms["int"], max_cycles=40)
    cal = calibrate(responses, max_cycles=40)
    assert cal.items.schema["item_id"] == responses.schema["item_id"]
    assert cal.iterations == base.iterations
    got = item_map.join(
        cal.items.with_columns(pl.col("item_id").cast(pl.String)),
        left_on="text",
        right_on="item_id",
    )
    want = base.items.join(got.select("item_id"), on="item_id")
    got = got.sort("item_id")
    for col in ("a", "b", "d", "c"):
        np.testing.assert_allclose(got[col], want[col], rtol=0, atol=TOLERANCE[form])
    assert got["n_responses"].to_list() == want["n_responses"].to_list()
    assert got["flag_reason"].to_list() == want["flag_reason"].to_list()

    for method in ("EAP", "MAP", "ML"):
        ref = score(forms["int"], base.items, method=method)
        out = score(responses, cal.items, method=method)
        assert out.schema["user_id"] == responses.schema["user_id"]
        assert out["user_id"].to_list() == sorted(out["user_id"].to_list())
        keyed = out.with_columns(pl.col("user_id").cast(pl.String)).join(
            user_map.select("user_id", key=user_col), left_on="user_id", right_on="key"
        )
        keyed = keyed.select(pl.col("user_id_right").alias("user_id"), "theta", "se").sort(
            "user_id"
        )
        assert keyed.height == ref.height
        np.testing.assert_allclose(keyed["theta"], ref["theta"], rtol=0, atol=10 * TOLERANCE[form])
        np.testing.assert_allclose(keyed["se"], ref["se"], rtol=0, atol=10 * TOLERANCE[form])


@pytest.mark.parametrize("dtype", [pl.Int32, pl.UInt32, pl.Int16])
def test_integer_ids_of_any_width_keep_their_dtype(id_forms, dtype):
    responses = id_forms[0]["int"].filter(pl.col("item_id") < 1200)
    narrow = responses.with_columns(
        pl.col("user_id") - 1_000_000, pl.col("item_id").cast(dtype)
    ).with_columns(pl.col("user_id").cast(dtype))
    cal, ref = calibrate(narrow, max_cycles=5), calibrate(responses, max_cycles=5)
    assert cal.items.schema["item_id"] == dtype
    assert cal.items.drop("item_id").equals(ref.items.drop("item_id"))
    out = score(narrow, cal.items)
    assert out.schema["user_id"] == dtype
    assert out.drop("user_id").equals(score(responses, ref.items).drop("user_id"))


def test_string_anchors_fix_items_and_extra_anchors_keep_the_dtype(id_forms):
    forms, _, item_map, items = id_forms
    truth = items.join(item_map, on="item_id").select(item_id="text", a="a", d="d", c="c")
    anchors = pl.concat(
        [
            truth.head(20),
            pl.DataFrame({"item_id": ["new-item"], "a": [1.3], "d": [0.2], "c": [0.0]}),
        ]
    )
    for responses, fixed in (
        (forms["padded"], anchors),
        (forms["padded"], anchors.with_columns(pl.col("item_id").cast(pl.Categorical))),
        (forms["categorical"], anchors),  # String anchors, categorical responses
    ):
        cal = calibrate(responses, fixed_items=fixed, max_cycles=20)
        assert cal.items.schema["item_id"] == responses.schema["item_id"]
        got = cal.items.filter(pl.col("fixed")).with_columns(pl.col("item_id").cast(pl.String))
        want = anchors.sort("item_id")
        assert got["item_id"].sort().to_list() == want["item_id"].to_list()
        got = got.sort("item_id")
        np.testing.assert_array_equal(got["a"], want["a"])
        np.testing.assert_array_equal(got["d"], want["d"])
        extra = got.filter(pl.col("item_id") == "new-item")
        assert extra["n_responses"].to_list() == [0]


def test_anchors_whose_dtype_cannot_match_raise_a_clear_error(id_forms):
    forms, _, _, items = id_forms
    with pytest.raises(
        ValueError, match=r"fixed_items\.item_id \(Int64\).*responses\.item_id \(String\)"
    ):
        calibrate(forms["padded"], fixed_items=items.head(5), max_cycles=2)
    text_anchors = items.head(5).with_columns(pl.col("item_id").cast(pl.String))
    with pytest.raises(ValueError, match=r"fixed_items\.item_id \(String\).*\(Int64\)"):
        calibrate(forms["int"], fixed_items=text_anchors, max_cycles=2)
    with pytest.raises(
        ValueError, match=r"responses\.item_id \(String\).*items\.item_id \(Int64\)"
    ):
        score(forms["padded"], items)


def test_null_ids_raise_with_their_count(id_forms):
    responses = id_forms[0]["padded"]
    holes = responses.with_columns(
        user_id=pl.when(pl.int_range(pl.len()) % 100 == 0).then(None).otherwise("user_id")
    )
    n_null = holes["user_id"].null_count()
    with pytest.raises(ValueError, match=rf"responses\.user_id has {n_null} null"):
        calibrate(holes)
    with pytest.raises(ValueError, match=rf"responses\.user_id has {n_null} null"):
        score(holes, calibrate(responses, max_cycles=2).items)
    missing_item = responses.with_columns(item_id=pl.lit(None, dtype=pl.String)).head(3)
    with pytest.raises(ValueError, match=r"responses\.item_id has 3 null"):
        response_arrays(missing_item)
    timed = holes.with_columns(t=pl.lit(-1.0))
    with pytest.raises(ValueError, match=r"responses\.user_id has .* null"):
        score_growth(timed, calibrate(responses, max_cycles=2).items)
    bank = pl.DataFrame({"item_id": ["a", None], "a": [1.0, 1.0], "d": [0.0, 0.0]})
    with pytest.raises(ValueError, match=r"items\.item_id has 1 null"):
        ItemBank(bank)
    with pytest.raises(ValueError, match=r"fixed_items\.item_id has 1 null"):
        calibrate(responses, fixed_items=bank, max_cycles=2)
    # a null is_correct is a missing response, as before: dropped
    assert (
        response_arrays(
            responses.head(4).with_columns(is_correct=pl.Series([True, None, False, None]))
        ).correct.size
        == 2
    )


def test_score_one_with_string_item_ids_equals_integer_ids(id_forms):
    _, _, item_map, items = id_forms
    text_items = items.join(item_map, on="item_id").drop("item_id").rename({"text": "item_id"})
    ints, texts = ItemBank(items), ItemBank(text_items)
    cats = ItemBank(text_items.with_columns(pl.col("item_id").cast(pl.Categorical)))
    assert texts.item_ids.dtype == pl.String
    rng = np.random.default_rng(1)
    rows = rng.choice(items.height, 30, replace=False)
    int_ids = items["item_id"].to_numpy()[rows]
    str_ids = text_items["item_id"].to_numpy()[rows]
    correct = rng.integers(0, 2, 30).astype(bool)
    for method in ("EAP", "MAP", "ML"):
        want = ints.score_one(np.r_[int_ids, 1], np.r_[correct, True], method=method)
        for bank in (texts, cats):
            for ids in ([*str_ids.tolist(), "unknown"], pl.Series([*str_ids, "unknown"])):
                got = bank.score_one(ids, [*correct, True], method=method)
                assert got == want  # same arithmetic: identical
                assert got.n_ignored == 1
    with pytest.raises(ValueError, match="both must be integers or both text"):
        texts.score_one(int_ids, correct)
    with pytest.raises(ValueError, match="both must be integers or both text"):
        ints.score_one(str_ids, correct)
    with pytest.raises(ValueError, match="both must be integers or both text"):
        ints.score_one(["1000", "1007"], [True, False])  # digits are text, not item 1000
    assert ints.score_one([1000.0, 1007], [1, 0]) == ints.score_one([1000, 1007], [1, 0])


def test_growth_with_string_ids_equals_integer_ids(id_forms):
    forms, user_map, _, items = id_forms
    rng = np.random.default_rng(2)
    t = pl.Series("t", rng.uniform(-12, 0, forms["int"].height))
    base = score_growth(forms["int"].with_columns(t), items).estimates
    text_items = items.join(id_forms[2], on="item_id").drop("item_id").rename({"text": "item_id"})
    got = score_growth(forms["padded"].with_columns(t), text_items).estimates
    assert got.schema["user_id"] == pl.String
    assert got.drop("user_id").equals(base.drop("user_id"))
    assert got["user_id"].to_list() == user_map["padded"].to_list()


def test_unsupported_id_dtype_is_a_clear_error():
    frame = pl.DataFrame({"user_id": [[1], [2]], "item_id": [1, 2], "is_correct": [True, False]})
    with pytest.raises(ValueError, match=r"responses\.user_id has dtype List"):
        response_arrays(frame)


def test_date_ids_work_too():
    responses, _, _ = simulate(200, 10, 5, seed=3)
    day0 = date(2020, 1, 1)
    as_dates = responses.with_columns(
        pl.col("user_id").map_elements(lambda u: day0 + timedelta(days=u - 1_000_000), pl.Date)
    )
    assert score(as_dates, calibrate(as_dates, max_cycles=3).items).schema["user_id"] == pl.Date


@pytest.mark.parametrize("in_dict", [True, False])
def test_a_text_bank_finds_a_frames_items_the_same_way_in_its_dict_or_by_polars(
    monkeypatch, id_forms, in_dict
):
    from seedtest_assets.core.irt import scoring

    _, _, item_map, items = id_forms
    text_items = items.join(item_map, on="item_id").drop("item_id").rename({"text": "item_id"})
    bank = ItemBank(text_items)
    if not in_dict:
        monkeypatch.setattr(scoring, "FIND_IN_DICT", 0)
    asked = pl.Series("item_id", ["item-0007", "nope", "item-0000", "item-0059", "Item-0001"])
    _, codes = IdCodes.encode(asked)
    pos, known = bank.find(codes)
    names = codes.ids.to_list()  # sorted
    want = {f"item-{i:04d}": i for i in range(60)}
    assert known.tolist() == [n in want for n in names]
    assert pos[known].tolist() == [bank.item_ids.to_list().index(n) for n in names if n in want]
    with pytest.raises(ValueError, match="must both be integers or both text"):
        bank.find(IdCodes.encode(pl.Series("item_id", [1, 2]))[1])
