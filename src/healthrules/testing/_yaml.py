"""Read a YAML test file into plain values plus the line and column of every node, by YAML path.

Scalars follow the YAML 1.2 core schema, as the roadmap loader does: ``yes``/``no``/``on``
stay text, and dates and times stay text (the test-file models parse them). Mapping keys are
always text, so an account named ``1001`` is the string ``"1001"``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import yaml

from healthrules.errors import Issue, Location

__all__ = ["Pos", "YamlDoc", "YamlProblem", "join", "loc_to_path", "read_yaml"]

_T = "tag:yaml.org,2002:"
_STR, _NULL, _BOOL, _INT, _FLOAT = _T + "str", _T + "null", _T + "bool", _T + "int", _T + "float"
_SEQ, _MAP, _MERGE, _TIMESTAMP = _T + "seq", _T + "map", _T + "merge", _T + "timestamp"

MAX_NODES = 200_000
"""The most nodes a test document may expand to (aliases counted every time they are used)."""


class _Loader(yaml.SafeLoader):
    """A SafeLoader with YAML 1.2 core-schema scalar resolution."""

    yaml_implicit_resolvers: ClassVar[dict[Any, Any]] = {}  # type: ignore[misc]


for _tag, _regex, _first in (
    (_BOOL, r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    (_NULL, r"^(?:~|null|Null|NULL|)$", "~nN"),
    (_INT, r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789"),
    (
        _FLOAT,
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?)$",
        "-+0123456789.",
    ),
    (_MERGE, r"^(?:<<)$", "<"),
):
    _Loader.add_implicit_resolver(_tag, re.compile(_regex), [*_first])
_Loader.yaml_implicit_resolvers.setdefault("", []).append((_NULL, re.compile(r"^$")))


@dataclass(frozen=True, slots=True)
class Pos:
    """Where a node is: 1-based line and column, and whether it is a plain or quoted scalar."""

    line: int
    column: int
    style: str | None = None


class YamlProblem(Exception):
    """The file is not usable YAML; carries the one issue that says why."""

    def __init__(self, issue: Issue) -> None:
        super().__init__(str(issue))
        self.issue = issue


def join(path: str, seg: str | int) -> str:
    """Append a key or an index to a YAML path (``cases[0].expect.acme``)."""
    if isinstance(seg, int):
        return f"{path}[{seg}]"
    return f"{path}.{seg}" if path else seg


@dataclass
class YamlDoc:
    """One YAML file: its plain value, and the position of every value and key by path."""

    file: str
    data: Any = None
    pos: dict[str, Pos] = field(default_factory=dict)
    keys: dict[str, Pos] = field(default_factory=dict)
    issues: list[Issue] = field(default_factory=list)

    def where(self, path: str, *, key: bool = False, offset: int = 0) -> Location:
        """The location of the node at ``path`` (or its key), else of its nearest parent.

        ``offset`` moves the column right by that many characters, for a position inside a
        plain or single-line quoted scalar (a quoted scalar's text starts one column later).
        """
        if key and path in self.keys:
            p = self.keys[path]
            return Location(self.file, p.line, p.column, path)
        probe = path
        while True:
            if probe in self.pos:
                p = self.pos[probe]
                shift = 0
                if offset and probe == path:
                    shift = offset + (1 if p.style in ("'", '"') else 0)
                return Location(self.file, p.line, p.column + shift, path)
            if not probe:
                return Location(self.file, 1, 1, path)
            probe = _parent(probe)


_TAIL = re.compile(r"(?:\.[^.\[\]]*|\[\d+\])$")


def _parent(path: str) -> str:
    m = _TAIL.search(path)
    return path[: m.start()] if m is not None else ""


def _p(node: yaml.Node) -> Pos:
    style = node.style if isinstance(node, yaml.ScalarNode) else None
    return Pos(node.start_mark.line + 1, node.start_mark.column + 1, style)


def read_yaml(text: str, file: str) -> YamlDoc:
    """Compose ``text`` and return its values and positions.

    Raises
    ------
    YamlProblem
        When the text is not YAML, is empty, or its top level is not a mapping.
    """
    doc = YamlDoc(file=file)
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        problem = exc.problem or exc.context or "invalid YAML"
        raise YamlProblem(Issue(code="yaml_syntax", message=f"YAML syntax error: {problem}",
                                location=Location(file, line, col))) from None
    except yaml.YAMLError as exc:
        raise YamlProblem(Issue(code="yaml_syntax", message=f"YAML error: {exc}",
                                location=Location(file, 1, 1))) from None
    finally:
        loader.dispose()
    if root is None:
        raise YamlProblem(Issue(code="empty_file", message="the test file is empty",
                                location=Location(file, 1, 1),
                                hint="a test file starts with `kind: test`, `roadmap:` and "
                                "`cases:`"))
    builder = _Builder(doc)
    doc.data = builder.build(root, "")
    if not isinstance(doc.data, dict):
        raise YamlProblem(Issue(code="not_a_mapping",
                                message="the top level of a test file must be a mapping",
                                location=Location(file, 1, 1)))
    return doc


class _Builder:
    def __init__(self, doc: YamlDoc) -> None:
        self.doc = doc
        self.count = 0

    def build(self, node: yaml.Node, path: str) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise YamlProblem(Issue(code="file_too_large",
                                    message=f"the document expands to more than {MAX_NODES} "
                                    "YAML nodes", location=self.doc.where(path)))
        self.doc.pos[path] = _p(node)
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node, path)
        if isinstance(node, yaml.SequenceNode) and node.tag == _SEQ:
            return [self.build(child, join(path, i)) for i, child in enumerate(node.value)]
        if isinstance(node, yaml.MappingNode) and node.tag == _MAP:
            return self.mapping(node, path)
        self.problem("unsupported_tag", f"the YAML tag {node.tag!r} is not supported", node, path)
        return None

    def problem(self, code: str, message: str, node: yaml.Node, path: str,
                related: Location | None = None) -> None:
        p = _p(node)
        self.doc.issues.append(Issue(code=code, message=message, related=related,
                                     location=Location(self.doc.file, p.line, p.column, path)))

    def scalar(self, node: yaml.ScalarNode, path: str) -> Any:
        tag, value = node.tag, node.value
        if tag in (_STR, _TIMESTAMP):
            return value
        if tag == _NULL:
            return None
        if tag == _BOOL:
            return value.lower() == "true"
        if tag == _INT:
            return int(value, 0) if value.startswith(("0o", "0x")) else int(value)
        if tag == _FLOAT:
            return float(value)
        self.problem("unsupported_tag", f"the YAML tag {tag!r} is not supported", node, path)
        return None

    def mapping(self, node: yaml.MappingNode, path: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        seen: dict[str, Pos] = {}
        merges: list[yaml.Node] = []
        for knode, vnode in node.value:
            if isinstance(knode, yaml.ScalarNode) and knode.tag == _MERGE:
                merges.append(vnode)
                continue
            if not isinstance(knode, yaml.ScalarNode):
                self.problem("yaml_syntax", "a mapping key must be plain text", knode, path)
                continue
            key = knode.value
            kpath = join(path, key)
            if key in seen:
                first = seen[key]
                self.problem("duplicate_key", f"the key {key!r} appears twice in this mapping",
                             knode, kpath, Location(self.doc.file, first.line, first.column))
                continue
            seen[key] = _p(knode)
            self.doc.keys[kpath] = _p(knode)
            out[key] = self.build(vnode, kpath)
        for merge in merges:
            sources = merge.value if isinstance(merge, yaml.SequenceNode) else [merge]
            for src in sources:
                if not isinstance(src, yaml.MappingNode):
                    self.problem("yaml_syntax", "`<<` merges a mapping into this one", merge,
                                 path)
                    continue
                for knode, vnode in src.value:
                    if isinstance(knode, yaml.ScalarNode) and knode.value not in out:
                        kpath = join(path, knode.value)
                        self.doc.keys[kpath] = _p(knode)
                        out[knode.value] = self.build(vnode, kpath)
        self.doc.pos[path] = _p(node)
        return out


def loc_to_path(data: Any, loc: Sequence[str | int]) -> tuple[str, bool]:
    """Map a pydantic error ``loc`` onto a YAML path, skipping union-member labels.

    Returns the path and whether the error is about a mapping key (``[key]`` in ``loc``).
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


_LABELS = frozenset({"str", "int", "float", "bool", "none", "list", "dict", "function-after",
                     "function-before", "function-plain", "function-wrap", "union"})
