"""The import contract of the package: dependencies point inward, into a public core.

Core is every module of ``src/healthrules`` except the parts built on it: ``cli/``,
``history/``, ``testing/``, ``lint/``, ``integrations/``, ``datasets/``, ``plot.py``,
``_html.py``, ``spark.py``, ``report/`` and ``__main__.py``. The test reads every module with
:mod:`ast` (function-local imports included) and checks that

(a) no module outside the core imports an underscore name of the core
    (``from healthrules.X import _name``, ``healthrules.X._name``) or a private core module
    (``healthrules._diagnostics``), except the pairs of :data:`PRIVATE_ALLOWED`;
(b) no core module imports a part built on it, at the top or inside a function (only
    ``if TYPE_CHECKING:`` blocks may name one), except the pairs of :data:`FACADE_ALLOWED`;
    the lazy tables of the package namespace (``_LAZY``, ``_MODULES`` in
    ``healthrules/__init__.py``) count as imports;
(c) the core modules import each other without a cycle (top-level imports only, outside
    ``TYPE_CHECKING`` blocks).

A failure lists every violation with its file and line.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import healthrules

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "healthrules"

NOT_CORE = frozenset({"cli", "history", "testing", "lint", "integrations", "datasets", "plot",
                      "_html", "spark", "report", "__main__"})

PRIVATE_ALLOWED: dict[tuple[str, str], str] = {
    # The test-file format is the second dialect of the diagnostics: test files are read with
    # the same YAML reader, and their pydantic errors are worded by the same translator.
    ("healthrules.testing.spec", "healthrules._diagnostics"):
        "test files use the shared pydantic-error translator",
    # Lint places its findings on the YAML paths of the roadmap, with the same path helpers
    # the loader uses.
    ("healthrules.lint.runner", "healthrules._diagnostics"):
        "lint walks YAML paths with the shared helpers",
}
"""(importer, private core module) pairs allowed by (a), each with the reason."""

FACADE_ALLOWED: dict[tuple[str, str], str] = {
    # `healthrules.history(...)` is public API: the namespace re-exports the module lazily.
    ("healthrules", "healthrules.history"): "hr.history is a public name of the package",
    # The namespace wires the notebook views onto the core's display hook (healthrules._display)
    # on the first display; the core modules themselves import no view.
    ("healthrules", "healthrules._html"): "the package registers the HTML views",
}
"""(core importer, non-core module) pairs allowed by (b), each with the reason."""


@dataclass(frozen=True)
class Import:
    """One import found in a module."""

    importer: str
    target: str  # the module imported from
    name: str | None  # the name taken from it (None: the module itself)
    file: Path
    line: int
    top_level: bool  # executed when the module is imported (not inside a function)
    type_checking: bool  # inside an `if TYPE_CHECKING:` block


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES: dict[str, Path] = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def is_core(module: str) -> bool:
    parts = module.split(".")
    return parts[0] == "healthrules" and (len(parts) == 1 or parts[1] not in NOT_CORE)


def _private(segment: str) -> bool:
    return segment.startswith("_") and not (segment.startswith("__") and segment.endswith("__"))


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _resolve(importer: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = importer.split(".")
    if not MODULES[importer].name == "__init__.py":
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _imports(module: str) -> Iterator[Import]:
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    aliases: dict[str, str] = {}  # local name -> healthrules module

    def visit(node: ast.AST, top: bool, checking: bool) -> Iterator[Import]:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            top = False
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                yield from visit(child, top, True)
            for child in node.orelse:
                yield from visit(child, top, checking)
            return
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "healthrules":
                    aliases[a.asname or a.name] = a.name
                    if a.asname is None:
                        aliases.setdefault("healthrules", "healthrules")
                    yield Import(module, a.name, None, path, node.lineno, top, checking)
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, node)
            if target.split(".")[0] == "healthrules":
                for a in node.names:
                    sub = f"{target}.{a.name}"
                    if sub in MODULES:  # `from healthrules import lint`: a module
                        aliases[a.asname or a.name] = sub
                        yield Import(module, sub, None, path, node.lineno, top, checking)
                    else:
                        yield Import(module, target, a.name, path, node.lineno, top, checking)
        elif isinstance(node, ast.Attribute):
            dotted = _dotted(node)
            if dotted is not None:
                head, *rest = dotted.split(".")
                if head in aliases:
                    yield from _attribute_import(module, path, node.lineno, top, checking,
                                                 aliases[head], rest)
                    return
        for child in ast.iter_child_nodes(node):
            yield from visit(child, top, checking)

    yield from visit(tree, True, False)


def _dotted(node: ast.expr) -> str | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return ".".join([node.id, *reversed(parts)])


def _attribute_import(module: str, path: Path, line: int, top: bool, checking: bool,
                      base: str, rest: list[str]) -> Iterator[Import]:
    """``healthrules.evaluator._Run``: the name of a module reached through attributes."""
    target = base
    for seg in rest:
        if f"{target}.{seg}" in MODULES:
            target = f"{target}.{seg}"
            continue
        if _private(seg):
            yield Import(module, target, seg, path, line, top, checking)
        return


def _lazy_table_imports() -> Iterator[Import]:
    """The lazy tables of the package namespace, as function-local imports of it."""
    path = MODULES["healthrules"]
    lines = path.read_text(encoding="utf-8").splitlines()
    for table in ("_LAZY", "_MODULES"):
        line = next(i for i, text in enumerate(lines, 1) if text.startswith(f"{table}:"))
        for target in sorted(set(getattr(healthrules, table).values())):
            yield Import("healthrules", target, None, path, line, False, False)


ALL: list[Import] = [
    *(imp for m in MODULES for imp in _imports(m)),
    *_lazy_table_imports(),
]


def _where(imp: Import) -> str:
    return f"{imp.file.relative_to(SRC.parent)}:{imp.line}"


def private_imports() -> list[str]:
    out = []
    for imp in ALL:
        if is_core(imp.importer) or not is_core(imp.target):
            continue
        private_module = any(_private(s) for s in imp.target.split("."))
        if private_module and (imp.importer, imp.target) in PRIVATE_ALLOWED:
            private_module = False
            if imp.name is None or not _private(imp.name):
                continue
        if imp.name is not None and _private(imp.name):
            out.append(f"{_where(imp)}: {imp.importer} imports the private name "
                       f"{imp.target}.{imp.name}")
        elif private_module:
            out.append(f"{_where(imp)}: {imp.importer} imports the private module "
                       f"{imp.target}")
    return out


def outward_imports() -> list[str]:
    out = []
    for imp in ALL:
        if imp.type_checking or not is_core(imp.importer) or is_core(imp.target):
            continue
        if (imp.importer, imp.target) in FACADE_ALLOWED:
            continue
        where = "at the top" if imp.top_level else "inside a function"
        out.append(f"{_where(imp)}: core module {imp.importer} imports {imp.target} ({where})")
    return out


def core_cycles() -> list[str]:
    edges: dict[str, dict[str, Import]] = {m: {} for m in MODULES if is_core(m)}
    for imp in ALL:
        if (imp.top_level and not imp.type_checking and is_core(imp.importer)
                and is_core(imp.target) and imp.target in edges and imp.target != imp.importer):
            edges[imp.importer].setdefault(imp.target, imp)
    out = []
    for component in _strongly_connected(edges):
        if len(component) < 2:
            continue
        inside = [edges[a][b] for a in sorted(component) for b in sorted(edges[a])
                  if b in component]
        out.append("import cycle among " + ", ".join(sorted(component)) + ": " + "; ".join(
            f"{_where(i)}: {i.importer} -> {i.target}" for i in inside))
    return out


def _strongly_connected(edges: dict[str, dict[str, Import]]) -> list[set[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component: set[str] = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            found.append(component)

    for v in sorted(edges):
        if v not in index:
            strong(v)
    return found


def test_the_walk_sees_the_package() -> None:
    assert {"healthrules", "healthrules.loader", "healthrules._diagnostics",
            "healthrules.lint.runner", "healthrules.history.snapshots"} <= set(MODULES)
    assert is_core("healthrules.roadmap") and is_core("healthrules._diagnostics")
    assert not is_core("healthrules.lint.runner") and not is_core("healthrules._html")
    targets = {(i.importer, i.target) for i in ALL}
    assert ("healthrules.loader", "healthrules.roadmap") in targets
    assert ("healthrules", "healthrules.engine") in targets  # the lazy table


def test_the_allow_lists_are_used() -> None:
    pairs = {(i.importer, i.target) for i in ALL}
    assert set(PRIVATE_ALLOWED) <= pairs
    assert set(FACADE_ALLOWED) <= pairs


def test_no_part_imports_a_private_name_of_the_core() -> None:
    violations = private_imports()
    assert not violations, "\n".join(["private names of the core imported from outside:",
                                      *violations])


def test_the_core_imports_no_part_built_on_it() -> None:
    violations = outward_imports()
    assert not violations, "\n".join(["core modules that import outward:", *violations])


def test_the_core_has_no_import_cycle() -> None:
    violations = core_cycles()
    assert not violations, "\n".join(violations)


def test_the_cycle_finder_finds_cycles() -> None:
    imp = ALL[0]
    edges: dict[str, dict[str, Import]] = {"a": {"b": imp}, "b": {"c": imp}, "c": {"a": imp},
                                           "d": {"a": imp}}
    assert sorted(map(sorted, _strongly_connected(edges))) == [["a", "b", "c"], ["d"]]
