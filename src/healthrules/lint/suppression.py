"""Switching checks off: check-id spellings, ``# healthrules: disable=...`` comments, and HR001.

Checks can be switched off in three places:

- globally, with ``LintConfig(disable=...)`` (the CLI's ``--disable``);
- per file, with the roadmap's ``lint: {disable: [...]}`` key;
- per node, with a comment ``# healthrules: disable=HR503,actions.no_channel`` at the end of
  the node's line or on comment lines right above it. A comment on a node covers the node and
  everything inside it (on a stage's ``- id:`` line: the whole stage).

Each spelling is a check id (``HR201``), a name (``indicators.unused``), a family
(``indicators``) or ``all``. PyYAML drops comments, so they are read from the raw text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from healthrules.errors import Issue, Location, Severity
from healthrules.expressions import did_you_mean
from healthrules.lint.base import REGISTRY, Check
from healthrules.lint.context import LintContext

__all__ = [
    "CHECKS",
    "Directive",
    "UnknownCheck",
    "find_directives",
    "known_spellings",
    "resolve",
    "split_tokens",
    "suppressing_lines",
    "unknown_tokens",
]

_DIRECTIVE = re.compile(r"(?:^|\s)#\s*healthrules\s*:\s*disable\s*=\s*([^#\r\n]*)")
_COMMENT_LINE = re.compile(r"^\s*#")


def resolve(token: str) -> frozenset[str] | None:
    """The check codes a spelling stands for, or None when it names no check.

    Examples
    --------
    >>> from healthrules.lint.suppression import resolve
    >>> sorted(resolve("indicators.unused")), sorted(resolve("hr201"))
    (['HR201'], ['HR201'])
    >>> "HR503" in resolve("actions")
    True
    >>> resolve("actions.no_owners") is None
    True
    """
    t = token.strip()
    if not t:
        return None
    if t.lower() == "all":
        return frozenset(e.code for e in REGISTRY)
    by_code = {e.code.lower(): e.code for e in REGISTRY}
    if t.lower() in by_code:
        return frozenset({by_code[t.lower()]})
    named = [e.code for e in REGISTRY if e.name == t]
    if named:
        return frozenset(named)
    family = [e.code for e in REGISTRY if e.family == t]
    if family:
        return frozenset(family)
    return None


def known_spellings() -> list[str]:
    """Every id, name and family, for did-you-mean hints."""
    out = {"all"}
    for e in REGISTRY:
        out |= {e.code, e.name, e.family}
    return sorted(out)


def split_tokens(text: str) -> list[str]:
    """Split ``"HR101, indicators.unused HR503"`` into its spellings."""
    return [t for t in re.split(r"[\s,]+", text.strip()) if t]


@dataclass(frozen=True, slots=True)
class Directive:
    """One ``# healthrules: disable=...`` comment: its line, column and spellings."""

    line: int
    column: int
    tokens: tuple[str, ...]
    whole_line: bool
    token_columns: tuple[int, ...] = ()

    @property
    def codes(self) -> frozenset[str]:
        """The codes it switches off (unknown spellings are ignored)."""
        out: set[str] = set()
        for t in self.tokens:
            out |= resolve(t) or frozenset()
        return frozenset(out)


def find_directives(text: str) -> list[Directive]:
    """Find the disable comments of a YAML text.

    Examples
    --------
    >>> from healthrules.lint.suppression import find_directives
    >>> d = find_directives("a: 1  # healthrules: disable=HR503, actions.no_channel\\n")
    >>> d[0].line, d[0].tokens
    (1, ('HR503', 'actions.no_channel'))
    """
    out: list[Directive] = []
    for n, line in enumerate(text.splitlines(), start=1):
        m = _DIRECTIVE.search(line)
        if m is None:
            continue
        col = line.index("#", m.start()) + 1
        tokens = [(t.group(0), m.start(1) + t.start() + 1)
                  for t in re.finditer(r"[^\s,]+", m.group(1))]
        out.append(Directive(n, col, tuple(t for t, _ in tokens),
                             bool(_COMMENT_LINE.match(line)), tuple(c for _, c in tokens)))
    return out


def suppressing_lines(text_lines: Sequence[str], line: int) -> list[int]:
    """The lines whose directives apply to a node on ``line``: itself and the comments above."""
    out = [line]
    k = line - 1
    while k >= 1 and k - 1 < len(text_lines) and _COMMENT_LINE.match(text_lines[k - 1]):
        out.append(k)
        k -= 1
    return out


class UnknownCheck(Check):
    """A ``lint: disable`` entry or a disable comment names no check.

    What it does
    ------------
    Reports a spelling in the roadmap's ``lint: {disable: [...]}`` or in a
    ``# healthrules: disable=...`` comment that is not a check id (``HR201``), a check name
    (``indicators.unused``), a family (``indicators``) or ``all``. Retired ids are still
    known: they stay in the registry.

    Why is this bad
    ---------------
    A misspelt id switches nothing off, so the finding it was meant to silence comes back,
    or worse, the author believes a check is off when it is not.

    Example
    -------
    ::

        lint:
          disable: [indicator.unused]

    Fix
    ---
    ::

        lint:
          disable: [indicators.unused]
    """

    code = "HR001"
    name = "lint.unknown_check"
    severity = Severity.WARNING

    def run(self, ctx: LintContext) -> Iterator[Issue]:
        """Yield one finding per unknown spelling."""
        for k, token in enumerate(ctx.roadmap.lint.disable):
            if resolve(token) is None:
                yield self.finding(
                    f"lint.disable[{k}]", f"{token!r} names no lint check",
                    hint=did_you_mean(token, known_spellings())
                    or "use a check id (HR201), a name (indicators.unused) or a family",
                )
        for d in ctx.directives:
            columns = d.token_columns or (d.column,) * len(d.tokens)
            for token, column in zip(d.tokens, columns, strict=True):
                if resolve(token) is None:
                    issue = self.finding(
                        "", f"{token!r} in the disable comment names no lint check",
                        hint=did_you_mean(token, known_spellings())
                        or "use a check id (HR201), a name (indicators.unused) or a family",
                    )
                    yield Issue(issue.code, issue.message,
                                Location(None, d.line, column, ""), issue.severity,
                                issue.hint, None, issue.ctx)


def unknown_tokens(tokens: Iterable[str]) -> list[str]:
    """The spellings that name no check."""
    return [t for t in tokens if resolve(t) is None]


CHECKS: list[type[Check]] = [UnknownCheck]
"""The checks of this family, in code order."""
