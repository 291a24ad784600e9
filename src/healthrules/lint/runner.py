"""Run the lint checks over a roadmap or over files, place the findings, apply suppressions.

The checks report YAML paths; the runner turns them into file, line and column with the
position map the loader kept for the roadmap (:func:`healthrules.loader.positions_of`), moves
findings about imported indicators to the import entry that brought them in (the loader
recorded it: :func:`healthrules.loader.origins_of`), drops the findings switched off by
configuration, by the file's ``lint: disable`` or by a ``# healthrules: disable=...`` comment,
and sorts the rest by position. Files are read once per run, and each roadmap is analysed
once (:func:`healthrules.analysis.analysis_of`).
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from healthrules._diagnostics import parent
from healthrules.errors import Issue, Location, RoadmapError, Severity
from healthrules.lint import (
    actions,
    expressions,
    indicators,
    scores,
    stages,
    suppression,
    thresholds,
)
from healthrules.lint.base import REGISTRY, Check, LintConfig, Status
from healthrules.lint.context import LintContext
from healthrules.lint.suppression import Directive, find_directives, resolve, suppressing_lines
from healthrules.loader import (
    FileCheck,
    Positions,
    check_files,
    iter_rule_files,
    load_text,
    origins_of,
    positions_of,
)
from healthrules.roadmap import Pack, Roadmap

__all__ = [
    "FileReport",
    "all_checks",
    "enabled_codes",
    "format_finding",
    "lint",
    "lint_paths",
    "lint_text",
]


def all_checks() -> list[type[Check]]:
    """The active checks, in registry (code) order.

    Raises
    ------
    RuntimeError
        When a check class and :data:`~healthrules.lint.base.REGISTRY` disagree (a bug).
    """
    classes = [*suppression.CHECKS, *stages.CHECKS, *indicators.CHECKS, *thresholds.CHECKS,
               *scores.CHECKS, *actions.CHECKS, *expressions.CHECKS]
    by_code: dict[str, type[Check]] = {}
    for cls in classes:
        if cls.code in by_code:
            raise RuntimeError(f"two checks have the code {cls.code}")
        by_code[cls.code] = cls
    out: list[type[Check]] = []
    for entry in REGISTRY:
        cls_or_none = by_code.pop(entry.code, None)
        if entry.status is Status.REMOVED:
            if cls_or_none is not None:
                raise RuntimeError(f"{entry.code} is removed but still has a check class")
            continue
        if cls_or_none is None or cls_or_none.name != entry.name:
            raise RuntimeError(f"{entry.code} ({entry.name}) has no matching check class")
        out.append(cls_or_none)
    if by_code:
        raise RuntimeError(f"checks missing from the registry: {', '.join(sorted(by_code))}")
    return out


def enabled_codes(config: LintConfig, file_disable: Iterable[str] = ()) -> frozenset[str]:
    """The codes of the checks that run, given the settings and a file's ``lint: disable``.

    Raises
    ------
    ValueError
        When ``config.select`` or ``config.disable`` holds a spelling that names no check
        (unknown spellings in a file are reported by HR001 instead).
    """
    active = frozenset(c.code for c in all_checks())
    bad = [t for t in [*(config.select or ()), *config.disable] if resolve(t) is None]
    if bad:
        raise ValueError(f"unknown lint check(s): {', '.join(sorted(bad))}")
    chosen = active
    if config.select is not None:
        chosen = frozenset().union(*(resolve(t) or frozenset() for t in config.select))
    off = frozenset().union(
        *(resolve(t) or frozenset() for t in [*config.disable, *file_disable])
    )
    return (chosen & active) - off


# --------------------------------------------------------------------------- placing findings

_INDICATOR = re.compile(r"^indicators\[(\d+)\]")


@dataclass
class _Placer:
    """Gives findings their file, line and column."""

    roadmap: Roadmap
    positions: Positions | None
    file: str | None
    offset: int
    imported: dict[str, str]
    import_sources: dict[str, str]

    def path(self, path: str) -> tuple[str, str | None]:
        """The path in this file, and a note when the node is in an imported library."""
        m = _INDICATOR.match(path)
        if m is None:
            return path, None
        i = int(m.group(1))
        if i < self.offset:
            ident = self.roadmap.indicators[i].id
            return self.imported.get(ident, "imports"), self.import_sources.get(ident)
        return f"indicators[{i - self.offset}]{path[m.end():]}", None

    def where(self, path: str, column: int | None = None) -> Location:
        if self.positions is None:
            return Location(self.file, None, None, path)
        if column is not None:
            loc: Location = self.positions.expr_where(path, column)
        else:
            # a mapping or a list is shown at its key (`weights:`), a scalar at its value
            block = isinstance(self.positions.value(path), (dict, list)) and not path.endswith("]")
            loc = self.positions.where(path, key=block)
        return dataclasses.replace(loc, file=self.file)

    def place(self, issue: Issue) -> Issue:
        if issue.location.line is not None:
            return dataclasses.replace(
                issue, location=dataclasses.replace(issue.location, file=self.file))
        path, source = self.path(issue.location.path)
        col = issue.ctx.get("expr_column")
        column = col if isinstance(col, int) and path == issue.location.path else None
        location = self.where(path, column)
        related = issue.related
        if related is not None and related.line is None:
            rpath, _ = self.path(related.path)
            related = self.where(rpath)
        message = issue.message
        if source is not None:
            message += f" (the indicator comes from {source})"
        return dataclasses.replace(issue, location=location, related=related, message=message)


def _imports(roadmap: Roadmap, positions: Positions | None,
             base_dir: Path) -> tuple[int, dict[str, str], dict[str, str]]:
    """How many indicators were imported, and for each the path of its import entry.

    The loader recorded both (:func:`healthrules.loader.origins_of`). A roadmap that does not
    carry that record (a copy of a loaded one) is loaded again from its text, once.
    """
    if positions is None or not roadmap.imports:
        return 0, {}, {}
    origins = origins_of(roadmap)
    if not origins:
        own = positions.value("indicators")
        if len(roadmap.indicators) == (len(own) if isinstance(own, list) else 0):
            return 0, {}, {}
        try:
            fresh = load_text(positions.text, source=positions.file, base_dir=base_dir)
        except RoadmapError:
            fresh = None
        if isinstance(fresh, Roadmap):
            origins = origins_of(fresh)
    imported = roadmap.indicators[:len(origins)]
    if [ind.id for ind in imported] != list(origins):
        origins = {}
    return (len(origins), {i: o.entry for i, o in origins.items()},
            {i: o.ref for i, o in origins.items()})


def _suppressed(issue: Issue, directives: Sequence[Directive], lines: Sequence[str],
                positions: Positions | None) -> bool:
    """Whether a disable comment on the node (or one of its parents) covers the finding."""
    if not directives:
        return False
    by_line = {d.line: d for d in directives}
    candidates: set[int] = set()
    if issue.location.line is not None:
        candidates.add(issue.location.line)
    path: str | None = issue.location.path
    if positions is not None:
        while path:
            loc = positions.where(path, key=True)
            if loc.line is not None:
                candidates.add(loc.line)
            path = parent(path)
    for line in candidates:
        for k in suppressing_lines(lines, line):
            d = by_line.get(k)
            if d is None or (k != line and not d.whole_line):
                continue
            if issue.code in d.codes:
                return True
    return False


def lint(
    roadmap: Roadmap,
    *,
    config: LintConfig | None = None,
    text: str | None = None,
    pack: Pack | None = None,
) -> list[Issue]:
    """Lint one loaded roadmap.

    Parameters
    ----------
    roadmap
        A roadmap as :func:`healthrules.load` returns it (its ``source`` says which file it
        came from), or one built with ``Roadmap.model_validate``.
    config
        Which checks run and their settings; the roadmap's ``lint: disable`` adds to it.
    text
        The YAML text of the roadmap, when it is not in the file ``roadmap.source``: it gives
        the findings their line and column and holds the ``# healthrules: disable`` comments.
        Without a text or a readable source, findings carry only their YAML path.
    pack
        The pack the roadmap was loaded through: then its tracks are checked too (a track
        that earlier tracks take every account from).

    Returns
    -------
    list of Issue
        The findings, sorted by position; ``code`` is the check id and ``ctx["check"]`` its
        name.

    Raises
    ------
    ValueError
        When ``config`` names a check that does not exist.

    Examples
    --------
    >>> from healthrules.loader import load_text
    >>> from healthrules.lint import lint
    >>> text = '''
    ... id: demo
    ... goal: Customers use the product weekly
    ... stages:
    ...   - id: operation
    ...     achievement: {text: weekly use, when: logins_30d >= 4}
    ...     actions:
    ...       - {id: nudge, kind: challenge, when: logins_30d < 0, do: "Call them", owner: csm,
    ...          channel: phone}
    ... indicators:
    ...   - {id: logins_30d, family: outcome, aggregate: count, window: 30d,
    ...      bands: {levels: [{name: low, lt: 4}, {name: ok, ge: 4}]}}
    ... '''
    >>> for f in lint(load_text(text), text=text):
    ...     print(f.location.line, f.code, f.message)
    8 HR501 the condition of action 'nudge' is never true: `logins_30d < 0` is never true: logins_30d is a count of events, never negative
    8 HR506 the text of action 'nudge' quotes no value
    """  # noqa: E501
    config = config or LintConfig()
    codes = enabled_codes(config, roadmap.lint.disable)
    file = roadmap.source
    positions = positions_of(roadmap)  # the document the loader read: no second parse
    if positions is not None and (text is None or text == positions.text):
        text = positions.text
    else:
        if text is None and file is not None and os.path.isfile(file):
            text = Path(file).read_text(encoding="utf-8-sig")
        positions = Positions.from_text(text, source=file) if text is not None else None
    base_dir = Path(file).parent if file is not None else Path.cwd()
    offset, imported, sources = _imports(roadmap, positions, base_dir)
    directives = tuple(find_directives(text)) if text is not None else ()
    ctx = LintContext(roadmap, config, imported, directives, pack)
    placer = _Placer(roadmap, positions, file, offset, imported, sources)
    lines = text.splitlines() if text is not None else []
    out: list[Issue] = []
    seen: set[tuple[Any, ...]] = set()
    for cls in all_checks():
        if cls.code not in codes:
            continue
        for raw in cls().run(ctx):
            issue = placer.place(raw)
            if _suppressed(issue, directives, lines, positions):
                continue
            key = (issue.code, issue.message, issue.location.line, issue.location.column,
                   issue.location.path)
            if key not in seen:
                seen.add(key)
                out.append(issue)
    return sorted(out, key=_order)


def _order(issue: Issue) -> tuple[str, int, int, str, str]:
    loc = issue.location
    return (loc.file or "", loc.line or 0, loc.column or 0, issue.code, issue.message)


def lint_text(
    text: str,
    *,
    source: str | None = None,
    base_dir: Path | None = None,
    config: LintConfig | None = None,
) -> list[Issue]:
    """Load a roadmap from YAML text and lint it.

    Parameters
    ----------
    text
        The roadmap YAML.
    source
        The file name to report.
    base_dir
        Where relative ``imports`` paths start (default: the folder of ``source``).
    config
        Which checks run.

    Returns
    -------
    list of Issue

    Raises
    ------
    RoadmapError
        When the text is not a valid roadmap.
    """
    model = load_text(text, source=source, base_dir=base_dir)
    if not isinstance(model, Roadmap):
        raise RoadmapError([Issue(code="validation", severity=Severity.ERROR,
                                  message=f"lint_text needs a roadmap, not a {model.kind}",
                                  location=Location(source, 1, 1, "kind"))])
    return lint(model, config=config, text=text)


@dataclass(frozen=True, slots=True)
class FileReport:
    """The result of linting one file.

    ``load_issues`` holds the problems that stopped the file from loading (then there are no
    findings); ``findings`` the lint findings. Indicator libraries and rule-pack test files are
    ``skipped``: libraries are linted through the roadmaps that import them.
    """

    path: str
    kind: str | None
    findings: tuple[Issue, ...] = ()
    load_issues: tuple[Issue, ...] = ()
    skipped: bool = False

    @property
    def issues(self) -> tuple[Issue, ...]:
        """Load problems and findings together."""
        return (*self.load_issues, *self.findings)

    def count(self, severity: Severity) -> int:
        """How many findings (and load problems) have this severity."""
        return sum(1 for i in self.issues if i.severity is severity)


def lint_paths(
    paths: Iterable[str | os.PathLike[str]], *, config: LintConfig | None = None
) -> list[FileReport]:
    """Lint roadmap and pack files; folders are searched for ``*.yaml`` / ``*.yml`` files.

    A pack is linted through its roadmaps, as tracks of the pack (each reported under its own
    file, once even when it is also given directly). Indicator libraries and test files are
    skipped.

    Parameters
    ----------
    paths
        Files and folders.
    config
        Which checks run.

    Returns
    -------
    list of FileReport
        One per file, in the order found.

    Raises
    ------
    ValueError
        When ``config`` names a check that does not exist.
    """
    config = config or LintConfig()
    enabled_codes(config)  # fail early on unknown spellings
    files = list(iter_rule_files(paths))
    # one loader session for the whole run: every file (and every library the roadmaps
    # share) is read once, and a roadmap met twice is the same object, analysed once
    found: list[tuple[Path, Path, str | None, FileCheck]] = []
    for path, check in zip(files, check_files(files), strict=True):
        key = path.resolve()
        if all(key != k for _, k, _, _ in found):
            kind = check.kind if check.kind is not None else _peek_kind(path)
            found.append((path, key, kind, check))
    slots: dict[Path, list[FileReport]] = {key: [] for _, key, _, _ in found}
    linted: set[Path] = set()
    # packs first, so that their roadmaps are linted as tracks of the pack
    for path, key, kind, check in found:
        if kind != "pack":
            continue
        linted.add(key)
        pack = check.model
        if not isinstance(pack, Pack):
            slots[key].append(FileReport(os.fspath(path), kind, load_issues=_load_issues(check)))
            continue
        slots[key].append(FileReport(os.fspath(path), "pack"))
        for r in pack.loaded:
            rkey = Path(r.source).resolve() if r.source else key
            if rkey in linted:
                continue  # a roadmap in two packs is linted with the first one
            linted.add(rkey)
            report = FileReport(r.source or os.fspath(path), "roadmap",
                                findings=tuple(lint(r, config=config, pack=pack)))
            slots.get(rkey, slots[key]).append(report)
    for path, key, kind, check in found:
        if key in linted:
            continue
        display = os.fspath(path)
        if kind in ("library", "test"):
            slots[key].append(FileReport(display, kind, skipped=True))
            continue
        model = check.model
        if not isinstance(model, Roadmap):
            slots[key].append(FileReport(display, kind, load_issues=_load_issues(check)))
            continue
        slots[key].append(FileReport(display, "roadmap",
                                     findings=tuple(lint(model, config=config))))
    return [report for _, key, _, _ in found for report in slots[key]]


def _load_issues(check: FileCheck) -> tuple[Issue, ...]:
    """The problems that stop a file from loading, as :func:`healthrules.load` raises them."""
    errors = [i for i in check.issues if i.severity is Severity.ERROR]
    return tuple(RoadmapError(errors or check.issues).errors())


def _peek_kind(path: Path) -> str | None:
    """The kind of a file the loader could not classify: None, or ``roadmap`` (the default)
    when the file is readable YAML whose ``kind`` is not text."""
    try:
        kind = Positions.from_file(path).value("kind")
    except (RoadmapError, OSError):
        return None
    return kind if isinstance(kind, str) else "roadmap"


def format_finding(issue: Issue) -> str:
    """Render a finding as ``file:line:col: severity: message (check-id)`` plus a hint line.

    Examples
    --------
    >>> from healthrules.errors import Issue, Location, Severity
    >>> from healthrules.lint import format_finding
    >>> print(format_finding(Issue("HR503", "action 'x' has no owner",
    ...       Location("r.yaml", 12, 7, "actions[0]"), Severity.WARNING, "add `owner:`")))
    r.yaml:12:7: warning: action 'x' has no owner (HR503)
      hint: add `owner:`
    """
    text = f"{issue.location}: {issue.severity.value}: {issue.message} ({issue.code})"
    if issue.hint:
        text += f"\n  hint: {issue.hint}"
    if issue.related is not None and issue.related.line is not None:
        text += f"\n  see also: {issue.related}"
    return text
