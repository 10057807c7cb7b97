"""The ``attempts`` source asset and its whole-table quality check (Dagster shell)."""

import dagster as dg

attempts = dg.AssetSpec(
    "attempts",
    description=(
        "Raw exam attempts written by the exam product (table `attempts`). External: Dagster "
        "observes it; the daily features validate it and quarantine bad rows."
    ),
    group_name="sources",
    kinds={"sql"},
    metadata={"table": "attempts"},
)
