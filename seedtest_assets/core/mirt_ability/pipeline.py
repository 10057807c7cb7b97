"""Scoring students with stored item parameters, and the versioned ``mirt_ability`` rows.

``mirt_ability`` is append-only history: each scoring adds rows with ``source`` ``weekly``
(the batch for a week), ``on_demand`` (one student re-scored by a person) or ``online``
(after a session, issue 5). Re-running a week's batch replaces that week's ``weekly`` rows.
The current ability of a student is their row with the latest ``fitted_at``: the view
``mirt_ability_latest`` (migration 0002) holds exactly those rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import polars as pl
from sqlalchemy import Engine

from seedtest_assets.core.attempts.read import read_valid_attempts
from seedtest_assets.core.irt import ItemBank, score
from seedtest_assets.core.irt.growth import GrowthPrior, score_growth
from seedtest_assets.core.mirt_ability import table
from seedtest_assets.core.mirt_ability.table import ROWS_SCHEMA
from seedtest_assets.core.mirt_item_params import table as item_params
from seedtest_assets.core.mirt_item_params.pipeline import EmptyWindowError, stored_item_params
from seedtest_assets.core.warehouse import transaction

DEFAULT_LOOKBACK_WEEKS = 12


@dataclass
class ScoringRun:
    """Rows written by one scoring (``rows`` has the ``mirt_ability`` columns)."""

    week_start: date
    version: str
    rows: pl.DataFrame


@dataclass(frozen=True)
class ScoringBasis:
    """What re-scoring a student needs besides their attempts: the latest calibrated item bank
    and the latest weekly population's prior. Loading it costs two reads (~40 ms at 2,000
    items and 100k students on PostgreSQL), so a long-lived caller (the θ-update service)
    keeps one and reloads it when :func:`basis_stamp` changes.

    Attributes:
        model: IRT model of the item parameters.
        week_start: the calibrated week whose parameters are used.
        version: their version label (``2PL@2026-11-09``).
        bank: the items as an :class:`~seedtest_assets.core.irt.ItemBank`.
        prior: the growth prior (the latest weekly population's, else the default).
        stamp: :func:`basis_stamp` at load time (what identifies this basis).
    """

    model: str
    week_start: date
    version: str
    bank: ItemBank
    prior: GrowthPrior
    stamp: tuple[object, ...]

    @property
    def n_items(self) -> int:
        """Items in the bank."""
        return self.bank.n_items


def basis_stamp(engine: Engine, model: str, on_or_before: date) -> tuple[object, ...] | None:
    """A cheap identity of the basis :func:`scoring_basis` would load now: the latest
    calibrated week, when its parameters were written (a re-run calibration of the same week
    changes it), and the latest weekly ability week (the prior). None: nothing calibrated."""
    with engine.connect() as conn:
        week = item_params.latest_week(conn, model, on_or_before)
        if week is None:
            return None
        fitted = item_params.week_fitted_at(conn, week, model)
        ability_week = table.latest_weekly_week(conn, on_or_before)
    return (model, week, fitted, ability_week)


def scoring_basis(engine: Engine, model: str, on_or_before: date) -> ScoringBasis | None:
    """Load the latest item bank of ``model`` (on or before ``on_or_before``) and the
    population prior; None when nothing is calibrated yet."""
    stamp = basis_stamp(engine, model, on_or_before)
    if stamp is None:
        return None
    week = stamp[1]
    assert isinstance(week, date)
    items = stored_item_params(engine, week, model)
    if items.height == 0:  # deleted between the two reads
        return None
    return ScoringBasis(
        model=model,
        week_start=week,
        version=str(items["version"][0]),
        bank=ItemBank(items),
        prior=_latest_population_prior(engine, on_or_before),
        stamp=stamp,
    )


def latest_calibrated_week(engine: Engine, model: str, on_or_before: date) -> date | None:
    """The most recent week with stored item parameters for ``model``."""
    with engine.connect() as conn:
        return item_params.latest_week(conn, model, on_or_before)


class NoItemParamsError(ValueError):
    """The week has no calibrated item parameters to score with."""


def latest_ability_week(engine: Engine, on_or_before: date) -> date | None:
    """The newest week with weekly ``mirt_ability`` rows, on or before ``on_or_before``."""
    with engine.connect() as conn:
        return table.latest_weekly_week(conn, on_or_before)


def _score(
    engine: Engine,
    week_start: date,
    model: str,
    start: date,
    end: date,
    now: datetime,
    source: str,
    *,
    reference: datetime,
    user_ids: Sequence[str] | None = None,
    prior: GrowthPrior | None = None,
    basis: ScoringBasis | None = None,
) -> ScoringRun:
    """Score the valid attempts in ``[start, end)`` with ``week_start``'s item parameters.

    ``theta``/``se`` is the growth line's ability at ``reference`` (docs/irt.md, "One theta");
    ``prior`` None = empirical Bayes over the scored population (the weekly batch), else that
    fixed prior (a handful of students: the population's, from :func:`population_prior`).
    ``basis``: the item bank already loaded (its ``week_start`` must be ``week_start``).
    """
    if basis is None:
        items = stored_item_params(engine, week_start, model)
        if items.height == 0:
            raise NoItemParamsError(f"no {model} item parameters stored for week {week_start}")
        version, bank = items["version"][0], ItemBank(items)
    else:
        version, bank = basis.version, basis.bank
    responses = read_valid_attempts(engine, start, end, now=now, user_ids=user_ids)
    if responses.height == 0:
        return ScoringRun(week_start, version, pl.DataFrame(schema=ROWS_SCHEMA))
    window = score(responses.select("user_id", "item_id", "is_correct"), bank, method="EAP")
    abilities = window.select(
        "user_id", "n_responses", theta_window="theta", theta_window_se="se"
    ).join(_growth(responses, bank, reference, prior), on="user_id", how="left")
    rows = abilities.filter(pl.col("n_responses") > 0).select(
        pl.col("user_id").cast(pl.String),
        pl.lit(week_start).alias("week_start"),
        "theta",
        "se",
        pl.lit(model).alias("model"),
        pl.lit(version).alias("version"),
        pl.lit(source).alias("source"),
        pl.col("n_responses").cast(pl.Int64),
        pl.lit(now, dtype=pl.Datetime("us")).alias("fitted_at"),
        "growth",
        "growth_se",
        "growth_cov",
        "theta_window",
        "theta_window_se",
    )
    return ScoringRun(week_start, version, rows.cast(ROWS_SCHEMA))


def _growth(
    responses: pl.DataFrame, bank: ItemBank, reference: datetime, prior: GrowthPrior | None
) -> pl.DataFrame:
    """Linear growth through each student's responses, referenced to ``reference`` (naive
    UTC): theta (logits, the line at ``reference``), growth (logits/week), SEs, covariance."""
    timed = responses.select(
        "user_id",
        "item_id",
        "is_correct",
        t=(pl.col("attempted_at") - reference).dt.total_microseconds() / (7 * 86_400 * 1e6),
    )
    est = score_growth(timed, bank, prior=prior, empirical_bayes=prior is None).estimates
    return est.select(
        "user_id",
        "theta",
        se="theta_se",
        growth="growth",
        growth_se="growth_se",
        growth_cov="cov",
    )


def _latest_population_prior(engine: Engine, day: date) -> GrowthPrior:
    """The prior of the latest weekly population on or before ``day`` (the default prior
    when no week has been scored)."""
    week = latest_ability_week(engine, day)
    return (population_prior(engine, week) if week is not None else None) or GrowthPrior()


def population_prior(engine: Engine, week_start: date) -> GrowthPrior | None:
    """The growth prior of the week's weekly population (the empirical-Bayes moments of its
    stored fits: mean and SD of theta and growth, posterior variances included), for scoring
    a few students the way the weekly batch scored everyone; None without weekly rows."""
    with engine.connect() as conn:
        n, m_l, s2_l, m_g, s2_g = table.weekly_moments(conn, week_start)
    if not n:
        return None
    # Same floors as the batch's EM (irt/growth.py) keep the prior proper.
    sd_l = max(float(s2_l - m_l * m_l), 0.0025) ** 0.5
    sd_g = max(float(s2_g - m_g * m_g), 1e-6) ** 0.5
    return GrowthPrior(float(m_l), sd_l, float(m_g), sd_g)


def score_week(
    engine: Engine,
    week_start: date,
    *,
    now: datetime,
    model: str = "2PL",
    lookback_weeks: int = DEFAULT_LOOKBACK_WEEKS,
) -> ScoringRun | None:
    """Score every student with valid attempts in the ``lookback_weeks`` weeks ending with
    ``week_start``'s week, with that week's stored item parameters: ``theta``/``se`` at the end
    of the week and ``growth`` from the linear growth line (:mod:`seedtest_assets.core.irt.growth`,
    empirical-Bayes priors over the population), ``theta_window`` the window's EAP.

    Replaces the week's ``weekly`` rows in one transaction. Returns None for a week without
    item parameters and without stored rows (before the data: an empty partition).

    Raises:
        NoItemParamsError, EmptyWindowError: nothing to score although the week has rows.
    """
    end = week_start + timedelta(days=7)
    with engine.connect() as conn:
        stored = table.count_weekly(conn, week_start)
    try:
        run = _score(
            engine,
            week_start,
            model,
            end - timedelta(weeks=lookback_weeks),
            end,
            now,
            "weekly",
            reference=datetime.combine(end, datetime.min.time()),
        )
    except NoItemParamsError:
        if stored:
            raise
        return None  # a week before the data (nothing calibrated): an empty partition
    if run.rows.height == 0 and stored:
        raise EmptyWindowError(
            f"scoring week {week_start} found no valid attempts, but the week has {stored} "
            "weekly ability rows: refusing to replace them with nothing"
        )
    with transaction(engine) as conn:
        table.replace_weekly(conn, week_start, run.rows)
    return run


def duplicate_weekly_rows(engine: Engine, week_start: date) -> list[str]:
    """Students with more than one weekly row for the week (must be none)."""
    with engine.connect() as conn:
        return [str(u) for u in table.duplicate_weekly_users(conn, week_start)]


def score_students(
    engine: Engine,
    user_ids: Sequence[str],
    *,
    now: datetime,
    model: str = "2PL",
    lookback_days: int = 7 * DEFAULT_LOOKBACK_WEEKS,
    source: str = "on_demand",
    basis: ScoringBasis | None = None,
) -> ScoringRun:
    """Re-score a few students now with the latest stored item parameters; append rows.

    ``theta`` is the growth line's ability at ``now``, with the latest weekly population's
    prior (:func:`population_prior`), so a re-score and the weekly batch estimate the same
    quantity. Students without valid attempts in the look-back get no row (the caller
    reports a no-op). ``basis``: an item bank and prior loaded before
    (:func:`scoring_basis`); None loads the latest now.

    Raises:
        ValueError: no item parameters stored yet for ``model``.
    """
    if basis is None:
        basis = scoring_basis(engine, model, now.date())
    if basis is None:
        raise ValueError(f"no {model} item parameters stored yet: calibrate a week first")
    end = now.date() + timedelta(days=1)
    run = _score(
        engine,
        basis.week_start,
        basis.model,
        end - timedelta(days=lookback_days),
        end,
        now,
        source,
        reference=now,
        user_ids=user_ids,
        prior=basis.prior,
        basis=basis,
    )
    with transaction(engine) as conn:
        table.append(conn, run.rows)
    return run
