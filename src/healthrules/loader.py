"""Read roadmap, pack and indicator-library files into validated models, every problem positioned.

The loader decodes the file (UTF-8, at most 10 MiB), composes it with PyYAML into nodes that
carry their marks, builds plain Python values itself (YAML 1.2 core scalars: ``on``, ``yes`` and
``no`` stay text, dates stay text), records the line and column of every node by YAML path
(``stages[2].actions[0].when``), validates the values with the pydantic models of
:mod:`healthrules.roadmap`, merges imported indicator libraries, runs
:func:`healthrules.analysis.analyze`, and gives every problem found on the way a file, line,
column and YAML path. All problems of a file are collected and raised together, once.
"""

from __future__ import annotations

import bisect
import dataclasses
import os
import re
import types
import typing
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import pydantic
import yaml
from pydantic import BaseModel
from pydantic_core import ErrorDetails

from healthrules.analysis import analysis_of
from healthrules.errors import (
    Code,
    ExpressionError,
    Issue,
    Location,
    ReferenceError_,
    RoadmapError,
    Severity,
    SyntaxError_,
    ValidationError,
)
from healthrules.expressions import ExprProblem, did_you_mean, parse
from healthrules.roadmap import (
    ID_PATTERN,
    AggregateIndicator,
    DerivedIndicator,
    IndicatorLibrary,
    Pack,
    Roadmap,
)

__all__ = [
    "MAX_DEPTH",
    "MAX_FILE_BYTES",
    "MAX_NODES",
    "FileCheck",
    "Positions",
    "check_files",
    "check_paths",
    "iter_rule_files",
    "load",
    "load_text",
]

MAX_FILE_BYTES: Final = 10 * 1024 * 1024
"""Files larger than this are rejected before they are read."""
MAX_NODES: Final = 100_000
"""The most YAML nodes a document may expand to (aliases counted every time they are used)."""
MAX_DEPTH: Final = 64
"""The deepest nesting of mappings and lists a document may have."""

_KINDS: Final = ("roadmap", "library", "pack")
_TEST_KIND: Final = "test"
_YAML_SUFFIXES: Final = (".yaml", ".yml")

_T = "tag:yaml.org,2002:"
_STR, _NULL, _BOOL, _INT, _FLOAT = _T + "str", _T + "null", _T + "bool", _T + "int", _T + "float"
_SEQ, _MAP, _MERGE, _TIMESTAMP = _T + "seq", _T + "map", _T + "merge", _T + "timestamp"

Model = Roadmap | Pack | IndicatorLibrary


# --------------------------------------------------------------------------- YAML reading


class _Fatal(Exception):
    """Stops reading a file: the one issue that explains why."""

    def __init__(self, issue: Issue) -> None:
        super().__init__(issue.message)
        self.issue = issue


class _TooDeep(Exception):
    def __init__(self, mark: yaml.Mark) -> None:
        super().__init__("too deep")
        self.mark = mark


class _YamlLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core-schema scalars and a nesting limit while composing."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _TooDeep(self.peek_event().start_mark)  # type: ignore[no-untyped-call]
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


_YamlLoader.yaml_implicit_resolvers = {}  # YAML 1.2 core schema only, filled here
for _tag, _regex, _first in (
    (_BOOL, r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    (_NULL, r"^(?:~|null|Null|NULL|)$", "~nN"),
    (_INT, r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789"),
    (
        _FLOAT,
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        "-+0123456789.",
    ),
    (_MERGE, r"^(?:<<)$", "<"),
):
    _YamlLoader.add_implicit_resolver(_tag, re.compile(_regex), [*_first])
_YamlLoader.yaml_implicit_resolvers.setdefault("", []).append(
    (_NULL, re.compile(r"^(?:~|null|Null|NULL|)$"))
)


@dataclass(frozen=True, slots=True)
class _Pos:
    line: int  # 1-based
    column: int  # 1-based
    start: int  # character index of the node's first character
    end: int  # character index just after the node


def _pos(node: yaml.Node) -> _Pos:
    s, e = node.start_mark, node.end_mark
    return _Pos(s.line + 1, s.column + 1, s.index, e.index)


def _join(path: str, seg: str | int) -> str:
    if isinstance(seg, int):
        return f"{path}[{seg}]"
    return f"{path}.{seg}" if path else seg


_PATH_TAIL = re.compile(r"(?:\.[^.\[\]]*|\[\d+\])$")


def _parent(path: str) -> str | None:
    """The path one level up (``a.b[2]`` -> ``a.b`` -> ``a`` -> ``""``), None above the root."""
    if not path:
        return None
    m = _PATH_TAIL.search(path)
    return path[: m.start()] if m is not None else ""


@dataclass
class Positions:
    """A YAML file read into plain values, with the line and column of every node by YAML path.

    Build one with :meth:`from_text` or :meth:`from_file`; :func:`load` uses the same reader.
    Paths join mapping keys with ``.`` and list indices with ``[i]``
    (``stages[2].actions[0].when``); the root is ``""``. Tools that report on a loaded model
    (``healthrules lint``) use it to place their findings exactly like load errors.

    Attributes
    ----------
    file
        The file name reported in locations (None for text without a name).
    text
        The decoded text.
    data
        The document as plain Python values (dicts, lists, str, int, float, bool, None).
    issues
        Problems found while reading that did not stop it (duplicate keys, unsupported tags).

    Examples
    --------
    >>> from healthrules.loader import Positions
    >>> pos = Positions.from_text("id: demo\\nstages:\\n  - id: trial\\n    entry: x > 1\\n")
    >>> loc = pos.where("stages[0].entry")
    >>> loc.line, loc.column
    (4, 12)
    >>> pos.expr_where("stages[0].entry", 5).column
    16
    >>> pos.value("stages[0].id")
    'trial'
    """

    file: str | None
    text: str
    data: Any = None
    pos: dict[str, _Pos] = field(default_factory=dict, repr=False)
    keys: dict[str, _Pos] = field(default_factory=dict, repr=False)
    poisoned: set[str] = field(default_factory=set, repr=False)
    issues: list[Issue] = field(default_factory=list)
    _lines: list[int] | None = field(default=None, repr=False)

    @classmethod
    def from_text(cls, text: str, *, source: str | None = None) -> Positions:
        """Read YAML text.

        Parameters
        ----------
        text
            The YAML document.
        source
            The file name to report in locations.

        Returns
        -------
        Positions

        Raises
        ------
        RoadmapError
            When the text is not usable YAML (syntax, empty, not a mapping, too large or deep).
        """
        try:
            return _parse_yaml(text, source)
        except _Fatal as exc:
            raise _error_for([exc.issue]) from None

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Positions:
        """Read a YAML file (UTF-8, at most :data:`MAX_FILE_BYTES`).

        Parameters
        ----------
        path
            The file; it is reported as given.

        Returns
        -------
        Positions

        Raises
        ------
        RoadmapError
            When the file cannot be read or is not usable YAML.
        """
        try:
            return _read_file(Path(path), os.fspath(path))
        except _Fatal as exc:
            raise _error_for([exc.issue]) from None

    def value(self, path: str) -> Any:
        """The plain value at a YAML path, or None when there is no node there."""
        return _get(self.data, path)

    def line_col(self, index: int) -> tuple[int, int]:
        """1-based line and column of a character index."""
        if self._lines is None:
            self._lines = [0] + [m.end() for m in re.finditer(r"\r\n|\r|\n", self.text)]
        i = bisect.bisect_right(self._lines, index) - 1
        return i + 1, index - self._lines[i] + 1

    def where(self, path: str, *, key: bool = False) -> Location:
        """The location of a YAML path: its node, else the nearest enclosing node."""
        if key and path in self.keys:
            p = self.keys[path]
            return Location(self.file, p.line, p.column, path)
        probe: str | None = path
        while probe is not None:
            if probe in self.pos:
                p = self.pos[probe]
                return Location(self.file, p.line, p.column, path)
            probe = _parent(probe)
        return Location(self.file, 1, 1, path)

    def expr_where(self, path: str, expr_column: int) -> Location:
        """The location of a column inside the expression text at ``path``.

        The column is counted in the expression as the parser saw it (leading spaces removed);
        it is mapped into the file only when the text appears verbatim there (plain scalars,
        quoted ones without escapes, one-line block scalars). Otherwise the scalar's start.
        """
        loc = self.where(path)
        p = self.pos.get(path)
        value = _get(self.data, path)
        if p is None or not isinstance(value, str) or not value:
            return loc
        k = self.text.find(value, p.start, p.end)
        if k < 0:
            return loc
        flat = value.replace("\r", " ").replace("\n", " ").replace("\t", " ")
        lead = len(flat) - len(flat.lstrip())
        offset = min(lead + max(expr_column, 1) - 1, len(value))
        line, col = self.line_col(k + offset)
        return Location(self.file, line, col, path)

    def issue(
        self,
        code: Code | str,
        message: str,
        path: str = "",
        *,
        hint: str | None = None,
        key: bool = False,
        related: Location | None = None,
        at: _Pos | None = None,
    ) -> Issue:
        """Make (and keep) an issue located at ``path`` or at the position ``at``."""
        if at is not None:
            loc = Location(self.file, at.line, at.column, path)
        else:
            loc = self.where(path, key=key)
        issue = Issue(
            code=code.value if isinstance(code, Code) else code,
            message=message,
            location=loc,
            hint=hint,
            related=related,
        )
        self.issues.append(issue)
        return issue


_SEG = re.compile(r"\.?([^.\[\]]+)|\[(\d+)\]")


def _segments(path: str) -> list[str | int]:
    return [int(m.group(2)) if m.group(2) is not None else m.group(1)
            for m in _SEG.finditer(path)]


def _get(data: Any, path: str) -> Any:
    cur = data
    for seg in _segments(path):
        if isinstance(seg, int) and isinstance(cur, list) and 0 <= seg < len(cur):
            cur = cur[seg]
        elif isinstance(cur, dict) and str(seg) in cur:
            cur = cur[str(seg)]
        else:
            return None
    return cur


def _whole_file(file: str | None, code: Code, message: str, hint: str | None = None,
                line: int | None = 1, column: int | None = 1) -> Issue:
    return Issue(code=code.value, message=message, location=Location(file, line, column),
                 hint=hint)


def _decode(raw: bytes, file: str | None) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        start = int(exc.start)
        line = raw.count(b"\n", 0, start) + 1
        line_start = raw.rfind(b"\n", 0, start) + 1
        column = len(raw[line_start:start].decode("utf-8", errors="replace")) + 1
        raise _Fatal(_whole_file(
            file, Code.NOT_UTF8,
            f"the file is not UTF-8 text: byte 0x{raw[start]:02x} at byte offset {start} "
            "cannot be decoded",
            "save the file as UTF-8", line, column)) from None
    return text.removeprefix("\ufeff")


def _parse_yaml(text: str, file: str | None) -> Positions:
    """Compose ``text`` and build its value and positions; raise _Fatal when it is unusable."""
    doc = Positions(file=file, text=text)
    if len(text) > MAX_FILE_BYTES or (
        len(text) * 4 > MAX_FILE_BYTES
        and len(text.encode("utf-8", "surrogatepass")) > MAX_FILE_BYTES
    ):
        raise _Fatal(_whole_file(file, Code.FILE_TOO_LARGE,
                                 f"the file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB"))
    if not text.strip():
        raise _Fatal(_whole_file(file, Code.EMPTY_FILE, "the file is empty",
                                 "a roadmap file starts with `id:`, `goal:` and `stages:`"))
    loader: _YamlLoader | None = None
    try:
        loader = _YamlLoader(text)
        root = loader.get_single_node()
    except _TooDeep as exc:
        raise _Fatal(_whole_file(
            file, Code.YAML_TOO_DEEP, f"the YAML nests deeper than {MAX_DEPTH} levels", None,
            exc.mark.line + 1, exc.mark.column + 1)) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        if exc.context and exc.problem:
            problem = f"{problem} ({exc.context})"
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        raise _Fatal(_whole_file(file, Code.YAML_SYNTAX, f"YAML syntax error: {problem}", None,
                                 line, col)) from None
    except yaml.reader.ReaderError as exc:
        line, col = doc.line_col(min(exc.position, len(text)))
        char = exc.character if isinstance(exc.character, int) else ord(exc.character)
        raise _Fatal(_whole_file(
            file, Code.YAML_SYNTAX, f"the character U+{char:04X} is not allowed in YAML text",
            "remove control characters from the file", line, col)) from None
    except yaml.YAMLError as exc:
        raise _Fatal(_whole_file(file, Code.YAML_SYNTAX, f"YAML error: {exc}")) from None
    except RecursionError:
        raise _Fatal(_whole_file(file, Code.YAML_TOO_DEEP,
                                 f"the YAML nests deeper than {MAX_DEPTH} levels")) from None
    finally:
        if loader is not None:
            loader.dispose()
    if root is None or (isinstance(root, yaml.ScalarNode) and root.tag == _NULL
                        and not root.value):
        raise _Fatal(_whole_file(file, Code.EMPTY_FILE, "the file holds no YAML document",
                                 "a roadmap file starts with `id:`, `goal:` and `stages:`"))
    builder = _Builder(doc)
    doc.data = builder.build(root, "", 1)
    if not isinstance(doc.data, dict):
        what = _kind_of(doc.data)
        raise _Fatal(Issue(
            code=Code.NOT_A_MAPPING.value,
            message=f"the top level of the file must be a mapping (key: value lines), not {what}",
            location=doc.where(""),
            hint=None if doc.issues else "start the file with `id: ...`",
        ))
    return doc


class _Builder:
    """Turn composed nodes into plain values, recording positions and reading problems."""

    def __init__(self, doc: Positions) -> None:
        self.doc = doc
        self.count = 0
        self.active: set[int] = set()

    def build(self, node: yaml.Node, path: str, depth: int) -> Any:
        self.count += 1
        p = _pos(node)
        if self.count > MAX_NODES:
            raise _Fatal(Issue(
                code=Code.FILE_TOO_LARGE.value,
                message=f"the document expands to more than {MAX_NODES} YAML nodes "
                "(are aliases (*name) used over and over?)",
                location=Location(self.doc.file, p.line, p.column, path)))
        if depth > MAX_DEPTH:
            raise _Fatal(Issue(
                code=Code.YAML_TOO_DEEP.value,
                message=f"the YAML nests deeper than {MAX_DEPTH} levels (counting aliases)",
                location=Location(self.doc.file, p.line, p.column, path)))
        self.doc.pos[path] = p
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node, path)
        if id(node) in self.active:
            raise _Fatal(Issue(
                code=Code.YAML_SYNTAX.value,
                message="an alias refers to a node that contains it (a recursive structure)",
                location=Location(self.doc.file, p.line, p.column, path)))
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                if node.tag != _SEQ:
                    return self.bad_tag(node, path)
                return [self.build(child, _join(path, i), depth + 1)
                        for i, child in enumerate(node.value)]
            if isinstance(node, yaml.MappingNode):
                if node.tag != _MAP:
                    return self.bad_tag(node, path)
                return self.mapping(node, path, depth)
        finally:
            self.active.discard(id(node))
        return self.bad_tag(node, path)  # pragma: no cover - PyYAML has no other node kind

    def bad_tag(self, node: yaml.Node, path: str) -> None:
        self.doc.issue(
            Code.UNSUPPORTED_TAG,
            f"the YAML tag {_short_tag(node.tag)!r} is not supported",
            path,
            hint="write plain values; tags such as !!python/... or !custom are not read",
            at=_pos(node),
        )
        self.doc.poisoned.add(path)
        return None

    def scalar(self, node: yaml.ScalarNode, path: str) -> Any:
        tag, value = node.tag, node.value
        if tag in (_STR, _TIMESTAMP):
            return value
        if tag == _NULL:
            return None
        try:
            if tag == _BOOL:
                lowered = value.lower()
                if lowered in ("true", "yes", "on", "y"):
                    return True
                if lowered in ("false", "no", "off", "n"):
                    return False
                raise ValueError(value)
            if tag == _INT:
                text = value.replace("_", "")
                if re.fullmatch(r"[-+]?[0-9]+", text):
                    return int(text)
                return int(text, 0)
            if tag == _FLOAT:
                lowered = value.lower()
                if lowered.endswith((".inf", ".nan")):
                    return float(lowered.replace(".", ""))
                return float(value.replace("_", ""))
        except ValueError:
            self.doc.issue(Code.YAML_SYNTAX, f"{value!r} is not a valid {tag.rsplit(':', 1)[-1]}",
                           path, at=_pos(node))
            self.doc.poisoned.add(path)
            return None
        return self.bad_tag(node, path)

    def mapping(self, node: yaml.MappingNode, path: str, depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        merges: list[yaml.Node] = []
        first_seen: dict[str, _Pos] = {}
        for knode, vnode in node.value:
            if isinstance(knode, yaml.ScalarNode) and knode.tag == _MERGE:
                merges.append(vnode)
                continue
            if not isinstance(knode, yaml.ScalarNode):
                self.doc.issue(Code.YAML_SYNTAX, "a mapping key must be plain text, not a "
                               "list or a mapping", path, at=_pos(knode))
                continue
            key = knode.value
            kpos = _pos(knode)
            kpath = _join(path, key)
            if key in first_seen:
                first = first_seen[key]
                self.doc.issue(
                    Code.DUPLICATE_KEY, f"the key {key!r} appears twice in this mapping",
                    kpath, at=kpos, related=Location(self.doc.file, first.line, first.column,
                                                     kpath),
                    hint="YAML keeps one of the two silently; remove or rename one",
                )
                continue
            first_seen[key] = kpos
            if knode.tag not in (_STR, _NULL, _BOOL, _INT, _FLOAT, _TIMESTAMP):
                self.bad_tag(knode, kpath)
            out[key] = None  # keep the file's key order; filled below
            self.doc.keys[kpath] = kpos
            out[key] = self.build(vnode, kpath, depth + 1)
        for merge in merges:
            sources = merge.value if isinstance(merge, yaml.SequenceNode) else [merge]
            for src in sources:
                if not isinstance(src, yaml.MappingNode) or src.tag != _MAP:
                    self.doc.issue(Code.YAML_SYNTAX, "`<<` merges a mapping (or a list of "
                                   "mappings) into this one", path, at=_pos(merge))
                    continue
                for knode, vnode in src.value:
                    if not isinstance(knode, yaml.ScalarNode) or knode.tag == _MERGE:
                        continue
                    key = knode.value
                    if key in out:
                        continue
                    kpath = _join(path, key)
                    self.doc.keys[kpath] = _pos(knode)
                    out[key] = self.build(vnode, kpath, depth + 1)
        self.doc.pos[path] = _pos(node)
        return out


def _short_tag(tag: str) -> str:
    return "!!" + tag[len(_T):] if tag.startswith(_T) else tag


def _kind_of(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"the text {shown!r}"
    if value is None:
        return "null (nothing)"
    return type(value).__name__


# --------------------------------------------------------------------------- pydantic errors

_UNION_TAGS: Final = frozenset({"events", "derived"})
_UNION_LABELS: Final = frozenset(
    {"float", "int", "str", "bool", "none", "list", "dict", "date", "datetime", "is-instance"}
)


def _is_union_label(seg: str) -> bool:
    return seg in _UNION_LABELS or "[" in seg or "-" in seg or seg[:1].isupper()


@dataclass(frozen=True, slots=True)
class _LocPath:
    path: str  # the logical YAML path of the error
    exists: bool  # whether the node at ``path`` is in the file
    key: bool  # the error is about the key at ``path``, not its value
    union: bool  # a union member's label was skipped: one error per member, keep the first
    model_loc: tuple[str | int, ...]  # loc with union labels removed (tags kept)


def _loc_to_path(data: Any, loc: Sequence[str | int]) -> _LocPath:
    """Map a pydantic ``loc`` onto the YAML data, skipping union tags and member labels."""
    path = ""
    cur: Any = data
    exists = True
    key = False
    union = False
    model_loc: list[str | int] = []
    prev: list[str | int] = []
    for seg in loc:
        if seg == "[key]":
            key = True
            model_loc.append(seg)
            continue
        if (
            isinstance(seg, str)
            and seg in _UNION_TAGS
            and len(prev) >= 2
            and prev[-2] == "indicators"
            and isinstance(prev[-1], int)
        ):
            model_loc.append(seg)
            prev.append(seg)
            continue
        if exists and isinstance(cur, dict) and str(seg) in cur:
            cur = cur[str(seg)]
        elif exists and isinstance(seg, int) and isinstance(cur, list) and 0 <= seg < len(cur):
            cur = cur[seg]
        elif isinstance(seg, str) and _is_union_label(seg):
            union = True
            continue
        elif exists and not isinstance(cur, (dict, list)):
            union = True  # a label below a scalar (e.g. a union member name)
            continue
        else:
            exists = False
        path = _join(path, seg if isinstance(seg, int) else str(seg))
        model_loc.append(seg)
        prev.append(seg)
    return _LocPath(path, exists, key, union, tuple(model_loc))


def _expand(tp: Any) -> list[tuple[Any, str | None]]:
    """Unwrap Annotated / Optional / unions into (type, discriminator tag) candidates."""
    out: list[tuple[Any, str | None]] = []
    stack: list[tuple[Any, str | None]] = [(tp, None)]
    while stack:
        t, tag = stack.pop()
        origin = typing.get_origin(t)
        if origin is typing.Annotated:
            args = typing.get_args(t)
            tags = [m.tag for m in args[1:] if isinstance(m, pydantic.Tag)]
            stack.append((args[0], tags[0] if tags else tag))
        elif origin in (typing.Union, types.UnionType):
            stack.extend((a, tag) for a in typing.get_args(t))
        else:
            out.append((t, tag))
    return out


def _types_at(root: type[BaseModel], loc: Sequence[str | int]) -> list[Any]:
    """The annotation(s) of the node a pydantic ``loc`` points at (with union tags in loc)."""
    current: list[Any] = [root]
    for seg in loc:
        cands = [c for t in current for c in _expand(t)]
        tagged = [t for t, tag in cands if tag is not None and tag == seg]
        if tagged:
            current = tagged
            continue
        nxt: list[Any] = []
        for t, _tag in cands:
            origin = typing.get_origin(t)
            if isinstance(t, type) and issubclass(t, BaseModel) and isinstance(seg, str):
                for name, info in t.model_fields.items():
                    if seg in (name, info.alias):
                        nxt.append(info.annotation)
            elif origin is list and isinstance(seg, int):
                nxt.append(typing.get_args(t)[0])
            elif origin is dict:
                k, v = typing.get_args(t)
                nxt.append(k if seg == "[key]" else v)
        current = nxt
    return [t for tp in current for t, _ in _expand(tp)]


def _allowed_keys(model: type[BaseModel]) -> list[str]:
    return [info.alias or name for name, info in model.model_fields.items() if not info.exclude]


def _literals(types_: Iterable[Any]) -> list[str]:
    out: list[str] = []
    for t in types_:
        if typing.get_origin(t) is typing.Literal:
            out.extend(str(a) for a in typing.get_args(t))
    return out


def _guess(name: str, allowed: Sequence[str]) -> str | None:
    """``did you mean 'x'?`` for a close name, or for the only allowed name it starts."""
    hint = did_you_mean(name, list(allowed))
    if hint is None and name:
        starts = [a for a in allowed if a.startswith(name) or name.startswith(a)]
        if len(starts) == 1:
            hint = f"did you mean {starts[0]!r}?"
    return hint


def _quote_list(values: Sequence[str]) -> str:
    return ", ".join(repr(v) for v in values)


def _pydantic_issue(doc: Positions, model: type[BaseModel], err: ErrorDetails) -> Issue | None:
    """Turn one pydantic error into an issue at its YAML position (None when redundant)."""
    lp = _loc_to_path(doc.data, err["loc"])
    if any(lp.path == p or lp.path.startswith((p + ".", p + "[")) for p in doc.poisoned):
        return None
    etype = err["type"]
    value = err.get("input")
    ctx = dict(err.get("ctx") or {})
    name = str(_segments(lp.path)[-1]) if lp.path else "the file"
    hint: str | None = None
    path = lp.path
    key = lp.key
    message = err["msg"]
    if etype == "missing":
        message = f"missing required key {name!r}"
        if lp.model_loc[-2:-1] == ("events",) and name == "aggregate":
            hint = "an indicator needs `aggregate:` (counted from events) or `expr:` (derived)"
    elif etype == "extra_forbidden":
        key = True
        parents = [t for t in _types_at(model, lp.model_loc[:-1])
                   if isinstance(t, type) and issubclass(t, BaseModel)]
        allowed = sorted({k for m in parents for k in _allowed_keys(m)})
        message = f"unknown key {name!r}"
        if allowed:
            guess = _guess(name, allowed)
            hint = f"{guess + ' ' if guess else ''}allowed keys: {', '.join(allowed)}"
    elif etype == "literal_error":
        allowed = _literals(_types_at(model, lp.model_loc)) or [
            v.strip("'") for v in re.split(r", | or ", str(ctx.get("expected", "")))
        ]
        what = "key" if key else "value"
        message = f"{_kind_of(value)} is not an allowed {what} for {name!r}"
        if key:
            message = f"{value!r} is not an allowed key here"
        guess = _guess(str(value), allowed) if isinstance(value, str) else None
        hint = f"{guess + ' ' if guess else ''}allowed: {_quote_list(allowed)}"
    elif etype == "union_tag_invalid":
        tag = str(ctx.get("tag"))
        message = f"unknown indicator kind {tag!r}"
        guess = _guess(tag, sorted(_UNION_TAGS))
        hint = f"{guess + ' ' if guess else ''}allowed: 'events', 'derived'"
        if isinstance(value, dict) and "kind" in value:
            path = _join(path, "kind")
    elif etype in ("model_type", "dict_type", "model_attributes_type"):
        message = f"expected a mapping (key: value lines), got {_kind_of(value)}"
    elif etype in ("list_type", "tuple_type"):
        message = f"expected a list, got {_kind_of(value)}"
    elif etype == "string_type":
        message = f"expected text, got {_kind_of(value)}"
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            hint = f"put it in quotes to make it text: {name}: \"{value}\""
    elif etype in ("float_type", "float_parsing", "int_type", "int_parsing", "int_from_float",
                   "finite_number"):
        want = "a whole number" if etype.startswith("int") else "a number"
        if etype == "finite_number":
            want = "a finite number"
        message = f"expected {want}, got {_kind_of(value)}"
    elif etype in ("bool_type", "bool_parsing"):
        message = f"expected true or false, got {_kind_of(value)}"
    elif etype == "string_pattern_mismatch" and ctx.get("pattern") == ID_PATTERN:
        message = (f"{value!r} is not a valid id: use letters, digits and _, starting with a "
                   "letter")
    elif etype in ("too_short", "too_long", "string_too_short", "string_too_long"):
        message = f"{name}: {err['msg'][0].lower()}{err['msg'][1:]}"
    elif etype in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        message = f"{name}: {err['msg'][0].lower()}{err['msg'][1:]}, got {value!r}"
    elif etype in ("bands_invalid", "duplicate_id") and isinstance(_get(doc.data, path), dict):
        path = _refine_bands(doc.data, path, ctx)
    elif etype == "weights_invalid" and ctx.get("what") in ("indicators", "families"):
        path = _join(path, str(ctx["what"]))
    elif etype in _POINT_AT:
        path = _join(path, _POINT_AT[etype])
    elif etype == "window_invalid" and "compare" in ctx:
        path = _join(path, "compare")
    location = doc.where(path, key=key)
    return Issue(code=etype, message=message, location=location, hint=hint,
                 ctx={k: v for k, v in ctx.items() if isinstance(v, (str, int, float, bool))})


_POINT_AT: Final = {"missing_of": "aggregate", "unexpected_of": "of",
                    "unexpected_compare": "compare"}


def _refine_bands(data: Any, path: str, ctx: dict[str, Any]) -> str:
    """Point a bands error at the level (and edge) it is about, not at the whole ``bands``."""
    node = _get(data, path)
    levels = node.get("levels") if isinstance(node, dict) else None
    if not isinstance(levels, list):
        return path
    names = [lv.get("name") if isinstance(lv, dict) else None for lv in levels]
    lpath = _join(path, "levels")

    def edge(i: int, keys: tuple[str, str]) -> str:
        lv = levels[i]
        for k in keys:
            if isinstance(lv, dict) and k in lv:
                return _join(_join(lpath, i), k)
        return _join(lpath, i)

    if "dup" in ctx:
        first = str(ctx["dup"]).split(", ")[0]
        hits = [i for i, n in enumerate(names) if n == first]
        return _join(_join(lpath, hits[-1]), "name") if hits else path
    if "b" in ctx and ctx["b"] in names:
        return edge(names.index(ctx["b"]), ("ge", "gt"))
    if "name" in ctx and ctx["name"] in names:
        i = names.index(ctx["name"])
        if i == 0:
            return edge(i, ("ge", "gt"))
        return edge(i, ("lt", "le"))
    return path


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
        seen: set[tuple[str, str]] = set()
        for err in exc.errors(include_url=False):
            issue = _pydantic_issue(doc, model, err)
            if issue is None:
                continue
            union = _loc_to_path(doc.data, err["loc"]).union
            marker = (issue.location.path, "" if union else issue.message)
            if marker in seen:
                continue
            seen.add(marker)
            doc.issues.append(issue)
        return None


# --------------------------------------------------------------------------- loading


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
                entry.doc = _read_file(path, display)
            except _Fatal as exc:
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


def _read_file(path: Path, display: str) -> Positions:
    def fail(code: Code, message: str, line: int | None = None) -> _Fatal:
        return _Fatal(_whole_file(display, code, message, None, line, line))

    try:
        if path.is_dir():
            raise fail(Code.FILE_UNREADABLE, "this is a folder, not a file")
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise fail(Code.FILE_TOO_LARGE,
                       f"the file is {size} bytes, more than the "
                       f"{MAX_FILE_BYTES // (1024 * 1024)} MiB a roadmap file may have", 1)
        raw = path.read_bytes()
    except FileNotFoundError:
        raise fail(Code.FILE_NOT_FOUND, "no such file") from None
    except OSError as exc:
        raise fail(Code.FILE_UNREADABLE, f"cannot read the file: {exc.strerror or exc}") from None
    if len(raw) > MAX_FILE_BYTES:  # it grew since stat
        raise fail(Code.FILE_TOO_LARGE, "the file is too large", 1)
    return _parse_yaml(_decode(raw, display), display)


def _kind(doc: Positions) -> str | None:
    kind = doc.data.get("kind", "roadmap")
    if isinstance(kind, str) and kind in (*_KINDS, _TEST_KIND):
        return kind
    guess = _guess(kind, _KINDS) if isinstance(kind, str) else None
    doc.issue("literal_error", f"unknown file kind {kind!r}", "kind",
              hint=f"{guess + ' ' if guess else ''}allowed: {_quote_list(_KINDS)}")
    return None


def _process(doc: Positions, base_dir: Path, session: _Session) -> Model | None:
    """Validate, resolve imports / pack members and analyze one parsed document."""
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
        return None
    if isinstance(model, Roadmap):
        return _finish_roadmap(doc, model, base_dir, session)
    if isinstance(model, IndicatorLibrary):
        _check_library(doc, model)
        return None if _errors_in(doc.issues) else model
    return _finish_pack(doc, model, base_dir, session)


def _errors_in(issues: Iterable[Issue]) -> list[Issue]:
    return [i for i in issues if i.severity is Severity.ERROR]


def _finish_roadmap(doc: Positions, roadmap: Roadmap, base_dir: Path,
                    session: _Session) -> Roadmap | None:
    # imports: the imported indicators go first, in import order
    imported: list[AggregateIndicator | DerivedIndicator] = []
    origins: list[tuple[Positions, int]] = []
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
    if _errors_in(doc.issues):
        return None
    merged = roadmap.model_copy(
        update={"indicators": [*imported, *roadmap.indicators], "source": doc.file}
    )
    analysis = analysis_of(merged)
    for issue in analysis.issues:
        doc.issues.append(_place(issue, doc, origins))
    return merged if not _errors_in(doc.issues) else None


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
    return dataclasses.replace(issue, location=location, related=related)


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
    """The roadmaps of a pack read the same frames: what the compiler checks, at load time."""
    from healthrules.compiler import compile as compile_plan

    try:
        compile_plan(loaded)
    except RoadmapError as exc:
        index = {r.source: i for i, r in enumerate(loaded)}
        for issue in exc.issues:
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


_CATEGORY: Final = {
    **dict.fromkeys(
        ("not_utf8", "empty_file", "yaml_syntax", "duplicate_key", "not_a_mapping",
         "yaml_too_deep", "file_too_large", "unsupported_tag"), SyntaxError_),
    **dict.fromkeys(
        ("unknown_name", "unknown_stage", "unknown_indicator", "name_clash", "import_failed"),
        ReferenceError_),
    **dict.fromkeys(
        ("expr_syntax", "expr_disallowed", "expr_type", "expr_too_complex",
         "template_invalid", "cycle"), ExpressionError),
    **dict.fromkeys(("file_not_found", "file_unreadable"), RoadmapError),
}


def _error_for(issues: Sequence[Issue]) -> RoadmapError:
    """One error carrying every issue; its class is the narrowest that covers them all."""
    classes = {_CATEGORY.get(i.code, ValidationError) for i in issues}
    cls = classes.pop() if len(classes) == 1 else RoadmapError
    return cls(issues)


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
        raise _error_for(_unique(_errors_in(entry.issues)) or entry.issues)
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
        doc = _parse_yaml(text, source)
    except _Fatal as exc:
        raise _error_for([exc.issue]) from None
    model = _process(doc, base_dir, _Session())
    if model is None:
        raise _error_for(_unique(_errors_in(doc.issues)) or doc.issues)
    return model


# --------------------------------------------------------------------------- checking many


@dataclass(frozen=True, slots=True)
class FileCheck:
    """The result of checking one file: its kind, whether it was skipped, and its issues."""

    path: str
    kind: str | None
    issues: tuple[Issue, ...]
    skipped: bool = False

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
        results.append(FileCheck(entry.display, kind, tuple(_unique(entry.issues))))
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
