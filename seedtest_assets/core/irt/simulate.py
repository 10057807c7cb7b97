"""Simulated sparse response data with known truth, for tests and benchmarks.

Items: ``a ~ LogNormal(0, 0.3)`` clipped to [0.4, 2.5], ``b ~ N(0, 1)``, 3PL ``c ~ U(0.1, 0.3)``
(else 0), ``d = -a b``. Users: ``theta ~ N(theta_mean, theta_sd^2)``. Each user answers
``responses_per_user`` distinct items drawn uniformly at random (sparse: no one sees all
items), ``is_correct ~ Bernoulli(c + (1 - c) expit(a theta + d))``.

Ids are deliberately not 0..n-1 (items 1000, 1007, 1014, ...; users 1_000_000 + i) so that
code which confuses ids with positions fails. ``item_id_start`` shifts item ids so that two
simulated weeks can share items.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from seedtest_assets.core.irt.models import TwoPLModel, find_model, prob
from seedtest_assets.core.options import IrtModel

USER_ID_BASE = 1_000_000
ITEM_ID_STEP = 7
#: Users per chunk when drawing items without replacement (bounds memory to ~80 MB).
_CHUNK_CELLS = 10_000_000


def simulate_items(
    n_items: int, model: IrtModel = "2PL", seed: int = 0, item_id_start: int = 1000
) -> pl.DataFrame:
    """True item parameters: frame item_id, a, b, c, d (n_items rows; logits, c a probability).

    ``model`` (case-insensitive): guessing models (3PL) get ``c ~ U(0.1, 0.3)``, unit-slope
    models (Rasch) ``a = 1``; any other name (1PL, 2PL, unknown ones) gets 2PL items.
    """
    spec = find_model(model) or TwoPLModel()
    rng = np.random.default_rng(seed)
    # Always draw a, b (and c only for guessing models) in this order, so a seed gives the
    # same b whatever the model.
    a = np.clip(rng.lognormal(0.0, 0.3, n_items), 0.4, 2.5)
    b = rng.normal(0.0, 1.0, n_items)
    c = rng.uniform(0.1, 0.3, n_items) if spec.guessing else np.zeros(n_items)
    if spec.unit_slope:
        a = np.ones(n_items)
    ids = item_id_start + ITEM_ID_STEP * np.arange(n_items, dtype=np.int64)
    return pl.DataFrame({"item_id": ids, "a": a, "b": b, "c": c, "d": -a * b})


def simulate_responses(
    items: pl.DataFrame,
    thetas: pl.DataFrame,
    responses_per_user: int,
    seed: int = 0,
) -> pl.DataFrame:
    """Responses of users ``thetas`` (user_id, theta) to ``responses_per_user`` distinct random
    items of ``items`` each: frame user_id, item_id, is_correct (bool)."""
    rng = np.random.default_rng(seed)
    n_items = items.height
    k = int(responses_per_user)
    if not 0 < k <= n_items:
        raise ValueError("responses_per_user must be between 1 and the number of items")
    theta = thetas["theta"].to_numpy()
    n_users = theta.size
    chunk = max(1, _CHUNK_CELLS // n_items)
    picks = np.empty((n_users, k), dtype=np.int64)
    for start in range(0, n_users, chunk):
        stop = min(start + chunk, n_users)
        keys = rng.random((stop - start, n_items))
        picks[start:stop] = np.argpartition(keys, k - 1, axis=1)[:, :k]
    item_idx = picks.ravel()
    user_idx = np.repeat(np.arange(n_users), k)
    a = items["a"].to_numpy()[item_idx]
    d = items["d"].to_numpy()[item_idx]
    c = items["c"].to_numpy()[item_idx]
    correct = rng.random(item_idx.size) < prob(a, d, c, theta[user_idx])
    return pl.DataFrame(
        {
            "user_id": thetas["user_id"].to_numpy()[user_idx],
            "item_id": items["item_id"].to_numpy()[item_idx],
            "is_correct": correct,
        }
    )


def simulate(
    n_users: int,
    n_items: int,
    responses_per_user: int,
    model: IrtModel = "2PL",
    seed: int = 0,
    theta_mean: float = 0.0,
    theta_sd: float = 1.0,
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(responses, true items, true thetas): frames (user_id, item_id, is_correct),
    (item_id, a, b, c, d) and (user_id, theta)."""
    rng = np.random.default_rng(seed)
    items = simulate_items(n_items, model, seed=int(rng.integers(2**31)))
    thetas = pl.DataFrame(
        {
            "user_id": USER_ID_BASE + np.arange(n_users, dtype=np.int64),
            "theta": rng.normal(theta_mean, theta_sd, n_users),
        }
    )
    responses = simulate_responses(items, thetas, responses_per_user, seed=int(rng.integers(2**31)))
    return responses, items, thetas
