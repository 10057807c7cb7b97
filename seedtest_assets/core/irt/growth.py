"""Ability *and its rate of change* per student: a linear growth model scored with fixed items.

Why: a week's change in ability is ~0.05 logits while one week's ability estimate has an SE of
~0.3, so the difference of two weekly estimates is almost pure noise. Fitting a line through
all of a student's responses in the trailing window uses every response for the slope: with
~500 responses over 12 weeks its SE is ~0.02-0.03 logits/week.

Model, for student u and a response at time t (weeks; t = 0 is the reference time, e.g. the
end of the scored week, so t <= 0 for past responses)::

    theta_u(t) = level_u + growth_u * t
    P(correct) = c + (1 - c) * expit(a * theta_u(t) + d)

with the item parameters fixed (as in :func:`~seedtest_assets.core.irt.score`) and independent
normal priors ``level ~ N(m_l, s_l^2)``, ``growth ~ N(m_g, s_g^2)``.

Estimation: the posterior mode (MAP) per student by Fisher scoring, all students at once
(per-response terms summed with ``bincount``), with step halving on the log-posterior. The
posterior covariance is the inverse of the expected information plus the prior precision at
the mode (Laplace). With ``empirical_bayes=True`` (the default) the prior means and variances
are re-estimated from the population by EM (``m = mean(mode)``, ``s^2 = mean((mode - m)^2 +
posterior variance)``), so a student with little data is shrunk toward the population's
typical growth rather than toward zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy.special import expit

from seedtest_assets.core.irt.data import THREADS, check_no_null_ids, map_blocks, response_arrays
from seedtest_assets.core.irt.scoring import ItemBank

GROWTH_SCHEMA: dict[str, pl.DataType] = {
    "user_id": pl.Int64(),
    "theta": pl.Float64(),  # level at t = 0, logits
    "theta_se": pl.Float64(),
    "growth": pl.Float64(),  # logits per week
    "growth_se": pl.Float64(),
    "cov": pl.Float64(),  # posterior covariance of (theta, growth)
    "n_responses": pl.Int64(),
}

MAX_ITERATIONS = 50
#: Convergence: both steps below this (logits; growth SEs are ~0.02, so 1e-5 is ample).
TOLERANCE = 1e-5


@dataclass(frozen=True)
class GrowthPrior:
    """Normal priors on the level (logits) and the growth (logits per week)."""

    level_mean: float = 0.0
    level_sd: float = 1.0
    growth_mean: float = 0.0
    growth_sd: float = 0.1

    def __post_init__(self) -> None:
        if not (self.level_sd > 0 and self.growth_sd > 0):
            raise ValueError("prior SDs must be > 0")


@dataclass
class GrowthFit:
    """Estimates per student (``estimates`` has :data:`GROWTH_SCHEMA`) and the prior used."""

    estimates: pl.DataFrame
    prior: GrowthPrior
    iterations: int


def score_growth(
    responses: pl.DataFrame,
    items: pl.DataFrame | ItemBank,
    *,
    prior: GrowthPrior | None = None,
    empirical_bayes: bool = True,
    eb_iterations: int = 10,
) -> GrowthFit:
    """Level and growth per student from time-stamped responses and fixed item parameters.

    Args:
        responses: polars frame with ``user_id``, ``item_id`` (ids of any dtype, no nulls),
            ``is_correct`` and ``t``
            (float, weeks relative to the reference time; typically in [-12, 0]).
        items: item parameters (``item_id``, ``a``, ``b`` or ``d``, optional ``c``) or an
            :class:`~seedtest_assets.core.irt.ItemBank`.
        prior: starting priors (default :class:`GrowthPrior`).
        empirical_bayes: re-estimate the prior means and SDs from the population (EM).
        eb_iterations: at most this many EM rounds (each warm-starts the per-student fits);
            stops early when both prior SDs move by less than 1%.

    Returns:
        :class:`GrowthFit`; ``estimates`` has one row per student (sorted by user_id, in the
        input's dtype):
        theta (level at t = 0) and theta_se, growth (logits/week) and growth_se, their
        posterior covariance ``cov``, and n_responses. Responses to unknown items are ignored;
        a student left with none gets the prior.
    """
    if "t" not in responses.columns:
        raise ValueError("responses needs a column 't' (weeks relative to the reference time)")
    # Sorted by student, so each student's responses are one slice and the population splits
    # into independent blocks (one per thread).
    check_no_null_ids(responses, ("user_id", "item_id"), "responses")
    frame = responses.select("user_id", "item_id", "is_correct", "t").drop_nulls().sort("user_id")
    bank = items if isinstance(items, ItemBank) else ItemBank(items)
    data = response_arrays(frame)
    t_all = frame["t"].cast(pl.Float64).to_numpy()
    pos, known = bank.find(data.item_ids)
    keep = known[data.items]
    users = data.users[keep]
    item_pos = pos[data.items[keep]]
    y, t = data.correct[keep], t_all[keep]
    n_users = data.user_ids.size
    a, d, c = bank.a[item_pos], bank.d[item_pos], bank.c[item_pos]
    n_used = np.bincount(users, minlength=n_users)
    bounds = _blocks(users, n_users)

    prior = prior or GrowthPrior()
    level = np.full(n_users, prior.level_mean)
    growth = np.full(n_users, prior.growth_mean)
    cov = np.zeros((n_users, 2, 2))
    total_iterations = 0
    rounds = eb_iterations if empirical_bayes else 0
    has_data = n_used > 0
    for round_ in range(rounds + 1):

        def run(block: int, prior: GrowthPrior = prior) -> int:
            (u0, u1), (r0, r1) = bounds[block]
            lv, gr, cv, its = _fit(
                users[r0:r1] - u0, a[r0:r1], d[r0:r1], c[r0:r1], y[r0:r1], t[r0:r1],
                u1 - u0, level[u0:u1], growth[u0:u1], prior,
            )  # fmt: skip
            level[u0:u1], growth[u0:u1], cov[u0:u1] = lv, gr, cv
            return its

        total_iterations += max(map_blocks(run, range(len(bounds))), default=0)
        if round_ == rounds or not has_data.any():
            break
        new = _em_update(level[has_data], growth[has_data], cov[has_data])
        converged = (
            abs(new.growth_sd - prior.growth_sd) < 0.01 * prior.growth_sd
            and abs(new.level_sd - prior.level_sd) < 0.01 * prior.level_sd
        )
        prior = new
        if converged:
            break

    return GrowthFit(
        pl.DataFrame(
            {
                "user_id": data.user_ids.decode(),
                "theta": level,
                "theta_se": np.sqrt(cov[:, 0, 0]),
                "growth": growth,
                "growth_se": np.sqrt(cov[:, 1, 1]),
                "cov": cov[:, 0, 1],
                "n_responses": n_used.astype(np.int64),
            },
            schema={**GROWTH_SCHEMA, "user_id": data.user_ids.ids.dtype},
        ),
        prior,
        total_iterations,
    )


def _blocks(users: np.ndarray, n_users: int) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """``THREADS`` contiguous student ranges with about equal numbers of responses:
    ``[((first user, end user), (first response, end response)), ...]`` (users sorted)."""
    if users.size == 0:
        return [((0, n_users), (0, 0))]
    cuts = [0]
    for k in range(1, THREADS):
        u = int(users[users.size * k // THREADS])
        if u > cuts[-1]:
            cuts.append(u)
    cuts.append(n_users)
    rows = np.searchsorted(users, cuts)
    rows[-1] = users.size
    return [
        ((cuts[i], cuts[i + 1]), (int(rows[i]), int(rows[i + 1]))) for i in range(len(cuts) - 1)
    ]


def _em_update(level: np.ndarray, growth: np.ndarray, cov: np.ndarray) -> GrowthPrior:
    """EM step for the normal priors from the students' modes and posterior covariances."""
    ml, mg = float(level.mean()), float(growth.mean())
    sl = float(np.mean((level - ml) ** 2 + cov[:, 0, 0]))
    sg = float(np.mean((growth - mg) ** 2 + cov[:, 1, 1]))
    # Floors keep the prior proper when the data say "everyone is the same".
    return GrowthPrior(ml, max(np.sqrt(sl), 0.05), mg, max(np.sqrt(sg), 1e-3))


def _terms(
    theta_r: np.ndarray, a: np.ndarray, d: np.ndarray, c: np.ndarray, y: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per response: d logL / d theta and the expected information (no log-likelihood: Fisher
    scoring needs neither it nor the observed information, and log terms dominate the cost)."""
    psi = expit(a * theta_r + d)
    grad = a * (y - psi)
    expected = a * a * psi * (1.0 - psi)
    guess = np.flatnonzero(c > 0)
    if guess.size:
        pg, cg = psi[guess], c[guess]
        p = cg + (1.0 - cg) * pg
        psi_p = pg / p
        grad[guess] = a[guess] * (y[guess] - p) * psi_p
        expected[guess] *= (1.0 - cg) * psi_p
    return grad, expected


def _sums(
    level: np.ndarray,
    growth: np.ndarray,
    users: np.ndarray,
    a: np.ndarray,
    d: np.ndarray,
    c: np.ndarray,
    y: np.ndarray,
    t: np.ndarray,
    n_users: int,
    prior: GrowthPrior,
) -> tuple[np.ndarray, ...]:
    """Log-posterior gradient (2 arrays) and expected information (3 arrays) per student."""
    grad, expected = _terms(level[users] + growth[users] * t, a, d, c, y)
    pl_, pg = 1.0 / prior.level_sd**2, 1.0 / prior.growth_sd**2
    g_l = np.bincount(users, weights=grad, minlength=n_users) - pl_ * (level - prior.level_mean)
    g_g = np.bincount(users, weights=grad * t, minlength=n_users) - pg * (
        growth - prior.growth_mean
    )
    et = expected * t
    h_ll = np.bincount(users, weights=expected, minlength=n_users) + pl_
    h_lg = np.bincount(users, weights=et, minlength=n_users)
    h_gg = np.bincount(users, weights=et * t, minlength=n_users) + pg
    return g_l, g_g, h_ll, h_lg, h_gg


def _fit(
    users: np.ndarray,
    a: np.ndarray,
    d: np.ndarray,
    c: np.ndarray,
    y: np.ndarray,
    t: np.ndarray,
    n_users: int,
    level: np.ndarray,
    growth: np.ndarray,
    prior: GrowthPrior,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Fisher scoring from (level, growth); returns the modes, covariances (n, 2, 2), rounds.

    The log-posterior of the 2PL is concave in (level, growth) (for the 3PL nearly so near the
    mode), so capped Fisher steps converge without a line search; each round only re-reads
    the responses of students whose step was still above the tolerance.
    """
    level, growth = level.copy(), growth.copy()
    g_l, g_g, h_ll, h_lg, h_gg = _sums(level, growth, users, a, d, c, y, t, n_users, prior)
    todo = np.ones(n_users, dtype=bool)
    iterations = 0
    for iterations in range(1, MAX_ITERATIONS + 1):  # noqa: B007 - reported to the caller
        det = h_ll * h_gg - h_lg**2
        step_l = (h_gg * g_l - h_lg * g_g) / det
        step_g = (h_ll * g_g - h_lg * g_l) / det
        # Cap a step at 1 logit (or 0.2 logit/week) so a far start cannot overshoot.
        scale = np.minimum(1.0, 1.0 / np.maximum(np.abs(step_l), 5.0 * np.abs(step_g) + 1e-300))
        level = np.where(todo, level + step_l * scale, level)
        growth = np.where(todo, growth + step_g * scale, growth)
        todo &= (np.abs(step_l) > TOLERANCE) | (np.abs(step_g) > TOLERANCE)
        if not todo.any():
            break
        if todo.mean() > 0.5:  # gathering most responses costs more than it saves
            sums = _sums(level, growth, users, a, d, c, y, t, n_users, prior)
            g_l, g_g, h_ll, h_lg, h_gg = sums
            continue
        sel = todo[users]
        sums = _sums(
            level, growth, users[sel], a[sel], d[sel], c[sel], y[sel], t[sel], n_users, prior
        )
        g_l, g_g, h_ll, h_lg, h_gg = (
            np.where(todo, new, old)
            for new, old in zip(sums, (g_l, g_g, h_ll, h_lg, h_gg), strict=True)
        )
    # Information at the final point for everyone (the last steps were below the tolerance).
    _, _, h_ll, h_lg, h_gg = _sums(level, growth, users, a, d, c, y, t, n_users, prior)
    det = h_ll * h_gg - h_lg**2
    cov = np.empty((n_users, 2, 2))
    cov[:, 0, 0] = h_gg / det
    cov[:, 1, 1] = h_ll / det
    cov[:, 0, 1] = cov[:, 1, 0] = -h_lg / det
    return level, growth, cov, iterations


__all__ = ["GROWTH_SCHEMA", "GrowthFit", "GrowthPrior", "score_growth"]
