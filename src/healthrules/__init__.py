"""healthrules: a declarative customer-health-score rules engine.

Write a success roadmap in YAML, load it, and evaluate it against polars frames of usage
events as of a date::

    import healthrules as hr
    roadmap = hr.load("rules/examples/b2b-saas/roadmap.yaml")
    result = hr.evaluate(roadmap, events, accounts, as_of="2026-06-30")
    result.actions        # one row per fired action, with its evidence

Over time: ``hr.history(roadmap, events, accounts, start, end, every="1w")`` evaluates at
every date of a range (see :mod:`healthrules.history` and ``docs/time.md``).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from healthrules.compiler import Plan, compile
from healthrules.engine import evaluate
from healthrules.errors import (
    EvaluationError,
    HealthRulesError,
    HealthRulesWarning,
    InputDataError,
    RoadmapError,
)
from healthrules.evaluation import Evaluation, TriggeredAction
from healthrules.roadmap import Pack, Roadmap

try:
    __version__ = version("healthrules")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "Evaluation",
    "EvaluationError",
    "HealthRulesError",
    "HealthRulesWarning",
    "InputDataError",
    "Pack",
    "Plan",
    "Roadmap",
    "RoadmapError",
    "TriggeredAction",
    "__version__",
    "compile",
    "evaluate",
    "history",
    "load",
]


def __getattr__(name: str) -> Any:
    # healthrules.history (a callable module: history over many dates, the daily run, the
    # state store, backtests) is imported on first use, so `import healthrules` stays light.
    if name == "history":
        import importlib

        return importlib.import_module("healthrules.history")
    raise AttributeError(f"module 'healthrules' has no attribute {name!r}")


def load(path: str | Path) -> Roadmap | Pack:
    """Load and validate a roadmap file or a pack file.

    Parameters
    ----------
    path
        A roadmap YAML file, or a pack file (``kind: pack``) listing roadmap files.

    Returns
    -------
    Roadmap or Pack

    Raises
    ------
    RoadmapError
        With every problem of the file, each located by file, line, column and YAML path.
    """
    from healthrules.loader import load as _load

    result: Any = _load(path)
    return result  # type: ignore[no-any-return]
