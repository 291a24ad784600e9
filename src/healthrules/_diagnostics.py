"""One home for diagnostics: YAML with positions, YAML paths, pydantic errors, did-you-mean.

The loader (roadmaps, packs, indicator libraries), the rule-pack test files
(:mod:`healthrules.testing.spec`) and lint all read YAML and report problems through this
module, so a problem reads and points the same way wherever it is found:

- :class:`Positions` reads a YAML document (UTF-8, at most :data:`MAX_FILE_BYTES`, YAML 1.2
  core scalars, duplicate keys and unsupported tags reported) into plain values and records
  the line and column of every node by YAML path (``stages[2].actions[0].when``);
- :func:`join`, :func:`parent`, :func:`segments` and :func:`value_at` build and follow those
  paths;
- :func:`loc_to_path` maps the ``loc`` of a pydantic error onto a YAML path, skipping the
  labels pydantic adds for union members; :func:`validation_issues` (roadmap files) and
  :func:`issue_of_test_file` (test files) turn pydantic errors into located
  :class:`~healthrules.errors.Issue` records;
- :func:`did_you_mean` and :func:`guess` suggest the closest known name.

It is private: the public ways in are :class:`healthrules.loader.Positions` and
:func:`healthrules.expressions.did_you_mean`.
"""

from __future__ import annotations

import bisect
import contextlib
import contextvars
import difflib
import os
import re
import types
import typing
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import pydantic
import yaml
from pydantic import BaseModel
from pydantic_core import ErrorDetails

from healthrules.errors import (
    Code,
    ExpressionError,
    Issue,
    Location,
    ReferenceError_,
    RoadmapError,
    SyntaxError_,
    ValidationError,
)

__all__ = [
    "MAX_DEPTH",
    "MAX_FILE_BYTES",
    "MAX_NODES",
    "ROADMAP_LOC",
    "SUGGESTION_BUDGET",
    "TEST_FILE_LOC",
    "Fatal",
    "LocPath",
    "LocRules",
    "Positions",
    "did_you_mean",
    "error_for",
    "guess",
    "issue_of_test_file",
    "join",
    "kind_of",
    "loc_to_path",
    "parent",
    "parse_yaml",
    "quote_list",
    "read_file",
    "segments",
    "suggestion_budget",
    "validation_issues",
    "value_at",
]


# --------------------------------------------------------------------------- did you mean


def did_you_mean(
    name: str,
    candidates: Mapping[str, object] | list[str] | set[str],
    *,
    cutoff: float = 0.6,
    ignore_case: bool = True,
) -> str | None:
    """Return a ``did you mean 'x'?`` hint for the closest candidate, if one is close.

    ``cutoff`` is the least :class:`difflib.SequenceMatcher` ratio that counts as close;
    with ``ignore_case`` a candidate that differs only in case is suggested too.

    Examples
    --------
    >>> did_you_mean("logins", ["logins_30d", "seats"])
    "did you mean 'logins_30d'?"
    >>> did_you_mean("zzz", ["logins_30d"]) is None
    True
    """
    budget = _SUGGESTION_BUDGET.get()
    if budget is not None:
        cost = len(candidates) + 1
        if budget[0] < cost:
            budget[0] = 0
            return None  # the file has used up its share of suggestion work
        budget[0] -= cost
    # a ratio of at least `cutoff` needs lengths that are close: skip the others cheaply
    size = len(name)
    pool = sorted(c for c in candidates
                  if 2 * min(size, len(c)) >= cutoff * (size + len(c)))
    close = difflib.get_close_matches(name, pool, n=1, cutoff=cutoff)
    if not close and ignore_case:
        pool = sorted(candidates)
    if not close and ignore_case:
        lowered = {c.lower(): c for c in pool}
        if name.lower() in lowered:
            close = [lowered[name.lower()]]
    return f"did you mean {close[0]!r}?" if close else None


SUGGESTION_BUDGET: Final = 100_000
"""How many candidate names did-you-mean may look at while one file is checked
(:func:`suggestion_budget`); beyond it, problems come without a suggestion, so that a file
with thousands of unknown names is still checked in seconds."""

_SUGGESTION_BUDGET: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar(
    "healthrules_suggestion_budget", default=None)


@contextlib.contextmanager
def suggestion_budget(size: int = SUGGESTION_BUDGET) -> Iterator[None]:
    """Bound the did-you-mean work done inside the block (the loader: one block per file)."""
    token = _SUGGESTION_BUDGET.set([size])
    try:
        yield
    finally:
        _SUGGESTION_BUDGET.reset(token)


def guess(name: str, allowed: Sequence[str]) -> str | None:
    """``did you mean 'x'?`` for a close name, or for the only allowed name it starts."""
    hint = did_you_mean(name, list(allowed))
    if hint is None and name:
        starts = [a for a in allowed if a.startswith(name) or name.startswith(a)]
        if len(starts) == 1:
            hint = f"did you mean {starts[0]!r}?"
    return hint


def quote_list(values: Sequence[str]) -> str:
    """``'a', 'b', 'c'``."""
    return ", ".join(repr(v) for v in values)


# --------------------------------------------------------------------------- YAML paths


def join(path: str, seg: str | int) -> str:
    """Append a key or an index to a YAML path (``cases[0].expect.acme``)."""
    if isinstance(seg, int):
        return f"{path}[{seg}]"
    return f"{path}.{seg}" if path else seg


_PATH_TAIL = re.compile(r"(?:\.[^.\[\]]*|\[\d+\])$")


def parent(path: str) -> str | None:
    """The path one level up (``a.b[2]`` -> ``a.b`` -> ``a`` -> ``""``), None above the root."""
    if not path:
        return None
    m = _PATH_TAIL.search(path)
    return path[: m.start()] if m is not None else ""


_SEG = re.compile(r"\.?([^.\[\]]+)|\[(\d+)\]")


def segments(path: str) -> list[str | int]:
    """The keys and indices of a YAML path (``a.b[2]`` -> ``['a', 'b', 2]``)."""
    return [int(m.group(2)) if m.group(2) is not None else m.group(1)
            for m in _SEG.finditer(path)]


def value_at(data: Any, path: str) -> Any:
    """The plain value at a YAML path of ``data``, or None when there is none."""
    cur = data
    for seg in segments(path):
        if isinstance(seg, int) and isinstance(cur, list) and 0 <= seg < len(cur):
            cur = cur[seg]
        elif isinstance(cur, dict) and str(seg) in cur:
            cur = cur[str(seg)]
        else:
            return None
    return cur


# --------------------------------------------------------------------------- limits

MAX_FILE_BYTES: Final = 10 * 1024 * 1024
"""Files larger than this are rejected before they are read."""
MAX_NODES: Final = 100_000
"""The most YAML nodes a document may expand to (aliases counted every time they are used)."""
MAX_DEPTH: Final = 64
"""The deepest nesting of mappings and lists a document may have."""

_T = "tag:yaml.org,2002:"
_STR, _NULL, _BOOL, _INT, _FLOAT = _T + "str", _T + "null", _T + "bool", _T + "int", _T + "float"
_SEQ, _MAP, _MERGE, _TIMESTAMP = _T + "seq", _T + "map", _T + "merge", _T + "timestamp"


# --------------------------------------------------------------------------- YAML reading


class Fatal(Exception):
    """Stops reading a file: the one issue that explains why."""

    def __init__(self, issue: Issue) -> None:
        super().__init__(issue.message)
        self.issue = issue


class _TooDeep(Exception):
    def __init__(self, mark: yaml.Mark) -> None:
        super().__init__("too deep")
        self.mark = mark


class _DepthLimit:
    """Composer mixin: the nesting limit, checked while composing (before going deeper)."""

    _depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _TooDeep(self.peek_event().start_mark)  # type: ignore[attr-defined]
            return super().compose_node(parent, index)  # type: ignore[misc]
        finally:
            self._depth -= 1


class _YamlLoader(_DepthLimit, yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core-schema scalars and a nesting limit while composing."""


def _libyaml_parser() -> Any:
    try:
        from yaml._yaml import CParser
    except ImportError:  # PyYAML built without libyaml
        return None
    return CParser


_CParser: Any = _libyaml_parser()


_C_BASE: Any = _CParser or yaml.parser.Parser


class _FastLoader(_DepthLimit, yaml.composer.Composer, _C_BASE,  # type: ignore[misc]
                  yaml.constructor.SafeConstructor, yaml.resolver.Resolver):
    """The same composer, nesting limit and scalar resolution as :class:`_YamlLoader`, over
    the events of libyaml's C parser (PyYAML's own scanner and parser are pure Python and
    take most of the time of a large file: about 20 s for 1.8 MB, against about 3 s).

    A document the C parser refuses is read again by :class:`_YamlLoader`, so that every
    error reads as it always did (and what PyYAML reads is read)."""

    def __init__(self, stream: str) -> None:
        _CParser.__init__(self, stream)
        yaml.composer.Composer.__init__(self)
        yaml.constructor.SafeConstructor.__init__(self)
        yaml.resolver.Resolver.__init__(self)


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
_FastLoader.yaml_implicit_resolvers = _YamlLoader.yaml_implicit_resolvers


def _compose(text: str) -> yaml.Node | None:
    """The document's root node (libyaml's parser when it is installed and reads the text,
    else PyYAML's); raises what PyYAML raises."""
    if _CParser is not None:
        try:  # the C parser reads UTF-8: a lone surrogate fails at once
            fast = _FastLoader(text)
            try:
                return fast.get_single_node()
            finally:
                fast.dispose()
        except (yaml.YAMLError, UnicodeError):
            pass  # read it again below: PyYAML's error, worded and placed as it always was
    loader = _YamlLoader(text)
    try:
        return loader.get_single_node()
    finally:
        loader.dispose()


class _Pos(typing.NamedTuple):  # a tuple: built 100,000 times for a large file
    line: int  # 1-based
    column: int  # 1-based
    start: int  # character index of the node's first character
    end: int  # character index just after the node


def _pos(node: yaml.Node) -> _Pos:
    s, e = node.start_mark, node.end_mark
    return _Pos(s.line + 1, s.column + 1, s.index, e.index)


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
            return parse_yaml(text, source)
        except Fatal as exc:
            raise error_for([exc.issue]) from None

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
            return read_file(Path(path), os.fspath(path))
        except Fatal as exc:
            raise error_for([exc.issue]) from None

    def value(self, path: str) -> Any:
        """The plain value at a YAML path, or None when there is no node there."""
        return value_at(self.data, path)

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
            probe = parent(probe)
        return Location(self.file, 1, 1, path)

    def expr_where(self, path: str, expr_column: int) -> Location:
        """The location of a column inside the expression text at ``path``.

        The column is counted in the expression as the parser saw it (leading spaces removed);
        it is mapped into the file only when the text appears verbatim there (plain scalars,
        quoted ones without escapes, one-line block scalars). Otherwise the scalar's start.
        """
        loc = self.where(path)
        p = self.pos.get(path)
        value = value_at(self.data, path)
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
        raise Fatal(_whole_file(
            file, Code.NOT_UTF8,
            f"the file is not UTF-8 text: byte 0x{raw[start]:02x} at byte offset {start} "
            "cannot be decoded",
            "save the file as UTF-8", line, column)) from None
    return text.removeprefix("\ufeff")


def parse_yaml(text: str, file: str | None) -> Positions:
    """Compose ``text`` and build its value and positions; raise Fatal when it is unusable."""
    doc = Positions(file=file, text=text)
    if len(text) > MAX_FILE_BYTES or (
        len(text) * 4 > MAX_FILE_BYTES
        and len(text.encode("utf-8", "surrogatepass")) > MAX_FILE_BYTES
    ):
        raise Fatal(_whole_file(file, Code.FILE_TOO_LARGE,
                                 f"the file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB"))
    if not text.strip():
        raise Fatal(_whole_file(file, Code.EMPTY_FILE, "the file is empty",
                                 "a roadmap file starts with `id:`, `goal:` and `stages:`"))
    try:
        root = _compose(text)
    except _TooDeep as exc:
        raise Fatal(_whole_file(
            file, Code.YAML_TOO_DEEP, f"the YAML nests deeper than {MAX_DEPTH} levels", None,
            exc.mark.line + 1, exc.mark.column + 1)) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        if exc.context and exc.problem:
            problem = f"{problem} ({exc.context})"
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        raise Fatal(_whole_file(file, Code.YAML_SYNTAX, f"YAML syntax error: {problem}", None,
                                 line, col)) from None
    except yaml.reader.ReaderError as exc:
        line, col = doc.line_col(min(exc.position, len(text)))
        char = exc.character if isinstance(exc.character, int) else ord(exc.character)
        raise Fatal(_whole_file(
            file, Code.YAML_SYNTAX, f"the character U+{char:04X} is not allowed in YAML text",
            "remove control characters from the file", line, col)) from None
    except yaml.YAMLError as exc:
        raise Fatal(_whole_file(file, Code.YAML_SYNTAX, f"YAML error: {exc}")) from None
    except RecursionError:
        raise Fatal(_whole_file(file, Code.YAML_TOO_DEEP,
                                 f"the YAML nests deeper than {MAX_DEPTH} levels")) from None
    if root is None or (isinstance(root, yaml.ScalarNode) and root.tag == _NULL
                        and not root.value):
        raise Fatal(_whole_file(file, Code.EMPTY_FILE, "the file holds no YAML document",
                                 "a roadmap file starts with `id:`, `goal:` and `stages:`"))
    builder = _Builder(doc)
    doc.data = builder.build(root, "", 1)
    if not isinstance(doc.data, dict):
        what = kind_of(doc.data)
        raise Fatal(Issue(
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
            raise Fatal(Issue(
                code=Code.FILE_TOO_LARGE.value,
                message=f"the document expands to more than {MAX_NODES} YAML nodes "
                "(are aliases (*name) used over and over?)",
                location=Location(self.doc.file, p.line, p.column, path)))
        if depth > MAX_DEPTH:
            raise Fatal(Issue(
                code=Code.YAML_TOO_DEEP.value,
                message=f"the YAML nests deeper than {MAX_DEPTH} levels (counting aliases)",
                location=Location(self.doc.file, p.line, p.column, path)))
        self.doc.pos[path] = p
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node, path)
        if id(node) in self.active:
            raise Fatal(Issue(
                code=Code.YAML_SYNTAX.value,
                message="an alias refers to a node that contains it (a recursive structure)",
                location=Location(self.doc.file, p.line, p.column, path)))
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                if node.tag != _SEQ:
                    return self.bad_tag(node, path)
                return [self.build(child, join(path, i), depth + 1)
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
            kpath = join(path, key)
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
                    kpath = join(path, key)
                    self.doc.keys[kpath] = _pos(knode)
                    out[key] = self.build(vnode, kpath, depth + 1)
        self.doc.pos[path] = _pos(node)
        return out


def _short_tag(tag: str) -> str:
    return "!!" + tag[len(_T):] if tag.startswith(_T) else tag


def kind_of(value: Any) -> str:
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


def read_file(path: Path, display: str) -> Positions:
    """Read a YAML file reported as ``display``; raise :class:`Fatal` when it is unusable."""
    def fail(code: Code, message: str, line: int | None = None) -> Fatal:
        return Fatal(_whole_file(display, code, message, None, line, line))

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
    return parse_yaml(_decode(raw, display), display)


CATEGORY: Final = {
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


def error_for(issues: Sequence[Issue]) -> RoadmapError:
    """One error carrying every issue; its class is the narrowest that covers them all."""
    classes = {CATEGORY.get(i.code, ValidationError) for i in issues}
    cls = classes.pop() if len(classes) == 1 else RoadmapError
    return cls(issues)


# --------------------------------------------------------------------------- pydantic errors

_UNION_TAGS: Final = frozenset({"events", "derived"})
"""The discriminator tags of a roadmap's indicators: kept in ``loc`` (they select the model)."""
_EVENTS_TAGS: Final = frozenset({"columns", "sources"})
"""The discriminator tags of ``data.events`` (one frame's columns, or named sources)."""


@dataclass(frozen=True, slots=True)
class LocRules:
    """Which ``loc`` segments of a file format's pydantic errors are union-member labels.

    A segment is a label when it is in ``labels``, holds ``[`` or ``-``, or starts with a
    capital (a model name). With ``anywhere`` it is skipped wherever it is not a key of the
    data; without, only below an existing mapping.
    """

    labels: frozenset[str]
    anywhere: bool

    def is_label(self, seg: str) -> bool:
        """Whether ``seg`` names a union member rather than a key."""
        return seg in self.labels or "[" in seg or "-" in seg or seg[:1].isupper()


ROADMAP_LOC: Final = LocRules(
    frozenset({"float", "int", "str", "bool", "none", "list", "dict", "date", "datetime",
               "is-instance"}),
    anywhere=True,
)
"""The labels of roadmap, pack and library files."""
TEST_FILE_LOC: Final = LocRules(
    frozenset({"str", "int", "float", "bool", "none", "list", "dict", "function-after",
               "function-before", "function-plain", "function-wrap", "union"}),
    anywhere=False,
)
"""The labels of rule-pack test files."""


@dataclass(frozen=True, slots=True)
class LocPath:
    """Where a pydantic error ``loc`` points in the YAML data."""

    path: str
    """The logical YAML path of the error."""
    exists: bool
    """Whether the node at ``path`` is in the file."""
    key: bool
    """The error is about the key at ``path``, not its value."""
    union: bool
    """A union member's label was skipped: one error per member, keep the first."""
    model_loc: tuple[str | int, ...]
    """``loc`` with union labels removed (discriminator tags kept)."""


def loc_to_path(data: Any, loc: Sequence[str | int], rules: LocRules = ROADMAP_LOC) -> LocPath:
    """Map a pydantic ``loc`` onto the YAML data, skipping union tags and member labels.

    Examples
    --------
    >>> data = {"cases": [{"expect": {"a": {"score": "x"}}}]}
    >>> loc_to_path(data, ("cases", 0, "expect", "a", "score", "Expected"), TEST_FILE_LOC).path
    'cases[0].expect.a.score'
    """
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
        if (
            isinstance(seg, str)
            and seg in _EVENTS_TAGS
            and prev[-2:] == ["data", "events"]
            and model_loc[-1:] == ["events"]
        ):
            model_loc.append(seg)
            continue
        if exists and isinstance(cur, dict) and str(seg) in cur:
            cur = cur[str(seg)]
        elif exists and isinstance(seg, int) and isinstance(cur, list) and 0 <= seg < len(cur):
            cur = cur[seg]
        elif (isinstance(seg, str) and rules.is_label(seg)
              and (rules.anywhere or (exists and isinstance(cur, dict)))):
            union = True
            continue
        elif exists and not isinstance(cur, (dict, list)):
            union = True  # a label below a scalar (e.g. a union member name)
            continue
        else:
            exists = False
        path = join(path, seg if isinstance(seg, int) else str(seg))
        model_loc.append(seg)
        prev.append(seg)
    return LocPath(path, exists, key, union, tuple(model_loc))


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


def _roadmap_issue(doc: Positions, model: type[BaseModel], err: ErrorDetails,
                   id_pattern: str | None) -> Issue | None:
    """Turn one pydantic error into an issue at its YAML position (None when redundant)."""
    lp = loc_to_path(doc.data, err["loc"])
    if any(lp.path == p or lp.path.startswith((p + ".", p + "[")) for p in doc.poisoned):
        return None
    etype = err["type"]
    value = err.get("input")
    ctx = dict(err.get("ctx") or {})
    name = str(segments(lp.path)[-1]) if lp.path else "the file"
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
            close = guess(name, allowed)
            hint = f"{close + ' ' if close else ''}allowed keys: {', '.join(allowed)}"
    elif etype == "literal_error":
        allowed = _literals(_types_at(model, lp.model_loc)) or [
            v.strip("'") for v in re.split(r", | or ", str(ctx.get("expected", "")))
        ]
        what = "key" if key else "value"
        message = f"{kind_of(value)} is not an allowed {what} for {name!r}"
        if key:
            message = f"{value!r} is not an allowed key here"
        close = guess(str(value), allowed) if isinstance(value, str) else None
        hint = f"{close + ' ' if close else ''}allowed: {quote_list(allowed)}"
    elif etype == "union_tag_invalid":
        tag = str(ctx.get("tag"))
        message = f"unknown indicator kind {tag!r}"
        close = guess(tag, sorted(_UNION_TAGS))
        hint = f"{close + ' ' if close else ''}allowed: 'events', 'derived'"
        if isinstance(value, dict) and "kind" in value:
            path = join(path, "kind")
    elif etype in ("model_type", "dict_type", "model_attributes_type"):
        message = f"expected a mapping (key: value lines), got {kind_of(value)}"
    elif etype in ("list_type", "tuple_type"):
        message = f"expected a list, got {kind_of(value)}"
    elif etype == "string_type":
        message = f"expected text, got {kind_of(value)}"
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            hint = f"put it in quotes to make it text: {name}: \"{value}\""
    elif etype in ("float_type", "float_parsing", "int_type", "int_parsing", "int_from_float",
                   "finite_number"):
        want = "a whole number" if etype.startswith("int") else "a number"
        if etype == "finite_number":
            want = "a finite number"
        message = f"expected {want}, got {kind_of(value)}"
    elif etype in ("bool_type", "bool_parsing"):
        message = f"expected true or false, got {kind_of(value)}"
    elif etype == "string_pattern_mismatch" and ctx.get("pattern") == id_pattern:
        message = (f"{value!r} is not a valid id: use letters, digits and _, starting with a "
                   "letter")
    elif etype in ("too_short", "too_long", "string_too_short", "string_too_long"):
        message = f"{name}: {err['msg'][0].lower()}{err['msg'][1:]}"
    elif etype in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        message = f"{name}: {err['msg'][0].lower()}{err['msg'][1:]}, got {value!r}"
    elif etype in ("bands_invalid", "duplicate_id") and isinstance(value_at(doc.data, path), dict):
        path = _refine_bands(doc.data, path, ctx)
    elif etype == "weights_invalid" and ctx.get("what") in ("indicators", "families"):
        path = join(path, str(ctx["what"]))
    elif etype in _POINT_AT and path.rsplit(".", 1)[-1] != _POINT_AT[etype]:
        path = join(path, _POINT_AT[etype])
    elif etype in ("unknown_timezone", "no_timezone_database"):
        hint = str(ctx.get("hint") or "") or None
    elif etype == "window_invalid" and "compare" in ctx:
        path = join(path, "compare")
    location = doc.where(path, key=key)
    return Issue(code=etype, message=message, location=location, hint=hint,
                 ctx={k: v for k, v in ctx.items() if isinstance(v, (str, int, float, bool))})


_POINT_AT: Final = {"missing_of": "aggregate", "unexpected_of": "of", "missing_q": "aggregate",
                    "unexpected_q": "q", "q_invalid": "q",
                    "unexpected_compare": "compare"}


def _refine_bands(data: Any, path: str, ctx: dict[str, Any]) -> str:
    """Point a bands error at the level (and edge) it is about, not at the whole ``bands``."""
    node = value_at(data, path)
    levels = node.get("levels") if isinstance(node, dict) else None
    if not isinstance(levels, list):
        return path
    names = [lv.get("name") if isinstance(lv, dict) else None for lv in levels]
    lpath = join(path, "levels")

    def edge(i: int, keys: tuple[str, str]) -> str:
        lv = levels[i]
        for k in keys:
            if isinstance(lv, dict) and k in lv:
                return join(join(lpath, i), k)
        return join(lpath, i)

    if "dup" in ctx:
        first = str(ctx["dup"]).split(", ")[0]
        hits = [i for i, n in enumerate(names) if n == first]
        return join(join(lpath, hits[-1]), "name") if hits else path
    if "b" in ctx and ctx["b"] in names:
        return edge(names.index(ctx["b"]), ("ge", "gt"))
    if "name" in ctx and ctx["name"] in names:
        i = names.index(ctx["name"])
        if i == 0:
            return edge(i, ("ge", "gt"))
        return edge(i, ("lt", "le"))
    return path


def validation_issues(doc: Positions, model: type[BaseModel], exc: pydantic.ValidationError,
                      *, id_pattern: str | None = None) -> list[Issue]:
    """The issues of a roadmap, pack or library file that failed its pydantic model.

    Each error is placed at its YAML position and reworded for a rule author (``unknown key
    'titel'`` with a did-you-mean and the allowed keys, ``expected a list, got the text
    'x'`` ...). Errors below a node that could not be read (``doc.poisoned``) are dropped, and
    so are the repeats pydantic reports once per union member.

    Parameters
    ----------
    doc
        The file as read.
    model
        The model the file's data was validated with.
    exc
        The error it raised.
    id_pattern
        The pattern of ids: a value that does not match it is explained as an id.

    Returns
    -------
    list of Issue
    """
    out: list[Issue] = []
    seen: set[tuple[str, str]] = set()
    for err in exc.errors(include_url=False):
        issue = _roadmap_issue(doc, model, err, id_pattern)
        if issue is None:
            continue
        union = loc_to_path(doc.data, err["loc"]).union
        marker = (issue.location.path, "" if union else issue.message)
        if marker in seen:
            continue
        seen.add(marker)
        out.append(issue)
    return out


def issue_of_test_file(doc: Positions, err: ErrorDetails,
                    owner: Callable[[str], type[BaseModel] | None]) -> Issue:
    """The issue of one pydantic error of a rule-pack test file, at its YAML position.

    Parameters
    ----------
    doc
        The test file as read.
    err
        One item of the ``ValidationError``.
    owner
        The model of the mapping at a YAML path (None when unknown): an unknown key is
        answered with a did-you-mean among that model's keys, or their list.

    Returns
    -------
    Issue
    """
    lp = loc_to_path(doc.data, err["loc"], TEST_FILE_LOC)
    path, is_key = lp.path, lp.key
    msg = err["msg"]
    hint = None
    if err["type"] == "extra_forbidden":
        name = path.rsplit(".", 1)[-1]
        msg = f"unknown key {name!r}"
        hint = _key_hint(path, owner)
        is_key = True
    elif err["type"] == "missing":
        msg = f"missing key {path.rsplit('.', 1)[-1]!r}"
    elif err["type"] == "literal_error" and path == "kind":
        msg = "kind must be `test` in a test file"
    return Issue(code=err["type"], message=msg, hint=hint, location=doc.where(path, key=is_key))


def _key_hint(path: str, owner: Callable[[str], type[BaseModel] | None]) -> str | None:
    name = path.rsplit(".", 1)[-1]
    model = owner(path[: -len(name) - 1] if "." in path else "")
    if model is None:
        return None
    keys = [k for k in model.model_fields if k != name]
    return did_you_mean(name, keys, ignore_case=False) or "allowed keys here: " + ", ".join(keys)
