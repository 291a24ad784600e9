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

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from healthrules import _display
from healthrules.errors import (
    EvaluationError,
    HealthRulesError,
    HealthRulesWarning,
    InputDataError,
    RoadmapError,
)

if TYPE_CHECKING:
    from healthrules.compiler import Plan, compile
    from healthrules.engine import evaluate
    from healthrules.evaluation import Evaluation, TriggeredAction
    from healthrules.roadmap import Pack, Roadmap

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

# `import healthrules` imports only this file and the errors: each public name below is
# imported from its module on first use (PEP 562), so polars, pydantic's model building,
# and the optional parts (history, plot, Spark, testing) load only when they are touched.
_LAZY: Final[dict[str, str]] = {
    "Evaluation": "healthrules.evaluation",
    "TriggeredAction": "healthrules.evaluation",
    "Pack": "healthrules.roadmap",
    "Roadmap": "healthrules.roadmap",
    "Plan": "healthrules.compiler",
    "compile": "healthrules.compiler",
    "evaluate": "healthrules.engine",
}
# Modules reached as attributes: history is public (a callable module: history over many
# dates, the daily run, the state store, backtests); the others were attributes of the
# package when it imported them eagerly, and stay reachable that way.
_MODULES: Final[dict[str, str]] = {
    name: f"healthrules.{name}"
    for name in ("history", "analysis", "compiler", "engine", "evaluation", "expressions",
                 "inputs", "polars_expr", "roadmap")
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    elif name in _MODULES:
        value = importlib.import_module(_MODULES[name])
    elif name == "__version__":
        value = _version()
    else:
        raise AttributeError(f"module 'healthrules' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("healthrules")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0.0.0"


def _views() -> None:
    """Register the notebook (HTML) views of the core objects; run on the first display."""
    from healthrules._html import evaluation_html, pack_html, roadmap_html
    from healthrules.evaluation import Evaluation
    from healthrules.roadmap import Pack, Roadmap

    _display.register(Roadmap, roadmap_html)
    _display.register(Pack, pack_html)
    _display.register(Evaluation, evaluation_html)


_display.defer(_views)


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
