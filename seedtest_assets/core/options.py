"""The allowed values of every option string, as ``Literal`` types (no Dagster here).

Run config (the launchpad) and the core's keyword arguments use these, so a typo is refused
with the list of allowed values instead of being carried into a run: Dagster shows a
``Literal`` as an enum in the launchpad and rejects anything else before the run starts.
"""

from __future__ import annotations

from typing import Literal, get_args

#: IRT models the engine fits (``irt.calibrate``).
IrtModel = Literal["Rasch", "1PL", "2PL", "3PL"]
#: Ability estimators of ``irt.score`` / ``ItemBank.score_one``.
ScoringMethod = Literal["EAP", "MAP", "ML"]
#: How the calibration EM is run: plain cycles, or SQUAREM extrapolation (issue 18).
Acceleration = Literal["none", "squarem"]
#: How a week's calibration is put on last week's scale (``mirt_item_params/pipeline.py``).
Linking = Literal["mean_sigma", "fixed", "none"]
#: Report label languages.
Lang = Literal["ko", "en"]
#: Report file formats.
ReportFormat = Literal["html", "pdf"]
#: Report rendering route ("" = the environment's ``SEEDTEST_REPORT_RENDERER``, else auto).
Renderer = Literal["", "auto", "quarto", "pandoc"]
#: ``mirt_ability.source`` of a re-score: the weekly batch's rows come only from the batch.
RescoreSource = Literal["online", "on_demand", "api"]


def allowed(option: object) -> tuple[str, ...]:
    """The allowed values of a ``Literal`` option type."""
    return tuple(get_args(option))
