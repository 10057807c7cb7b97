"""Synthetic exam data with exact ground truth, and its bulk loader (no Dagster here).

>>> pop = generate(SyntheticConfig(n_users=2000, weeks=8, seed=7))  # doctest: +SKIP
>>> load(make_engine(url), pop, replace=True)  # doctest: +SKIP
"""

from seedtest_assets.core.synthetic.generate import (
    Population,
    SyntheticConfig,
    format_id,
    generate,
)
from seedtest_assets.core.synthetic.load import load

__all__ = ["Population", "SyntheticConfig", "format_id", "generate", "load"]
