"""The display hook of the core objects: their ``_repr_html_`` asks here for an HTML view.

The core defines no views. The package (``healthrules/__init__.py``) defers a loader here
(:func:`defer`) that imports the view module and registers a renderer per class
(:func:`register`); it runs on the first display. So the rule format
(:mod:`healthrules.roadmap`) and the results (:mod:`healthrules.evaluation`) import no view,
and ``import healthrules`` imports no view (nor polars) either.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from typing import Any, TypeVar

__all__ = ["defer", "html", "register"]

_T = TypeVar("_T")

_renderers: dict[type, Callable[[Any], str]] = {}
_pending: list[Callable[[], None]] = []


def register(cls: type[_T], render: Callable[[_T], str]) -> None:
    """Render instances of ``cls`` (and of its subclasses) as HTML with ``render``."""
    _renderers[cls] = render


def defer(load: Callable[[], None]) -> None:
    """Run ``load`` (which calls :func:`register`) before the first display."""
    _pending.append(load)


def html(obj: object) -> str:
    """The HTML view of ``obj``: its registered renderer, else its escaped ``repr``."""
    while _pending:
        _pending.pop(0)()
    for cls in type(obj).__mro__:
        render = _renderers.get(cls)
        if render is not None:
            return render(obj)
    return f"<pre>{escape(repr(obj))}</pre>"
