"""The functional core: statistics, transformations and every table's SQL.

No module here imports Dagster (an import-linter contract fails the build otherwise).
"""
