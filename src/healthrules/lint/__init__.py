"""``healthrules lint``: find what is valid but probably wrong in a success roadmap.

Each check has a stable id (``HR201``), a readable name (``indicators.unused``), a default
severity and a docstring (what / why / example / fix) from which ``docs/lint.md`` is generated.
:data:`REGISTRY` lists every id ever issued. The checks live in one module per family:
:mod:`~healthrules.lint.stages`, :mod:`~healthrules.lint.indicators`,
:mod:`~healthrules.lint.thresholds`, :mod:`~healthrules.lint.scores`,
:mod:`~healthrules.lint.actions`, :mod:`~healthrules.lint.expressions` (and
:mod:`~healthrules.lint.suppression` for the lint settings themselves). Findings are
:class:`healthrules.errors.Issue` records, like load errors.

Examples
--------
>>> import healthrules.lint as hl
>>> [c.code for c in hl.all_checks()][:3]
['HR001', 'HR101', 'HR102']
"""

from __future__ import annotations

from healthrules.lint.base import REGISTRY, Check, LintConfig, RegistryEntry, Status
from healthrules.lint.runner import (
    FileReport,
    all_checks,
    enabled_codes,
    format_finding,
    lint,
    lint_paths,
    lint_text,
)
from healthrules.lint.suppression import resolve

__all__ = [
    "REGISTRY",
    "Check",
    "FileReport",
    "LintConfig",
    "RegistryEntry",
    "Status",
    "all_checks",
    "enabled_codes",
    "format_finding",
    "lint",
    "lint_paths",
    "lint_text",
    "resolve",
]
