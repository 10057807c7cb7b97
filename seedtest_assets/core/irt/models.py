"""The item models (Rasch, 1PL, 2PL, 3PL): one class per model, and the registry.

All arrays are float64 numpy, vectorized over items; ``theta`` is ability in logits (the
N(0, 1) population scale), ``a`` the slope, ``d`` the intercept and ``c`` the lower asymptote
(guessing, probability scale). Every model is a special case of the slope-intercept form used
by R mirt::

    P(correct | theta) = c + (1 - c) / (1 + exp(-(a * theta + d)))      b = -d / a

so the response function (:func:`prob`, :func:`log_prob_tables`) is shared, and a model only
says which of (a, d, logit c) it estimates per item, which item priors apply to it, where EM
starts, and how the likelihood's derivatives look. The EM driver (:mod:`.em`) asks the model
object for these and never looks at the model's name; :data:`MODELS` maps the
:data:`~seedtest_assets.core.options.IrtModel` names to the model objects.

Parameter layout of the M-step: columns ``A`` (slope), ``D`` (intercept), ``LOGIT_C``
(guessing on the logit scale, so that Newton steps cannot leave (0, 1)).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Protocol

import numpy as np
from scipy.special import expit, log_expit, logit

from seedtest_assets.core.options import IrtModel, allowed

#: Columns of the per-item gradient (k, 3) and information (k, 3, 3).
A, D, LOGIT_C = 0, 1, 2


@dataclass(frozen=True)
class ItemPriors:
    """Priors on item parameters; the EM M-step maximizes log-likelihood + log-prior (MAP).

    - ``slope``: (mean, sd) of a normal prior on ``a``, or None for none. Default N(1, 2^2): weak
      (an item with 100 responses carries ~10x more information about ``a``), but it keeps
      ``a`` finite for items that separate the sample perfectly. Only models that estimate a
      slope per item (2PL, 3PL) use it.
    - ``intercept``: (mean, sd) of a normal prior on ``d``, or None. Default N(0, 5^2): bounds
      ``d`` (about |d| < 8 for 100 responses) for all-correct / all-wrong items, where the
      likelihood alone pushes ``d`` to +-inf.
    - ``guess``: (alpha, beta) of a Beta prior on ``c`` (3PL only), or None. Default Beta(5, 17)
      (mode 0.2, mean 0.23): without it guessing estimates wander (notes: c RMSE .18 -> .066).
      The mode is taken on the probability scale (MAP for ``c``, not for logit ``c``).

    Both normal priors are concave, so the 2PL M-step objective stays concave in (a, d).
    """

    slope: tuple[float, float] | None = (1.0, 2.0)
    intercept: tuple[float, float] | None = (0.0, 5.0)
    guess: tuple[float, float] | None = (5.0, 17.0)


#: No priors at all: plain maximum likelihood (``calibrate(..., priors=None)``).
NO_PRIORS = ItemPriors(None, None, None)


# ---------------------------------------------------------------------------------------------
# The response function, shared by every model


def prob(a: np.ndarray, d: np.ndarray, c: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """P(correct) elementwise (broadcasting) for slope ``a``, intercept ``d``, guessing ``c``
    and ability ``theta`` (logits)."""
    return c + (1.0 - c) * expit(a * theta + d)


def log_prob_tables(
    a: np.ndarray, d: np.ndarray, c: np.ndarray, nodes: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """log P and log(1 - P) for every item (a, d, c: (n_items,)) at every node (Q,): two
    float64 arrays (n_items, Q).

    Computed without forming P first so that extreme items (|z| > 40) keep finite logs.
    """
    z = a[:, None] * nodes[None, :] + d[:, None]
    log_psi = log_expit(z)  # log of the 2PL part
    log_1m_psi = log_expit(-z)
    if not np.any(c > 0):
        return log_psi, log_1m_psi
    cc = c[:, None]
    with np.errstate(divide="ignore"):
        log_c = np.log(cc)
        log_1m_c = np.log1p(-cc)
    log_p = np.logaddexp(log_c, log_1m_c + log_psi)
    log_q = log_1m_c + log_1m_psi
    return log_p, log_q


def max_information(a: np.ndarray) -> np.ndarray:
    """Upper bound of an item's Fisher information about theta (1 / logit^2): a^2 / 4 (the
    2PL maximum; a lower asymptote c > 0 only lowers it). float64, same shape as ``a``."""
    return 0.25 * np.asarray(a, dtype=np.float64) ** 2


def difficulty(a: np.ndarray, d: np.ndarray) -> np.ndarray:
    """``b = -d / a`` (logits): inf / NaN where ``a`` is 0 rather than a warning, because a
    flat item legitimately has no finite difficulty."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return -d / a


def intercept(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``d = -a b``, the slope-intercept form of difficulty ``b`` (logits)."""
    return -a * b


# ---------------------------------------------------------------------------------------------
# Item priors as terms: each knows its log-density and its gradient / information in the
# M-step layout. A model lists the terms that apply to it (:meth:`ItemModel.prior_terms`).


class PriorTerm(Protocol):
    """One item prior: log-density per item and its derivatives in (a, d, logit c)."""

    def log_density(self, a: np.ndarray, d: np.ndarray, c: np.ndarray) -> np.ndarray:
        """Log prior density per item (constants dropped): float64 (k,)."""
        ...

    def add_derivatives(
        self, grad: np.ndarray, info: np.ndarray, a: np.ndarray, d: np.ndarray, c: np.ndarray
    ) -> None:
        """Add the prior's gradient to ``grad`` (k, 3) and its information to ``info``
        (k, 3, 3), in place."""
        ...


@dataclass(frozen=True)
class SlopePrior:
    """Normal(mean, sd^2) prior on the slope ``a``."""

    mean: float
    sd: float

    def log_density(self, a: np.ndarray, d: np.ndarray, c: np.ndarray) -> np.ndarray:
        return -0.5 * ((a - self.mean) / self.sd) ** 2

    def add_derivatives(
        self, grad: np.ndarray, info: np.ndarray, a: np.ndarray, d: np.ndarray, c: np.ndarray
    ) -> None:
        grad[:, A] -= (a - self.mean) / self.sd**2
        info[:, A, A] += 1.0 / self.sd**2


@dataclass(frozen=True)
class InterceptPrior:
    """Normal(mean, sd^2) prior on the intercept ``d``."""

    mean: float
    sd: float

    def log_density(self, a: np.ndarray, d: np.ndarray, c: np.ndarray) -> np.ndarray:
        return -0.5 * ((d - self.mean) / self.sd) ** 2

    def add_derivatives(
        self, grad: np.ndarray, info: np.ndarray, a: np.ndarray, d: np.ndarray, c: np.ndarray
    ) -> None:
        grad[:, D] -= (d - self.mean) / self.sd**2
        info[:, D, D] += 1.0 / self.sd**2


@dataclass(frozen=True)
class GuessPrior:
    """Beta(alpha, beta) prior on ``c`` (probability scale); derivatives in logit c."""

    alpha: float
    beta: float

    def log_density(self, a: np.ndarray, d: np.ndarray, c: np.ndarray) -> np.ndarray:
        return (self.alpha - 1) * np.log(c) + (self.beta - 1) * np.log1p(-c)

    def add_derivatives(
        self, grad: np.ndarray, info: np.ndarray, a: np.ndarray, d: np.ndarray, c: np.ndarray
    ) -> None:
        # d/dlogit(c) of the Beta log-density: (alpha - 1)(1 - c) - (beta - 1) c.
        grad[:, LOGIT_C] += (self.alpha - 1) * (1 - c) - (self.beta - 1) * c
        info[:, LOGIT_C, LOGIT_C] += (self.alpha + self.beta - 2) * c * (1 - c)

    def mode(self) -> float:
        """Mode of the Beta prior (probability scale); 0.2 when it has none (alpha or
        beta <= 1)."""
        alpha, beta = self.alpha, self.beta
        return (alpha - 1.0) / (alpha + beta - 2.0) if alpha > 1 and beta > 1 else 0.2


# ---------------------------------------------------------------------------------------------
# The models


class ItemModel:
    """An item model: its parameter layout, priors, starting values and likelihood derivatives.

    The base class is the two-parameter form with ``c = 0``; subclasses restrict it (Rasch,
    1PL) or extend it (3PL). Instances are stateless; use the ones in :data:`MODELS`.
    """

    #: The model's name, as :data:`~seedtest_assets.core.options.IrtModel` spells it.
    name: ClassVar[IrtModel]
    #: Parameters the model has, in the order of ``to_irt`` / ``from_irt``.
    param_names: ClassVar[tuple[str, ...]] = ("a", "b", "c")
    #: Columns of (A, D, LOGIT_C) that the per-item Newton step moves.
    item_params: ClassVar[tuple[int, ...]] = (A, D)
    #: One slope shared by all free items, updated as a block after the per-item steps.
    shared_slope: ClassVar[bool] = False
    #: The slope is fixed at exactly 1 (also what :func:`~.simulate.simulate_items` draws).
    unit_slope: ClassVar[bool] = False
    #: The model has a lower asymptote ``c`` to estimate (and simulate).
    guessing: ClassVar[bool] = False

    def prior_terms(self, priors: ItemPriors) -> tuple[PriorTerm, ...]:
        """The item priors that apply to this model, in a fixed order (slope, intercept,
        guess): the base model has a slope and an intercept per item."""
        terms: list[PriorTerm] = []
        if priors.slope is not None:
            terms.append(SlopePrior(*priors.slope))
        if priors.intercept is not None:
            terms.append(InterceptPrior(*priors.intercept))
        return tuple(terms)

    def start_values(
        self, p_hat: np.ndarray, priors: ItemPriors
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """EM starting values (a, d, c), float64 (n_items,) each, from each item's smoothed
        proportion correct ``p_hat`` (n_items,) in [0.02, 0.98]."""
        n = p_hat.size
        # Marginal P of a 2PL item with a = 1 under N(0, 1) is about expit(d / 1.2).
        return np.ones(n), 1.2 * logit(p_hat), np.zeros(n)

    def log_prior(self, a: np.ndarray, d: np.ndarray, c: np.ndarray, priors: ItemPriors) -> float:
        """Sum of the item log-priors (constants dropped) over the given items (k,)."""
        total = 0.0
        for term in self.prior_terms(priors):
            total += np.sum(term.log_density(a, d, c))
        return float(total)

    def objective(
        self,
        a: np.ndarray,
        d: np.ndarray,
        c: np.ndarray,
        r1: np.ndarray,
        nn: np.ndarray,
        nodes: np.ndarray,
        priors: ItemPriors,
    ) -> np.ndarray:
        """Expected complete-data log-posterior per item (the M-step objective, nats):
        float64 (k,) for items (a, d, c: (k,)) with expected correct ``r1`` and total ``nn``
        responses (k, Q) at ``nodes`` (Q,). -inf where it is not finite (so a line search
        rejects such a step)."""
        log_p, log_q = log_prob_tables(a, d, c, nodes)
        value = np.sum(r1 * log_p + (nn - r1) * log_q, axis=1)
        for term in self.prior_terms(priors):
            value += term.log_density(a, d, c)
        return np.where(np.isfinite(value), value, -np.inf)

    def gradient_information(
        self,
        a: np.ndarray,
        d: np.ndarray,
        c: np.ndarray,
        r1: np.ndarray,
        nn: np.ndarray,
        nodes: np.ndarray,
        priors: ItemPriors,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Gradient (k, 3) and Fisher information (k, 3, 3) of :meth:`objective` in
        (a, d, logit c) per item; columns the model does not estimate are left for the caller
        to ignore (see ``item_params``).

        With psi = expit(z), z = a theta + d, P = c + (1-c) psi, the likelihood's derivative in
        z is summed over nodes with weights theta (for a) and 1 (for d); :meth:`_z_terms`
        gives that derivative and its Fisher weight per item and node.
        """
        z = a[:, None] * nodes[None, :] + d[:, None]
        psi = expit(z)
        cc = c[:, None]
        p = cc + (1 - cc) * psi
        resid = r1 - nn * p
        k = a.size
        grad = np.zeros((k, 3))
        info = np.zeros((k, 3, 3))
        g_z, w_zz = self._z_terms(psi, cc, p, resid, nn, nodes, grad, info)
        grad[:, A] = g_z @ nodes
        grad[:, D] = g_z.sum(axis=1)
        info[:, A, A] = w_zz @ (nodes**2)
        info[:, A, D] = info[:, D, A] = w_zz @ nodes
        info[:, D, D] = w_zz.sum(axis=1)
        for term in self.prior_terms(priors):
            term.add_derivatives(grad, info, a, d, c)
        return grad, info

    def _z_terms(
        self,
        psi: np.ndarray,
        cc: np.ndarray,
        p: np.ndarray,
        resid: np.ndarray,
        nn: np.ndarray,
        nodes: np.ndarray,
        grad: np.ndarray,
        info: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """dlogL/dz (k, Q) and its Fisher weight (k, Q); c = 0: (r - nP) and n psi (1-psi).
        Models with more parameters fill their extra columns of ``grad`` / ``info`` here."""
        return resid, nn * psi * (1 - psi)

    def prob(self, a: np.ndarray, d: np.ndarray, c: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """P(correct) (see :func:`prob`)."""
        return prob(a, d, c, theta)

    def to_irt(
        self, a: np.ndarray, d: np.ndarray, c: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Slope-intercept (a, d, c) -> IRT form (a, b, c) with ``b = -d / a`` (logits)."""
        return a, difficulty(a, d), c

    def from_irt(
        self, a: np.ndarray, b: np.ndarray, c: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """IRT form (a, b, c) -> slope-intercept (a, d, c) with ``d = -a b``."""
        return a, intercept(a, b), c


class RaschModel(ItemModel):
    """Rasch: a = 1 exactly, d per item, theta ~ N(0, 1). Only fits when the population SD is
    about 1 logit; prefer 1PL otherwise. No slope prior (there is no slope to estimate)."""

    name = "Rasch"
    param_names = ("b",)
    item_params = (D,)
    unit_slope = True

    def prior_terms(self, priors: ItemPriors) -> tuple[PriorTerm, ...]:
        return () if priors.intercept is None else (InterceptPrior(*priors.intercept),)


class OnePLModel(ItemModel):
    """1PL: one slope common to all free items, d per item, theta ~ N(0, 1). This is the Rasch
    model with a free latent variance, reparameterized (variance = a^2). The common slope has
    no prior (it is one parameter informed by every response)."""

    name = "1PL"
    param_names = ("a", "b")
    item_params = (D,)
    shared_slope = True

    def prior_terms(self, priors: ItemPriors) -> tuple[PriorTerm, ...]:
        return () if priors.intercept is None else (InterceptPrior(*priors.intercept),)


class TwoPLModel(ItemModel):
    """2PL (the default): a and d per item, c = 0."""

    name = "2PL"
    param_names = ("a", "b")


class ThreePLModel(ItemModel):
    """3PL: a, d and c per item (c estimated as logit c), Beta prior on c by default."""

    name = "3PL"
    item_params = (A, D, LOGIT_C)
    guessing = True

    def prior_terms(self, priors: ItemPriors) -> tuple[PriorTerm, ...]:
        terms = super().prior_terms(priors)
        return terms if priors.guess is None else (*terms, GuessPrior(*priors.guess))

    def start_values(
        self, p_hat: np.ndarray, priors: ItemPriors
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Start c at the guessing prior's mode (0.2 without a prior) and d from the
        proportion correct above that floor."""
        n = p_hat.size
        c = np.zeros(n)
        c[:] = 0.2 if priors.guess is None else GuessPrior(*priors.guess).mode()
        p_hat = np.clip((p_hat - c) / (1 - c), 0.02, 0.98)
        return np.ones(n), 1.2 * logit(p_hat), c

    def _z_terms(
        self,
        psi: np.ndarray,
        cc: np.ndarray,
        p: np.ndarray,
        resid: np.ndarray,
        nn: np.ndarray,
        nodes: np.ndarray,
        grad: np.ndarray,
        info: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """dlogL/dz = (r - nP) psi / P and dlogL/dlogit(c) = (r - nP) c / P; the Fisher
        weights follow from dP/dz = (1-c) psi (1-psi) and dP/dlogit(c) = c (1-c) (1-psi),
        written so that nothing divides by P (1-P) (which underflows for extreme items)."""
        psi_p = psi / p
        c_p = cc / p
        g_z = resid * psi_p
        g_g = resid * c_p
        w_zz = nn * (1 - cc) * psi * (1 - psi) * psi_p
        w_zg = nn * (1 - cc) * psi * (1 - psi) * c_p
        w_gg = nn * cc * (1 - cc) * (1 - psi) * c_p
        grad[:, LOGIT_C] = g_g.sum(axis=1)
        info[:, A, LOGIT_C] = info[:, LOGIT_C, A] = w_zg @ nodes
        info[:, D, LOGIT_C] = info[:, LOGIT_C, D] = w_zg.sum(axis=1)
        info[:, LOGIT_C, LOGIT_C] = w_gg.sum(axis=1)
        return g_z, w_zz


#: The registry: every :data:`~seedtest_assets.core.options.IrtModel` name -> its model.
MODELS: dict[IrtModel, ItemModel] = {
    m.name: m for m in (RaschModel(), OnePLModel(), TwoPLModel(), ThreePLModel())
}
# Case-insensitive lookup ("rasch", "2pl", ... have always been accepted).
_BY_UPPER = {name.upper(): model for name, model in MODELS.items()}


def find_model(name: object) -> ItemModel | None:
    """The model called ``name`` (case-insensitive), or None if there is none."""
    return _BY_UPPER.get(str(name).upper())


def get_model(name: object) -> ItemModel:
    """The model called ``name`` (case-insensitive). Raises ValueError for unknown names."""
    model = find_model(name)
    if model is None:
        raise ValueError(f"model must be one of 1PL, Rasch, 2PL, 3PL; got {name!r}")
    return model


assert set(MODELS) == set(allowed(IrtModel)), "every IrtModel needs an ItemModel"

__all__ = [
    "MODELS",
    "NO_PRIORS",
    "GuessPrior",
    "InterceptPrior",
    "ItemModel",
    "ItemPriors",
    "OnePLModel",
    "PriorTerm",
    "RaschModel",
    "SlopePrior",
    "ThreePLModel",
    "TwoPLModel",
    "difficulty",
    "find_model",
    "get_model",
    "intercept",
    "log_prob_tables",
    "max_information",
    "prob",
]
