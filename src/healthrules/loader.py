"""Read roadmap, pack and indicator-library files into validated models, every problem positioned.

The loader reads each file with :class:`Positions` (UTF-8, at most 10 MiB, YAML 1.2 core
scalars: ``on``, ``yes`` and ``no`` stay text, dates stay text; the line and column of every
node by YAML path, ``stages[2].actions[0].when``), validates the values with the pydantic models
of :mod:`healthrules.roadmap`, merges imported indicator libraries, checks that the roadmaps of a
pack agree (:mod:`healthrules.pack_contract`), analyses each roadmap once
(:func:`healthrules.analysis.analysis_of`), and gives every problem found on the way a file,
line, column and YAML path. All problems of a file are collected and raised together, once.
For every roadmap it returns it keeps the document and where each imported indicator came from
(:func:`positions_of`, :func:`origins_of`). Reading YAML and wording pydantic errors live in
the private :mod:`healthrules._diagnostics`, shared with test files and lint.
"""

from __future__ import annotations

import dataclasses
import os
import re
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import pydantic

from healthrules._diagnostics import (
    MAX_DEPTH,
    MAX_FILE_BYTES,
    MAX_NODES,
    Fatal,
    Positions,
    did_you_mean,
    error_for,
    guess,
    parse_yaml,
    quote_list,
    read_file,
    suggestion_budget,
    validation_issues,
)
from healthrules.analysis import RESERVED_NAMES, analysis_of, unknown_names
from healthrules.errors import Code, Issue, Location, Severity
from healthrules.expressions import ExprProblem, Type, parse
from healthrules.pack_contract import pack_issues
from healthrules.roadmap import (
    ID_PATTERN,
    AggregateIndicator,
    DerivedIndicator,
    EventColumns,
    IndicatorLibrary,
    Pack,
    Roadmap,
    RollupIndicator,
    events_form,
)

__all__ = [
    "MAX_DEPTH",
    "MAX_FILE_BYTES",
    "MAX_NODES",
    "FileCheck",
    "Origin",
    "Positions",
    "check_files",
    "check_paths",
    "iter_rule_files",
    "load",
    "load_text",
    "origins_of",
    "positions_of",
]


_KINDS: Final = ("roadmap", "library", "pack")
_TEST_KIND: Final = "test"
_YAML_SUFFIXES: Final = (".yaml", ".yml")


Model = Roadmap | Pack | IndicatorLibrary


def _validate(doc: Positions, model: type[Model]) -> Model | None:
    """Validate the document's data; issues go to ``doc.issues``. None when invalid."""
    data = dict(doc.data)
    for name, info in model.model_fields.items():
        if info.exclude and name in data:
            doc.issue("extra_forbidden", f"unknown key {name!r} (it is set by the loader)",
                      name, key=True)
            del data[name]
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        doc.issues.extend(validation_issues(doc, model, exc, id_pattern=ID_PATTERN))
        return None


# --------------------------------------------------------------------------- loading


@dataclass(frozen=True, slots=True)
class Origin:
    """Where an imported indicator of a loaded roadmap is defined, and which import took it.

    Attributes
    ----------
    file
        The indicator library's file, as reported in locations.
    path
        The indicator's YAML path in that file (``indicators[3]``).
    line, column
        The position of that node in the library (1-based).
    entry
        The YAML path, in the importing roadmap, of the import entry that brought the
        indicator in: ``imports[0].path`` (the whole library) or ``imports[0].indicators[1]``
        (a listed id).
    ref
        The import's ``path`` as written in the roadmap (``lib/shared.yaml``).
    """

    file: str | None
    path: str
    line: int | None
    column: int | None
    entry: str
    ref: str


@dataclass(frozen=True, slots=True)
class _Record:
    doc: Positions
    origins: dict[str, Origin]


_LOADED: dict[int, tuple[weakref.ref[Roadmap], _Record]] = {}
"""What the loader knows of each roadmap it returned, by object (dropped with the object)."""


def _remember(roadmap: Roadmap, record: _Record) -> None:
    key = id(roadmap)
    table = _LOADED  # bound here: the callback may run while the interpreter shuts down

    def forget(_ref: weakref.ref[Roadmap]) -> None:
        table.pop(key, None)

    _LOADED[key] = (weakref.ref(roadmap, forget), record)


def _record(roadmap: Roadmap) -> _Record | None:
    hit = _LOADED.get(id(roadmap))
    if hit is not None and hit[0]() is roadmap:
        return hit[1]
    return None


def origins_of(roadmap: Roadmap) -> Mapping[str, Origin]:
    """Where each imported indicator of a loaded roadmap comes from, by indicator id.

    The loader records it for every roadmap it returns (:func:`load`, :func:`load_text`, the
    roadmaps of a loaded pack), so that tools reporting on the roadmap (``healthrules lint``)
    place findings without reading the files again. The record belongs to the object: a
    roadmap built otherwise, or a copy (``model_copy``), has none.

    Parameters
    ----------
    roadmap
        A roadmap as the loader returned it.

    Returns
    -------
    Mapping of str to Origin
        In import order (the order of the imported indicators, which come first in
        ``roadmap.indicators``); empty when nothing was imported or the roadmap was not
        loaded from YAML.

    Examples
    --------
    >>> from healthrules.loader import load, origins_of
    >>> roadmap = load("rules/examples/full-format/roadmap.yaml")  # doctest: +SKIP
    >>> o = origins_of(roadmap)["logins_30d"]  # doctest: +SKIP
    >>> o.file, o.line, o.column, o.entry  # doctest: +SKIP
    ('rules/examples/full-format/indicators.yaml', 12, 5, 'imports[0].indicators[0]')
    """
    record = _record(roadmap)
    return dict(record.origins) if record is not None else {}


def positions_of(roadmap: Roadmap) -> Positions | None:
    """The YAML document a loaded roadmap was read from (text, values, positions).

    None for a roadmap the loader did not return (built with ``Roadmap.model_validate``, or a
    copy). See :func:`origins_of`.
    """
    record = _record(roadmap)
    return record.doc if record is not None else None



@dataclass
class _Entry:
    """One file met during a load: read once, processed once."""

    display: str
    doc: Positions | None = None
    fatal: Issue | None = None
    model: Model | None = None
    state: str = "read"  # read -> processing -> done

    @property
    def issues(self) -> list[Issue]:
        if self.fatal is not None:
            return [self.fatal]
        return self.doc.issues if self.doc is not None else []


@dataclass
class _Session:
    """One call of load/check: a file imported by several others is read once."""

    entries: dict[Path, _Entry] = field(default_factory=dict)

    def open(self, path: Path, display: str) -> _Entry:
        """Read and parse a file (cached by its resolved path)."""
        key = path.resolve()
        entry = self.entries.get(key)
        if entry is None:
            entry = _Entry(display)
            try:
                entry.doc = read_file(path, display)
            except Fatal as exc:
                entry.fatal = exc.issue
            self.entries[key] = entry
        return entry

    def process(self, entry: _Entry, base_dir: Path) -> None:
        """Validate, resolve and analyze an opened file (once)."""
        if entry.state != "read" or entry.doc is None:
            return
        entry.state = "processing"
        entry.model = _process(entry.doc, base_dir, self)
        entry.state = "done"


def _kind(doc: Positions) -> str | None:
    kind = doc.data.get("kind", "roadmap")
    if isinstance(kind, str) and kind in (*_KINDS, _TEST_KIND):
        return kind
    close = guess(kind, _KINDS) if isinstance(kind, str) else None
    doc.issue("literal_error", f"unknown file kind {kind!r}", "kind",
              hint=f"{close + ' ' if close else ''}allowed: {quote_list(_KINDS)}")
    return None


def _process(doc: Positions, base_dir: Path, session: _Session) -> Model | None:
    """Validate, resolve imports / pack members and analyze one parsed document."""
    with suggestion_budget():  # did-you-mean work is bounded per file
        return _process_document(doc, base_dir, session)


def _process_document(doc: Positions, base_dir: Path, session: _Session) -> Model | None:
    kind = _kind(doc)
    if kind is None:
        return None
    if kind == _TEST_KIND:
        doc.issue(Code.VALIDATION, "this is a rule-pack test file (kind: test), not a roadmap",
                  "kind", hint="test files are run by the test runner, not loaded")
        return None
    models: dict[str, type[Model]] = {
        "roadmap": Roadmap, "library": IndicatorLibrary, "pack": Pack
    }
    model_cls = models[kind]
    model = _validate(doc, model_cls)
    if model is None:
        if kind in ("roadmap", "library"):
            # a library's expressions read the names of the roadmaps that import it
            _raw_expression_issues(doc, check_names=kind == "roadmap")
        return None
    if isinstance(model, Roadmap):
        return _finish_roadmap(doc, model, base_dir, session)
    if isinstance(model, IndicatorLibrary):
        _check_library(doc, model)
        return None if _errors_in(doc.issues) else model
    return _finish_pack(doc, model, base_dir, session)


_EXPRESSION_KEYS = frozenset(
    {"when", "resolved_when", "expr", "entry", "where", "applies_to", "done_when"})


def _expressions_in(value: object, path: str) -> Iterator[tuple[str, str]]:
    """(YAML path, text) of every expression-valued key of a raw document."""
    if isinstance(value, dict):
        for k, v in value.items():
            sub = f"{path}.{k}" if path else str(k)
            if k in _EXPRESSION_KEYS and isinstance(v, str):
                yield sub, v
            else:
                yield from _expressions_in(v, sub)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _expressions_in(v, f"{path}[{i}]")


def _raw_names(data: dict[str, Any]) -> dict[str, Type] | None:
    """Every name some expression of the document may read (None when imports bring names
    that only loading the libraries would tell)."""
    if data.get("imports"):
        return None
    names: dict[str, Type] = {n: "float" for n in (*RESERVED_NAMES, "as_of")}
    indicators = data.get("indicators")
    for ind in indicators if isinstance(indicators, list) else []:
        if isinstance(ind, dict) and isinstance(ind.get("id"), str):
            names[ind["id"]] = "float"
    contract: dict[str, Any] = data["data"] if isinstance(data.get("data"), dict) else {}
    declared: dict[str, Any] = (contract["events"] if isinstance(contract.get("events"), dict)
                                else {})
    # one frame's columns, or named sources (see roadmap.EventSources)
    sources = ([x for x in declared.values() if isinstance(x, dict)]
               if events_form(declared) == "sources" else [declared])
    defaults = {name: info.default for name, info in EventColumns.model_fields.items()
                if isinstance(info.default, str)}
    for events in sources:
        for name, default in defaults.items():
            column = events.get(name, default)
            if isinstance(column, str):
                names[column] = "float"
    for section, key in (*((e, "values") for e in sources),
                         (contract.get("accounts"), "attributes")):
        group = section.get(key) if isinstance(section, dict) else None
        if isinstance(group, dict):
            names.update({str(n): "float" for n in group})
    return names


def _raw_expression_issues(doc: Positions, *, check_names: bool) -> None:
    """Problems of the expressions of a document that failed validation.

    The analysis needs a valid model, so without this a band gap hid a syntax error or a
    misspelt name until it was fixed. Here every expression text is parsed (syntax and the
    allow-list), and its names are checked against every name the document declares, so
    one run of ``validate`` reports them with the model's problems. Types and scopes are
    checked once the model is valid.
    """
    data = doc.data
    if not isinstance(data, dict):
        return
    known = _raw_names(data) if check_names else None
    for path, text in _expressions_in(data, ""):
        try:
            parsed = parse(text)
        except ExprProblem as p:
            doc.issues.append(Issue(code=p.code, message=p.message, hint=p.hint,
                                    location=doc.expr_where(path, p.column)))
            continue
        if known is not None:
            for problem in unknown_names(parsed, known):
                doc.issues.append(Issue(code=problem.code, message=problem.message,
                                        hint=problem.hint,
                                        location=doc.expr_where(path, problem.column)))


def _errors_in(issues: Iterable[Issue]) -> list[Issue]:
    return [i for i in issues if i.severity is Severity.ERROR]


def _finish_roadmap(doc: Positions, roadmap: Roadmap, base_dir: Path,
                    session: _Session) -> Roadmap | None:
    # imports: the imported indicators go first, in import order
    imported: list[AggregateIndicator | DerivedIndicator | RollupIndicator] = []
    origins: list[tuple[Positions, int]] = []
    records: dict[str, Origin] = {}
    first_entry: dict[str, str] = {}
    for k, imp in enumerate(roadmap.imports):
        entry = f"imports[{k}]"
        result = _load_reference(doc, f"{entry}.path", imp.path, base_dir, session,
                                 expect="library")
        if result is None:
            continue
        lib_doc, lib = result
        assert isinstance(lib, IndicatorLibrary)
        ids = [ind.id for ind in lib.indicators]
        wanted: list[tuple[str, str]] = []
        if imp.indicators is None:
            wanted = [(ident, f"{entry}.path") for ident in ids]
        else:
            for j, ident in enumerate(imp.indicators):
                ipath = f"{entry}.indicators[{j}]"
                if ident not in ids:
                    doc.issue(Code.UNKNOWN_INDICATOR,
                              f"library {lib.id!r} has no indicator {ident!r}", ipath,
                              hint=did_you_mean(ident, ids) or f"it has: {', '.join(ids)}")
                    continue
                wanted.append((ident, ipath))
        for ident, ipath in wanted:
            if ident in first_entry:
                doc.issue(Code.DUPLICATE_ID, f"indicator {ident!r} is imported twice", ipath,
                          related=doc.where(first_entry[ident]))
                continue
            first_entry[ident] = ipath
            index = ids.index(ident)
            imported.append(lib.indicators[index])
            origins.append((lib_doc, index))
            at = lib_doc.where(f"indicators[{index}]")
            records[ident] = Origin(at.file, at.path, at.line, at.column, ipath, imp.path)
    if _errors_in(doc.issues):
        return None
    merged = roadmap.model_copy(
        update={"indicators": [*imported, *roadmap.indicators], "source": doc.file}
    )
    analysis = analysis_of(merged)
    for issue in analysis.issues:
        doc.issues.append(_place(issue, doc, origins))
    if _errors_in(doc.issues):
        return None
    _remember(merged, _Record(doc, records))
    return merged


_INDICATOR_PATH = re.compile(r"^indicators\[(\d+)\]")
_NAMED_KEY = re.compile(
    r"(?:^|\.)(?:attributes|values|indicators|families|stages|hysteresis)\.[^.\[\]]+$"
)
"""Paths whose last key is a name the user chose (an attribute, a weight, a stage override):
problems about such a name are shown at the key, not at its value."""


def _place(issue: Issue, doc: Positions, origins: Sequence[tuple[Positions, int]]) -> Issue:
    """Give an analysis issue its file, line and column (imported indicators: the library's)."""

    def locate(path: str, expr_column: int | None) -> Location:
        target, local = doc, path
        m = _INDICATOR_PATH.match(path)
        if m is not None:
            i = int(m.group(1))
            if i < len(origins):
                target, orig = origins[i]
                local = f"indicators[{orig}]{path[m.end():]}"
            else:
                local = f"indicators[{i - len(origins)}]{path[m.end():]}"
        if expr_column is not None:
            return target.expr_where(local, expr_column)
        return target.where(local, key=_NAMED_KEY.search(local) is not None)

    col = issue.ctx.get("expr_column")
    location = locate(issue.location.path, col if isinstance(col, int) else None)
    related = (locate(issue.related.path, None)
               if issue.related is not None and issue.related.file is None else issue.related)
    message = issue.message
    if location.file != doc.file:
        # a problem inside an imported library is a problem of the roadmap that imports it
        # (its data contract, its other indicators): name that roadmap, point at its imports
        rid = doc.data.get("id") if isinstance(doc.data, dict) else None
        message += f" (in roadmap {rid!r}, which imports this indicator)" if isinstance(
            rid, str) else " (in the roadmap that imports this indicator)"
        if related is None:
            related = doc.where("imports")
    return dataclasses.replace(issue, message=message, location=location, related=related)


def _check_library(doc: Positions, lib: IndicatorLibrary) -> None:
    """What can be checked in a library alone: unique ids and expression syntax."""
    seen: dict[str, str] = {}
    for i, ind in enumerate(lib.indicators):
        path = f"indicators[{i}].id"
        if ind.id in seen:
            doc.issue(Code.DUPLICATE_ID, f"indicator id {ind.id!r} is defined twice", path,
                      related=doc.where(seen[ind.id]))
        else:
            seen[ind.id] = path
        text, tpath = (
            (ind.expr, f"indicators[{i}].expr") if isinstance(ind, DerivedIndicator)
            else (ind.of, f"indicators[{i}].of") if isinstance(ind, RollupIndicator)
            else (ind.where, f"indicators[{i}].where")
        )
        if text is None:
            continue
        try:
            parse(text)
        except ExprProblem as p:
            doc.issues.append(Issue(code=p.code, message=p.message, hint=p.hint,
                                    location=doc.expr_where(tpath, p.column),
                                    ctx={"expr_column": p.column}))


def _finish_pack(doc: Positions, pack: Pack, base_dir: Path, session: _Session) -> Pack | None:
    loaded: list[Roadmap] = []
    ids: dict[str, str] = {}
    for i, ref in enumerate(pack.roadmaps):
        path = f"roadmaps[{i}]"
        result = _load_reference(doc, path, ref, base_dir, session, expect="roadmap")
        if result is None:
            continue
        roadmap = result[1]
        assert isinstance(roadmap, Roadmap)
        if roadmap.id in ids:
            doc.issue(Code.DUPLICATE_ID, f"two roadmaps of the pack have the id {roadmap.id!r}",
                      path, related=doc.where(ids[roadmap.id]),
                      hint="each track needs its own id")
            continue
        ids[roadmap.id] = path
        loaded.append(roadmap)
    if _errors_in(doc.issues):
        return None
    _check_tracks_agree(doc, loaded)
    if _errors_in(doc.issues):
        return None
    return pack.model_copy(update={"loaded": loaded, "source": doc.file})


def _check_tracks_agree(doc: Positions, loaded: list[Roadmap]) -> None:
    """The roadmaps of a pack read the same frames (see :mod:`healthrules.pack_contract`)."""
    index = {r.source: i for i, r in enumerate(loaded)}
    for issue in pack_issues(loaded):
        i = index.get(issue.location.file, 0)
        where = f"{issue.location.file}: {issue.location.path}" if issue.location.path else (
            issue.location.file or "")
        doc.issue(issue.code, f"{issue.message} ({where})", f"roadmaps[{i}]",
                  hint=issue.hint or "the tracks of a pack must declare the same event "
                  "columns and account key, and give shared attributes one type")


def _load_reference(doc: Positions, path: str, ref: str, base_dir: Path, session: _Session, *,
                    expect: str) -> tuple[Positions, Model] | None:
    """Load a file named by an import or a pack entry; problems land in ``doc.issues``."""
    verb = "import" if expect == "library" else "include"
    target = base_dir / ref
    if doc.file is not None and target.resolve() == Path(doc.file).resolve():
        doc.issue(Code.IMPORT_FAILED, f"{ref!r} is this file itself: a file cannot {verb} "
                  "itself", path)
        return None
    entry = session.open(target, os.path.normpath(target))
    if entry.fatal is not None and entry.fatal.code in (
        Code.FILE_NOT_FOUND.value, Code.FILE_UNREADABLE.value
    ):
        doc.issue(Code.IMPORT_FAILED, f"cannot {verb} {ref!r}: {entry.fatal.message}", path,
                  hint=f"the path is relative to the folder {os.path.normpath(base_dir)}")
        return None
    if entry.doc is not None:
        kind = entry.doc.data.get("kind", "roadmap")
        if kind != expect:
            what = "an indicator library (kind: library)" if expect == "library" else "a roadmap"
            doc.issue(Code.IMPORT_FAILED, f"cannot {verb} {ref!r}: it is a {kind} file, not "
                      f"{what}", path)
            return None
        if entry.state == "processing":
            doc.issue(Code.IMPORT_FAILED, f"cannot {verb} {ref!r}: the files refer to each "
                      "other in a loop", path)
            return None
        session.process(entry, target.parent)
    if entry.model is None or entry.doc is None:
        doc.issue(Code.IMPORT_FAILED, f"cannot {verb} {ref!r}: it has errors", path,
                  hint=f"see the problems reported in {entry.display}")
        for issue in entry.issues:
            if issue not in doc.issues:
                doc.issues.append(issue)
        return None
    return entry.doc, entry.model


def _unique(issues: Iterable[Issue]) -> list[Issue]:
    seen: set[tuple[Any, ...]] = set()
    out: list[Issue] = []
    for i in issues:
        marker = (i.code, i.message, i.location.file, i.location.line, i.location.column,
                  i.location.path)
        if marker not in seen:
            seen.add(marker)
            out.append(i)
    return out


def load(path: str | os.PathLike[str]) -> Roadmap | Pack:
    """Load a roadmap file or a pack file.

    A roadmap's imported indicators are merged in front of its own; a pack's roadmaps are
    loaded, in order, into :attr:`Pack.loaded`. ``source`` is set to the file's path.

    Parameters
    ----------
    path
        The YAML file.

    Returns
    -------
    Roadmap or Pack

    Raises
    ------
    RoadmapError
        Carrying every problem found (for a pack, in all its files), sorted by file position;
        the subclass says what kind of problem it is when they are all of one kind
        (:class:`SyntaxError_`, :class:`ValidationError`, :class:`ReferenceError_`,
        :class:`ExpressionError`).

    See Also
    --------
    load_text : load YAML text.
    check_paths : check many files and folders, collecting problems instead of raising.

    Examples
    --------
    >>> import healthrules.loader as loader
    >>> roadmap = loader.load("rules/examples/full-format/roadmap.yaml")  # doctest: +SKIP
    >>> roadmap.id  # doctest: +SKIP
    'analytics_self_serve'
    """
    session = _Session()
    entry = session.open(Path(path), os.fspath(path))
    if entry.doc is not None and entry.doc.data.get("kind") == "library":
        entry.doc.issue(Code.VALIDATION, "this is an indicator library (kind: library); load a "
                        "roadmap that imports it", "kind")
    else:
        session.process(entry, Path(path).parent)
    model = entry.model
    if not isinstance(model, (Roadmap, Pack)):
        raise error_for(_unique(_errors_in(entry.issues)) or entry.issues)
    return model


def load_text(
    text: str, *, source: str | None = None, base_dir: Path | None = None
) -> Roadmap | Pack | IndicatorLibrary:
    """Load a roadmap, pack or indicator library from YAML text.

    Parameters
    ----------
    text
        The YAML document.
    source
        The name to report in problems (and to store in ``source``), e.g. the file name.
    base_dir
        The folder that relative ``imports`` and pack ``roadmaps`` paths start from; by
        default the folder of ``source``, else the current folder.

    Returns
    -------
    Roadmap, Pack or IndicatorLibrary
        Chosen by the document's top-level ``kind`` (default ``roadmap``).

    Raises
    ------
    RoadmapError
        Carrying every problem found, each with its line, column and YAML path.

    Examples
    --------
    >>> from healthrules.loader import load_text
    >>> r = load_text('''
    ... id: demo
    ... goal: Customers use the product weekly
    ... stages:
    ...   - id: operation
    ... ''')
    >>> r.id, [s.id for s in r.stages]
    ('demo', ['operation'])
    >>> load_text("id: demo\\ngoal: g\\nstages: [{id: a, titel: x}]")
    Traceback (most recent call last):
    ...
    healthrules.errors.ValidationError: <string>:3:18: error: unknown key 'titel' (at stages[0].titel) [extra_forbidden]
      hint: did you mean 'title'? allowed keys: achievement, actions, description, entry, id, tasks, title
    """  # noqa: E501
    if base_dir is None:
        base_dir = Path(source).parent if source is not None else Path.cwd()
    try:
        doc = parse_yaml(text, source)
    except Fatal as exc:
        raise error_for([exc.issue]) from None
    model = _process(doc, base_dir, _Session())
    if model is None:
        raise error_for(_unique(_errors_in(doc.issues)) or doc.issues)
    return model


# --------------------------------------------------------------------------- checking many


@dataclass(frozen=True, slots=True)
class FileCheck:
    """The result of checking one file: its kind, whether it was skipped, and its issues."""

    path: str
    kind: str | None
    issues: tuple[Issue, ...]
    skipped: bool = False
    model: Roadmap | Pack | IndicatorLibrary | None = field(default=None, compare=False,
                                                            repr=False)
    """The loaded model when the file is valid (None when it is invalid or skipped)."""

    @property
    def ok(self) -> bool:
        """True when the file has no error-severity issue (skipped files are ok)."""
        return not _errors_in(self.issues)

    @property
    def status(self) -> str:
        """``valid``, ``invalid`` or ``skipped``."""
        if self.skipped:
            return "skipped"
        return "valid" if self.ok else "invalid"


def iter_rule_files(paths: Iterable[str | os.PathLike[str]]) -> Iterator[Path]:
    """Yield the given files, and every ``*.yaml`` / ``*.yml`` file under the given folders.

    Folders are walked recursively in sorted order; hidden files and folders are skipped.
    A path that does not exist is yielded as is, so that checking it reports it.

    Parameters
    ----------
    paths
        Files and folders.

    Yields
    ------
    Path
        Each file, in order.
    """
    for p in paths:
        path = Path(p)
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(files):
                    if name.endswith(_YAML_SUFFIXES) and not name.startswith("."):
                        yield Path(root) / name
        else:
            yield path


def check_files(paths: Iterable[str | os.PathLike[str]]) -> list[FileCheck]:
    """Check roadmap, pack and library files (folders are searched), one result per file.

    Files whose top-level ``kind`` is ``test`` are rule-pack test files: they are reported as
    skipped. The issues of a file include those of the files it imports or includes, so one
    problem in a shared library can appear under several files (:func:`check_paths` lists it
    once).

    Parameters
    ----------
    paths
        Files and folders.

    Returns
    -------
    list of FileCheck
        In the order the files were found.
    """
    session = _Session()
    results: list[FileCheck] = []
    for path in iter_rule_files(paths):
        entry = session.open(path, os.fspath(path))
        kind: str | None = None
        if entry.doc is not None:
            raw_kind = entry.doc.data.get("kind", "roadmap")
            kind = raw_kind if isinstance(raw_kind, str) else None
            if kind == _TEST_KIND:
                results.append(FileCheck(entry.display, kind, (), skipped=True))
                continue
        session.process(entry, path.parent)
        results.append(FileCheck(entry.display, kind, tuple(_unique(entry.issues)),
                                 model=entry.model))
    return results


def check_paths(paths: Iterable[str | os.PathLike[str]]) -> list[Issue]:
    """Check roadmap, pack and library files and folders; return every issue found.

    Folders are searched recursively for ``*.yaml`` and ``*.yml`` files; rule-pack test
    files (``kind: test``) are skipped. Nothing is raised for a bad roadmap.

    Parameters
    ----------
    paths
        Files and folders.

    Returns
    -------
    list of Issue
        Empty when every file is valid; otherwise sorted by file and position.

    Examples
    --------
    >>> from healthrules.loader import check_paths
    >>> check_paths(["rules/examples"])  # doctest: +SKIP
    []
    """
    issues = [i for fc in check_files(paths) for i in fc.issues]
    return sorted(_unique(issues), key=lambda i: (i.location.file or "", i.location.line or 0,
                                                  i.location.column or 0, i.message))
