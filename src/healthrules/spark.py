"""``healthrules.spark.evaluate``: a short public name for the Spark integration.

The implementation lives in :mod:`healthrules.integrations.spark` and is imported only when a
name of this module is used, so ``import healthrules.spark`` works without pyspark installed
and the error names the extra to install (``pip install 'healthrules[spark]'``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from healthrules.integrations.spark import SparkEvaluation, evaluate, input_errors

__all__ = ["SparkEvaluation", "evaluate", "input_errors"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from healthrules.integrations import spark

        return getattr(spark, name)
    raise AttributeError(f"module 'healthrules.spark' has no attribute {name!r}")
