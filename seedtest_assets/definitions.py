"""The code location: every definition under ``seedtest_assets/defs/``, as ``dg`` lays it out.

``dg.load_from_defs_folder`` imports each module of ``defs/`` (per-domain ``assets.py`` and
``checks.py``, ``automation/`` for the jobs, schedules and sensor, ``resources.py``) and
collects what it defines; this module adds only the executor, which is chosen by environment.
"""

from functools import cache
from pathlib import Path

import dagster as dg

from seedtest_assets.core import settings

#: The package folder; ``dg`` finds the project from it (``pyproject.toml`` in a checkout,
#: the packaged ``dg.toml`` in an installed wheel) and loads its ``defs/`` folder.
PACKAGE_DIR = Path(__file__).resolve().parent

#: Executors ``SEEDTEST_EXECUTOR`` may name.
EXECUTORS = settings.EXECUTORS


def executor_from_env() -> dg.ExecutorDefinition | None:
    """``SEEDTEST_EXECUTOR``: ``multiprocess`` (default: every step in the run's process tree)
    or ``k8s`` (each step in its own pod, sized by the asset's ``dagster-k8s/config`` op tags;
    for clusters where one pod is not enough). Only the k8s choice imports dagster-k8s."""
    if settings.executor() == "k8s":
        from dagster_k8s import k8s_job_executor

        return k8s_job_executor
    return None  # Dagster's default: multiprocess


@cache
def build_defs() -> dg.Definitions:
    """The platform's definitions, loaded once per process (the CLI, the demo and the tests
    reuse them; Dagster's code server calls :func:`defs`)."""
    loaded = dg.load_from_defs_folder(path_within_project=PACKAGE_DIR)
    return dg.Definitions.merge(loaded, dg.Definitions(executor=executor_from_env()))


@dg.definitions
def defs() -> dg.Definitions:
    """Entry point for ``dg`` and ``dagster`` (``[tool.dg.project]`` and ``workspace.yaml``)."""
    return build_defs()
