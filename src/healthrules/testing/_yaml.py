"""Map a pydantic error ``loc`` onto the YAML path of a test file (for its position).

Reading YAML with positions is the loader's job (:class:`healthrules.loader.Positions`); this
module only turns the ``loc`` of a pydantic error into the path ``Positions`` understands,
skipping the labels pydantic adds for union members.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["join", "loc_to_path"]

_LABELS = frozenset({"str", "int", "float", "bool", "none", "list", "dict", "function-after",
                     "function-before", "function-plain", "function-wrap", "union"})


def join(path: str, seg: str | int) -> str:
    """Append a key or an index to a YAML path (``cases[0].expect.acme``)."""
    if isinstance(seg, int):
        return f"{path}[{seg}]"
    return f"{path}.{seg}" if path else seg


def loc_to_path(data: Any, loc: Sequence[str | int]) -> tuple[str, bool]:
    """Map a pydantic error ``loc`` onto a YAML path, skipping union-member labels.

    Returns the path and whether the error is about a mapping key (``[key]`` in ``loc``).

    Examples
    --------
    >>> data = {"cases": [{"expect": {"a": {"score": "x"}}}]}
    >>> loc_to_path(data, ("cases", 0, "expect", "a", "score", "Expected"))
    ('cases[0].expect.a.score', False)
    """
    path = ""
    cur: Any = data
    is_key = False
    exists = True
    for seg in loc:
        if seg == "[key]":
            is_key = True
            continue
        if exists and isinstance(cur, dict) and str(seg) in cur:
            cur = cur[str(seg)]
        elif exists and isinstance(seg, int) and isinstance(cur, list) and 0 <= seg < len(cur):
            cur = cur[seg]
        elif exists and isinstance(cur, dict) and isinstance(seg, str) and (
            seg[:1].isupper() or "[" in seg or seg in _LABELS
        ):
            continue  # a union member label
        elif exists and not isinstance(cur, (dict, list)):
            continue  # a label below a scalar
        else:
            exists = False
        path = join(path, seg)
    return path, is_key
