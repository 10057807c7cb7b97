"""IRT engine (numpy/scipy, sparse; no Dagster): calibration and ability scoring.

- :func:`calibrate`: item parameters by marginal maximum likelihood (Bock-Aitkin EM on sparse
  user x item matrices), models 1PL / Rasch / 2PL / 3PL, weak item priors, anchored items
  (see :mod:`seedtest_assets.core.irt.calibrate` for the model, priors, flags and week linking).
- :func:`score`: EAP / MAP / ML abilities with fixed item parameters, adaptive quadrature;
  :class:`ItemBank` for fast repeated scoring, e.g. ``ItemBank(items).score_one(ids, correct)``
  (see :mod:`seedtest_assets.core.irt.scoring`).
- :func:`simulate`: sparse data with known truth (:mod:`seedtest_assets.core.irt.simulate`).

Parameterization everywhere: ``P = c + (1 - c) / (1 + exp(-(a theta + d)))``, ``b = -d / a``,
theta in logits with N(0, 1) in the (first) calibration population.
"""

from seedtest_assets.core.irt._model import ItemPriors
from seedtest_assets.core.irt.calibrate import Calibration, calibrate
from seedtest_assets.core.irt.scoring import Ability, ItemBank, score
from seedtest_assets.core.irt.simulate import simulate, simulate_items, simulate_responses

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
