"""What the demo and ``seedtest report`` share to run jobs in process: a Dagster home for the
laptop instance, and a failed run's message as one line of text."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from seedtest_assets.core import settings

#: The repository's laptop instance file (absent when installed from a wheel).
REPO_DAGSTER_YAML = Path(__file__).resolve().parents[1] / "dagster.yaml"


def prepare_dagster_home(home: Path) -> Path:
    """``$SEEDTEST_HOME/dagster`` with the repository's ``dagster.yaml``; sets ``DAGSTER_HOME``."""
    dagster_home = home / "dagster"
    dagster_home.mkdir(parents=True, exist_ok=True)
    if REPO_DAGSTER_YAML.exists():
        shutil.copy(REPO_DAGSTER_YAML, dagster_home / "dagster.yaml")
    else:  # installed without the repository: the essentials
        (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    settings.set_env("DAGSTER_HOME", str(dagster_home))
    return dagster_home


def failure_message(result: Any) -> str:
    """The run's failure as text: each failed step's description (a ``dg.Failure``'s), else
    its error message. ``result``: an ``ExecuteInProcessResult``."""
    lines = []
    for ev in result.get_step_failure_events():
        data = ev.step_failure_data
        user = data.user_failure_data
        if user is not None and user.description:
            lines.append(user.description)
        elif data.error is not None:
            lines.append(data.error.message.strip())
    return " | ".join(lines) or f"run {result.run_id} did not succeed"
