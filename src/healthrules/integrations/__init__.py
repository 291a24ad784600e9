"""Integrations of healthrules with other engines, each behind an optional extra.

Nothing here is imported by ``import healthrules``; each integration is imported on use:

- :mod:`healthrules.integrations.spark` (extra ``spark``): evaluate a roadmap over Spark
  DataFrames, each partition running the same compiled plan with polars inside the executors.
"""

from __future__ import annotations

from healthrules.integrations._optional import MissingExtraError, import_optional

__all__ = ["MissingExtraError", "import_optional"]
