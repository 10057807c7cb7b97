"""IRT engine (numpy/scipy, sparse; no Dagster): calibration and ability scoring.

- :func:`calibrate`: item parameters by marginal maximum likelihood (Bock-Aitkin EM on sparse
  user x item matrices), models 1PL / Rasch / 2PL / 3PL, weak item priors, anchored items
  (see :mod:`seedtest_assets.core.irt.api` for the interface, flags and week linking,
  :mod:`~seedtest_assets.core.irt.em` for the EM and :mod:`~seedtest_assets.core.irt.models`
  for the item models, one class each, and the priors).
- :func:`score`: EAP / MAP / ML abilities with fixed item parameters, adaptive quadrature;
  :class:`ItemBank` for fast repeated scoring, e.g. ``ItemBank(items).score_one(ids, correct)``
  (see :mod:`seedtest_assets.core.irt.scoring`).
- :func:`simulate`: sparse data with known truth (:mod:`seedtest_assets.core.irt.simulate`).
- Item quality: ``calibrate(..., standard_errors=True)`` (module ``standard_errors``),
  :func:`item_fit` (S-X2, module ``fit``), :func:`item_information`,
  :func:`test_information`, :func:`marginal_reliability` (module ``information``) and
  :func:`dif` (likelihood-ratio DIF, module ``dif``).

Ids (``user_id``, ``item_id``) may have any dtype (integers, strings, categoricals): encoded to
dense codes by :class:`~seedtest_assets.core.irt.data.IdCodes`, results keep the input dtype.

Parameterization everywhere: ``P = c + (1 - c) / (1 + exp(-(a theta + d)))``, ``b = -d / a``,
theta in logits with N(0, 1) in the (first) calibration population.

Modules: ``api`` (calibrate, Calibration), ``em`` (Bock-Aitkin EM), ``models`` (item models
and their registry, response function, priors), ``data`` (responses and item frames ->
arrays, sparse counts), ``quadrature`` (theta grids), ``scoring`` (EAP / MAP / ML, ItemBank),
``growth`` (level and growth per student), ``simulate`` (data with known truth),
``standard_errors``, ``fit``, ``information``, ``dif`` (item quality).
"""

from seedtest_assets.core.irt.api import Calibration, calibrate
from seedtest_assets.core.irt.dif import DifResult, dif
from seedtest_assets.core.irt.fit import item_fit
from seedtest_assets.core.irt.information import (
    item_information,
    marginal_reliability,
    test_information,
)
from seedtest_assets.core.irt.models import ItemPriors
from seedtest_assets.core.irt.scoring import Ability, ItemBank, score
from seedtest_assets.core.irt.simulate import simulate, simulate_items, simulate_responses

__all__ = [
    "Ability",
    "Calibration",
    "DifResult",
    "ItemBank",
    "ItemPriors",
    "calibrate",
    "dif",
    "item_fit",
    "item_information",
    "marginal_reliability",
    "score",
    "simulate",
    "simulate_items",
    "simulate_responses",
    "test_information",
]
