"""The IRT engine's public names, where users and other code import them.

The engine lives in :mod:`seedtest_assets.core.irt` (no Dagster); this thin re-export keeps
``from seedtest_assets.irt import calibrate, score, ItemBank`` working.
"""

from seedtest_assets.core.irt import (
    Ability,
    Calibration,
    ItemBank,
    ItemPriors,
    calibrate,
    score,
    simulate,
    simulate_items,
    simulate_responses,
)

__all__ = [
    "Ability",
    "Calibration",
    "ItemBank",
    "ItemPriors",
    "calibrate",
    "score",
    "simulate",
    "simulate_items",
    "simulate_responses",
]
