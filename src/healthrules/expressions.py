"""The expression language: parse, check against an allow-list, and infer types (no polars here).

Expressions use Python's expression syntax (the one simpleeval reads), restricted to names,
literals, arithmetic, comparisons (chained too), ``and`` / ``or`` / ``not``, ``in``,
``x if c else y``, ``is None`` and an allow-list of functions. Attribute access, subscripts,
comprehensions, lambdas, keyword arguments and starred arguments are rejected, and so are
expressions that are too long or too deeply nested. Parsing is done once; the compiler
(:mod:`healthrules.compiler`) turns the checked tree into polars and the scalar evaluator
(:mod:`healthrules.explain`) evaluates it row by row for explanations and tests.
"""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeAlias, assert_never

from healthrules._diagnostics import did_you_mean
from healthrules._typing import INT_MAX, INT_MIN, NUMERIC, TEMPORAL, Type, unify
from healthrules.functions import ARG_COPIES, FUNCTION_TABLE

__all__ = [
    "EXPR_NODES",
    "FUNCTIONS",
    "INT_MAX",
    "INT_MIN",
    "MAX_COST",
    "MAX_DEPTH",
    "MAX_LENGTH",
    "MAX_NODES",
    "MAX_POWER",
    "TIME_FUNCTIONS",
    "TIME_NAMES",
    "ExprNode",
    "ExprProblem",
    "Parsed",
    "Type",
    "column_of",
    "did_you_mean",
    "expr_node",
    "fold_int",
    "infer",
    "lag_column",
    "literal_value",
    "lowered_cost",
    "names_in",
    "node_types",
    "parse",
    "time_references",
]

MAX_LENGTH = 4000
MAX_DEPTH = 40
MAX_NODES = 400
MAX_POWER = 16
MAX_COST = 4000
"""The most nodes the vectorised form of one expression may have (:func:`lowered_cost`)."""


FUNCTIONS: dict[str, str] = {name: f.doc for name, f in FUNCTION_TABLE.items()}
"""The allow-list of functions with one line of help each (from
:data:`healthrules.functions.FUNCTION_TABLE`)."""

# ------------------------------------------------------------------ change over time
# Names and functions that read history. They are allowed in action conditions only (the
# analysis gives the actions scope the name ``days_in_stage``, which is the marker checked
# below). A single evaluation has no history, so there they are null (unknown); history()
# and the state store fill them in (docs/time.md).

TIME_FUNCTIONS: frozenset[str] = frozenset(n for n, f in FUNCTION_TABLE.items() if f.history)
TIME_NAMES: dict[str, Type] = {"days_in_stage": "int"}


def lag_column(name: str, days: int) -> str:
    """The column that holds ``name``'s value ``days`` days before ``as_of``."""
    return f"__lag__{days}__{name}"


def time_references(tree: ast.AST) -> tuple[frozenset[tuple[str, int]], bool]:
    """Return the ``(name, days)`` lags an expression reads and whether it reads the stage age.

    ``prev(x, 7)`` and ``change(x, 7)`` read the lag ``("x", 7)``; ``stuck(N)`` and the name
    ``days_in_stage`` read the stage age.
    """
    lags: set[tuple[str, int]] = set()
    stage_age = False
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in TIME_NAMES:
            stage_age = True
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
            continue
        if node.func.id == "stuck":
            stage_age = True
        elif node.func.id in ("prev", "change") and len(node.args) == 2:
            x, n = node.args
            if isinstance(x, ast.Name) and isinstance(n, ast.Constant) and isinstance(
                    n.value, int):
                lags.add((x.id, n.value))
    return frozenset(lags), stage_age

ExprNode: TypeAlias = (
    ast.Name | ast.Constant | ast.UnaryOp | ast.BinOp | ast.BoolOp | ast.Compare | ast.IfExp
    | ast.Call | ast.Tuple | ast.List
)
"""The kinds of expression node the allow-list accepts; every dispatch on node kinds covers
them with ``match`` and ``assert_never``, so a kind added here is a type error where missed."""

EXPR_NODES: tuple[type[ast.expr], ...] = (
    ast.Name, ast.Constant, ast.UnaryOp, ast.BinOp, ast.BoolOp, ast.Compare, ast.IfExp, ast.Call,
    ast.Tuple, ast.List,
)
"""The classes of :data:`ExprNode`, for ``isinstance``."""


def expr_node(node: ast.AST) -> ExprNode | None:
    """The node as one of the allowed expression kinds, or None when it is not one."""
    if isinstance(node, (ast.Name, ast.Constant, ast.UnaryOp, ast.BinOp, ast.BoolOp, ast.Compare,
                         ast.IfExp, ast.Call, ast.Tuple, ast.List)):
        return node
    return None


_ALLOWED_NODES: tuple[type[ast.AST], ...] = (
    ast.Expression,
    ast.BoolOp,
    ast.And,
    ast.Or,
    ast.UnaryOp,
    ast.Not,
    ast.USub,
    ast.UAdd,
    ast.BinOp,
    ast.Add,
    ast.Sub,
    ast.Mult,
    ast.Div,
    ast.Pow,
    ast.Compare,
    ast.Eq,
    ast.NotEq,
    ast.Lt,
    ast.LtE,
    ast.Gt,
    ast.GtE,
    ast.In,
    ast.NotIn,
    ast.Is,
    ast.IsNot,
    ast.IfExp,
    ast.Call,
    ast.Name,
    ast.Load,
    ast.Constant,
    ast.Tuple,
    ast.List,
)

_DESCRIBE: dict[type[ast.AST], str] = {
    ast.Attribute: "attribute access (a.b)",
    ast.Subscript: "subscripts (a[b])",
    ast.Lambda: "lambda",
    ast.ListComp: "comprehensions",
    ast.SetComp: "comprehensions",
    ast.DictComp: "comprehensions",
    ast.GeneratorExp: "comprehensions",
    ast.NamedExpr: "assignment (:=)",
    ast.Starred: "starred arguments",
    ast.Dict: "dict literals",
    ast.Set: "set literals",
    ast.JoinedStr: "f-strings",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.FloorDiv: "floor division (//)",
    ast.Mod: "the % operator",
    ast.BitAnd: "bitwise operators (use `and`)",
    ast.BitOr: "bitwise operators (use `or`)",
    ast.BitXor: "bitwise operators",
    ast.Invert: "bitwise operators (use `not`)",
    ast.LShift: "bit shifts",
    ast.RShift: "bit shifts",
    ast.MatMult: "the @ operator",
}


class ExprProblem(Exception):
    """A problem inside an expression, with the 1-based column (within the expression text)."""

    def __init__(self, code: str, message: str, column: int = 1,
                 hint: str | None = None) -> None:
        super().__init__(code, message, column, hint)
        self.code = code
        self.message = message
        self.column = column
        self.hint = hint

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"ExprProblem({self.code!r}, {self.message!r}, column={self.column})"


@dataclass(frozen=True, slots=True)
class Parsed:
    """A parsed and allow-listed expression: its source text and its ``ast`` tree."""

    source: str
    tree: ast.expr

    @property
    def names(self) -> frozenset[str]:
        """Every variable name the expression reads, with the indicator of ``band(x)`` (function
        names excluded)."""
        return names_in(self.tree)

    def segment(self, node: ast.AST) -> str:
        """Return the source text of a sub-expression."""
        if (getattr(node, "end_lineno", None) == 1 and "\n" not in self.source
                and "\r" not in self.source):
            # a one-line text (nearly every expression): slice its cached UTF-8 bytes, as
            # ast.get_source_segment does after splitting the whole text into lines again
            start, end = node.col_offset, node.end_col_offset  # type: ignore[attr-defined]
            return _utf8(self.source)[start:end].decode()
        seg = ast.get_source_segment(self.source, node)
        return seg if seg is not None else ast.unparse(node)


@functools.lru_cache(maxsize=1024)
def _utf8(source: str) -> bytes:
    """An expression's text in UTF-8 (node columns count bytes)."""
    return source.encode()


def literal_value(node: ast.AST) -> object:
    """The value of a literal item of an ``in`` list (a constant or a negated number)."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = literal_value(node.operand)
        assert isinstance(inner, (int, float))
        return -inner
    assert isinstance(node, ast.Constant)
    return node.value


def column_of(node: ast.AST) -> int:
    """The 1-based character column of a node inside its expression text."""
    return _col(node)


def _col(node: ast.AST) -> int:
    """1-based column of a node, in characters (``col_offset`` counts UTF-8 bytes)."""
    return int(getattr(node, "_char_col", int(getattr(node, "col_offset", 0)) + 1))


def _mark_char_columns(tree: ast.AST, source: str) -> None:
    """Record each node's character column, for sources that are not pure ASCII."""
    data = source.encode("utf-8", "surrogatepass")
    for node in ast.walk(tree):
        offset = getattr(node, "col_offset", None)
        if isinstance(offset, int):
            node.__dict__["_char_col"] = len(data[:offset].decode("utf-8", "replace")) + 1


def parse(source: str) -> Parsed:
    """Parse an expression and check it against the allow-list.

    Raises
    ------
    ExprProblem
        With code ``expr_syntax``, ``expr_disallowed`` or ``expr_too_complex`` and the column.
    """
    if not isinstance(source, str) or not source.strip():
        raise ExprProblem("expr_syntax", "the expression is empty")
    if len(source) > MAX_LENGTH:
        raise ExprProblem(
            "expr_too_complex", f"the expression is longer than {MAX_LENGTH} characters"
        )
    text = source.replace("\r", " ").replace("\n", " ").replace("\t", " ")
    depth = 0
    deepest = 0
    for ch in text:
        if ch in "([":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in ")]":
            depth -= 1
    if deepest > MAX_DEPTH:
        raise ExprProblem(
            "expr_too_complex", f"the expression nests brackets deeper than {MAX_DEPTH} levels"
        )
    try:
        module = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        foreign = _foreign_operator(text.strip())
        if foreign is not None:
            token, column, instead = foreign
            raise ExprProblem("expr_syntax", f"syntax error: `{token}` is not an operator here",
                              column=column, hint=f"did you mean `{instead}`?") from None
        col = exc.offset or 1
        msg = (exc.msg or "invalid syntax").replace("invalid syntax. ", "")
        raise ExprProblem("expr_syntax", f"syntax error: {msg}", column=col) from None
    except (RecursionError, MemoryError, ValueError) as exc:
        raise ExprProblem("expr_too_complex", f"the expression cannot be parsed: {exc}") from None
    tree: ast.AST = module.body
    source = text.strip()
    if not source.isascii():
        _mark_char_columns(tree, source)
    _check_allowed(tree)
    assert isinstance(tree, ast.expr)
    cost = lowered_cost(tree)
    if cost > MAX_COST:
        raise ExprProblem(
            "expr_too_complex",
            "the expression is too costly to evaluate: its vectorised form would have more than "
            f"{MAX_COST:,} steps (nested `**`, round() and `if` conditions repeat their "
            "operands)",
            column=1,
            hint="give a repeated part its own derived indicator and use its name",
        )
    return Parsed(source=source, tree=tree)


def _pow_exponent(node: ast.BinOp) -> int:
    exp = node.right
    assert isinstance(exp, ast.Constant) and isinstance(exp.value, int)
    return exp.value


def lowered_cost(tree: ast.AST) -> int:
    """How many nodes the vectorised (polars) form of an allow-listed expression has.

    The polars form is a tree: an operand it uses more than once is computed once per use
    (``x ** n`` multiplies ``x`` n times, ``a if c else b`` tests ``c`` twice, ``a / b``
    reads ``b`` twice, a middle operand of a chained comparison is read by both its pairs,
    ``x in (...)`` reads ``x`` twice, a function reads each argument as often as its polars
    form does, :data:`healthrules.functions.ARG_COPIES`). This counts those copies, so that
    :func:`parse` can refuse an expression whose evaluation would cost far more than its
    text suggests (:data:`MAX_COST`); the count stops growing once it passes the budget.
    """
    limit = MAX_COST + 1

    def cost(node: ast.AST) -> int:
        n = expr_node(node)
        if n is None:
            return 1
        total: int
        match n:
            case ast.Name() | ast.Constant():
                total = 1
            case ast.UnaryOp():
                total = 1 + cost(n.operand)
            case ast.BinOp():
                left, right = cost(n.left), cost(n.right)
                if isinstance(n.op, ast.Pow):
                    total = 1 + max(_pow_exponent(n), 2) * left
                elif isinstance(n.op, ast.Div):
                    total = 1 + left + 2 * right
                else:
                    total = 1 + left + right
            case ast.BoolOp():
                total = 1 + sum(cost(v) for v in n.values)
            case ast.Compare():
                operands = [n.left, *n.comparators]
                uses = [0] * len(operands)
                current = 0
                for k, op in enumerate(n.ops):
                    if isinstance(op, (ast.In, ast.NotIn)):
                        uses[current] += 2
                        continue
                    uses[current] += 1
                    if not isinstance(op, (ast.Is, ast.IsNot)):
                        uses[k + 1] += 1
                    current = k + 1
                total = 1 + sum(u * cost(o) for u, o in zip(uses, operands, strict=True)
                                if not isinstance(o, (ast.Tuple, ast.List)))
            case ast.IfExp():
                total = 1 + 2 * cost(n.test) + cost(n.body) + cost(n.orelse)
            case ast.Call():
                name = n.func.id if isinstance(n.func, ast.Name) else ""
                copies = ARG_COPIES.get(name, 1)
                total = 1 + copies * sum(cost(a) for a in n.args)
            case ast.Tuple() | ast.List():
                total = 1 + len(n.elts)
            case _:
                assert_never(n)
        return min(total, limit)

    return cost(tree)


_FOREIGN = re.compile(r"===|!==|=<|=>|&&|\|\||![^=]|!$|(?<![=!<>])=(?!=)")
_INSTEAD = {"===": "==", "!==": "!=", "=<": "<=", "=>": ">=", "&&": "and", "||": "or",
            "!": "not", "=": "=="}


def _foreign_operator(source: str) -> tuple[str, int, str] | None:
    """The first operator of another language in an expression that does not parse (``=<``,
    ``&&``, ``||``, ``!x``, ``=``, ``===``), its 1-based column and what to write instead.
    Text inside string literals is not looked at."""
    masked = re.sub(r"'[^']*'|\"[^\"]*\"", lambda m: " " * len(m.group()), source)
    m = _FOREIGN.search(masked)
    if m is None:
        return None
    token = "!" if m.group()[0] == "!" and m.group() != "!==" else m.group()
    return token, m.start() + 1, _INSTEAD[token]


def _check_allowed(tree: ast.AST) -> None:
    count = 0
    stack: list[tuple[ast.AST, int]] = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise ExprProblem(
                "expr_too_complex", f"the expression has more than {MAX_NODES} parts"
            )
        if depth > MAX_DEPTH:
            raise ExprProblem(
                "expr_too_complex",
                f"the expression nests deeper than {MAX_DEPTH} levels",
                column=_col(node),
            )
        if not isinstance(node, _ALLOWED_NODES):
            what = _DESCRIBE.get(type(node), type(node).__name__)
            raise ExprProblem(
                "expr_disallowed", f"not allowed in expressions: {what}", column=_col(node)
            )
        if isinstance(node, ast.Name):
            if node.id.startswith("_"):
                raise ExprProblem(
                    "expr_disallowed",
                    f"names starting with an underscore ({node.id}) are not allowed",
                    column=_col(node),
                )
        elif isinstance(node, ast.Constant):
            if not isinstance(node.value, (int, float, str, bool, type(None))):
                raise ExprProblem(
                    "expr_disallowed",
                    f"literal {node.value!r} is not allowed (numbers, strings, True, False, None)",
                    column=_col(node),
                )
        elif isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name):
                raise ExprProblem(
                    "expr_disallowed", "only named functions can be called", column=_col(node)
                )
            if node.func.id not in FUNCTIONS:
                raise ExprProblem(
                    "unknown_name",
                    f"unknown function {node.func.id!r}",
                    column=_col(node),
                    hint=did_you_mean(node.func.id, FUNCTIONS),
                )
            if node.keywords:
                raise ExprProblem(
                    "expr_disallowed", "keyword arguments are not allowed", column=_col(node)
                )
            # the function name itself is fine; check the arguments only
            stack.extend((a, depth + 1) for a in node.args)
            continue
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
            exp = node.right
            ok = (
                isinstance(exp, ast.Constant)
                and isinstance(exp.value, int)
                and not isinstance(exp.value, bool)
                and 0 <= exp.value <= MAX_POWER
            )
            if not ok:
                raise ExprProblem(
                    "expr_disallowed",
                    f"the exponent of ** must be a whole-number literal from 0 to {MAX_POWER}",
                    column=_col(exp),
                )
        elif isinstance(node, (ast.Tuple, ast.List)):
            pass  # checked in context by infer()
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))


def names_in(tree: ast.AST) -> frozenset[str]:
    """Return the variable names an expression reads: the indicator named in ``band(x)`` too
    (derived indicators are ordered by these), function names not.

    Kept on the tree's root, which is never changed once parsed: the analysis, the compiler
    and the input checks ask for the names of the same expressions again."""
    known: frozenset[str] | None = getattr(tree, _NAMES, None)
    if known is not None:
        return known
    out: set[str] = set()
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Name) and node.func.id == "band":
                for a in node.args:
                    if isinstance(a, ast.Name):
                        out.add(a.id)
                continue
            stack.extend(node.args)
            continue
        if isinstance(node, ast.Name):
            out.add(node.id)
        stack.extend(ast.iter_child_nodes(node))
    names = frozenset(out)
    vars(tree)[_NAMES] = names
    return names


_NAMES = "_healthrules_names"




def fold_int(node: ast.AST) -> int | None:
    """The value of an integer expression made of literals only (``+ - * **``, unary minus).

    None when the expression reads anything but integer literals. Folding stops at the first
    step outside 64 bits and returns that step's value (the caller refuses it).
    """
    n = expr_node(node)
    if isinstance(n, ast.Constant):
        v = n.value
        return v if isinstance(v, int) and not isinstance(v, bool) else None
    if isinstance(n, ast.UnaryOp) and isinstance(n.op, (ast.USub, ast.UAdd)):
        x = fold_int(n.operand)
        if x is None:
            return None
        return -x if isinstance(n.op, ast.USub) else x
    if isinstance(n, ast.BinOp) and isinstance(n.op, (ast.Add, ast.Sub, ast.Mult, ast.Pow)):
        a = fold_int(n.left)
        b = fold_int(n.right)
        if a is None or b is None:
            return None
        if not (INT_MIN <= a <= INT_MAX and INT_MIN <= b <= INT_MAX):
            return a if not INT_MIN <= a <= INT_MAX else b
        if isinstance(n.op, ast.Add):
            return a + b
        if isinstance(n.op, ast.Sub):
            return a - b
        if isinstance(n.op, ast.Mult):
            return a * b
        if not 0 <= b <= MAX_POWER:
            return None
        return int(a**b)
    return None


def _comparable(a: Type, b: Type, ordering: bool) -> bool:
    if a == "null" or b == "null":
        return False
    if a in NUMERIC and b in NUMERIC:
        return True
    if a == b:
        return a != "bool" or not ordering
    return a in TEMPORAL and b in TEMPORAL


def infer(
    parsed: Parsed | ast.expr,
    env: Mapping[str, Type],
    *,
    banded: frozenset[str] | set[str] = frozenset(),
) -> Type:
    """Check the types of an expression and return the type of its result.

    Parameters
    ----------
    parsed
        The parsed expression.
    env
        The type of every name the expression may read.
    banded
        Names that ``band(name)`` accepts (indicators that have bands).

    Raises
    ------
    ExprProblem
        Unknown name (with a did-you-mean), wrong argument count, or a type error, with the
        column of the offending sub-expression.
    """
    tree = parsed.tree if isinstance(parsed, Parsed) else parsed
    return _Infer(env, frozenset(banded)).visit(tree)


def node_types(
    parsed: Parsed | ast.expr,
    env: Mapping[str, Type],
    *,
    banded: frozenset[str] | set[str] = frozenset(),
) -> dict[int, Type]:
    """The type of every sub-expression that type-checks on its own, by ``id`` of its node.

    One pass over the whole expression types every node of a valid expression; only the
    nodes it did not reach (function names, the indicator of ``band(x)``, nodes under a part
    that does not type-check) are then tried one by one. Problems are discarded, so no
    did-you-mean is computed: this is what :mod:`healthrules.scalar` calls for every
    expression an explanation traces.
    """
    tree = parsed.tree if isinstance(parsed, Parsed) else parsed
    record: dict[int, Type] = {}
    checker = _Infer(env, frozenset(banded), record=record, hints=False)
    try:
        checker.visit(tree)
    except ExprProblem:
        pass
    for node in ast.walk(tree):
        if isinstance(node, ast.expr) and id(node) not in record:
            try:
                checker.visit(node)
            except ExprProblem:
                continue
    return record


class _Infer:
    def __init__(self, env: Mapping[str, Type], banded: frozenset[str], *,
                 record: dict[int, Type] | None = None, hints: bool = True) -> None:
        self.env = env
        self.banded = banded
        self.record = record
        """When given, the type of every sub-expression that type-checks, by ``id`` of its
        node (see :func:`node_types`)."""
        self.hints = hints
        """Whether a problem carries its did-you-mean (off where problems are discarded)."""

    def fail(self, node: ast.AST, message: str, code: str = "expr_type",
             hint: str | None = None) -> ExprProblem:
        return ExprProblem(code, message, column=_col(node), hint=hint)

    def suggest(self, name: str, candidates: set[str]) -> str | None:
        return did_you_mean(name, candidates) if self.hints else None

    def visit(self, node: ast.AST) -> Type:
        t = self._visit(node)
        if self.record is not None:
            self.record[id(node)] = t
        return t

    def _visit(self, node: ast.AST) -> Type:
        n = expr_node(node)
        if n is None:
            raise self.fail(node, f"{type(node).__name__} is not allowed here", "expr_disallowed")
        match n:
            case ast.Name():
                return self.visit_Name(n)
            case ast.Constant():
                return self.visit_Constant(n)
            case ast.UnaryOp():
                return self.visit_UnaryOp(n)
            case ast.BinOp():
                return self.visit_BinOp(n)
            case ast.BoolOp():
                return self.visit_BoolOp(n)
            case ast.Compare():
                return self.visit_Compare(n)
            case ast.IfExp():
                return self.visit_IfExp(n)
            case ast.Call():
                return self.visit_Call(n)
            case ast.Tuple() | ast.List():
                raise self.fail(n, "a list is only allowed after `in`")
            case _:
                assert_never(n)

    def visit_Name(self, node: ast.Name) -> Type:
        if node.id in ("True", "False"):
            return "bool"
        if node.id == "None":
            return "null"
        if node.id not in self.env:
            hint = did_you_mean(node.id, self.env) if self.hints else None
            raise ExprProblem(
                "unknown_name", f"unknown name {node.id!r}", column=_col(node), hint=hint
            )
        return self.env[node.id]

    def visit_Constant(self, node: ast.Constant) -> Type:
        v = node.value
        if v is None:
            return "null"
        if isinstance(v, bool):
            return "bool"
        if isinstance(v, int):
            if not INT_MIN <= v <= INT_MAX:
                raise self.fail(node, "integer literal is too large: integers are 64-bit "
                                f"(at most {INT_MAX:,}); write a float (e.g. {float(v):.1e}) "
                                "for larger numbers", "expr_too_complex")
            return "int"
        if isinstance(v, float):
            if v != v or v in (float("inf"), float("-inf")):
                raise self.fail(node, "the literal must be a finite number")
            return "float"
        if isinstance(v, str):
            return "str"
        raise self.fail(node, f"literal {v!r} is not allowed", "expr_disallowed")

    def visit_UnaryOp(self, node: ast.UnaryOp) -> Type:
        t = self.visit(node.operand)
        if isinstance(node.op, ast.Not):
            if t not in ("bool", "null"):
                raise self.fail(node, f"`not` needs a true/false value, got {t}")
            return "bool"
        if t not in NUMERIC:
            raise self.fail(node, f"unary minus/plus needs a number, got {t}")
        if t == "int":
            self.check_fits(node)
        return t

    def check_fits(self, node: ast.expr) -> None:
        """Refuse integer arithmetic on literals whose result leaves the 64-bit range."""
        value = fold_int(node)
        if value is not None and not INT_MIN <= value <= INT_MAX:
            raise self.fail(
                node, "the result of this integer arithmetic does not fit a 64-bit integer "
                f"(at most {INT_MAX:,}), so it would be null", "expr_too_complex",
                hint="write a float literal (e.g. 2.0 ** 70) to compute with floats")

    def visit_BinOp(self, node: ast.BinOp) -> Type:
        lt = self.visit(node.left)
        rt = self.visit(node.right)
        sym = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**"}.get(
            type(node.op), "?"
        )
        for side, t in ((node.left, lt), (node.right, rt)):
            if t not in NUMERIC:
                hint = " (use days_between(a, b) for dates)" if t in TEMPORAL else ""
                raise self.fail(side, f"`{sym}` needs numbers, got {t}{hint}")
        if isinstance(node.op, ast.Div):
            return "float"
        if isinstance(node.op, ast.Pow):
            if lt == "int":
                self.check_fits(node)
            return lt
        if lt == rt == "int":
            self.check_fits(node)
            return "int"
        return "float"

    def visit_BoolOp(self, node: ast.BoolOp) -> Type:
        word = "and" if isinstance(node.op, ast.And) else "or"
        for v in node.values:
            t = self.visit(v)
            if t not in ("bool", "null"):
                raise self.fail(v, f"`{word}` needs true/false values, got {t}")
        return "bool"

    def visit_Compare(self, node: ast.Compare) -> Type:
        left_node: ast.expr = node.left
        left = self.visit(left_node)
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            if isinstance(op, (ast.Is, ast.IsNot)):
                if not (isinstance(right_node, ast.Constant) and right_node.value is None):
                    raise self.fail(right_node, "`is` / `is not` only compare with None")
                left_node, left = right_node, "null"
                continue
            if isinstance(op, (ast.In, ast.NotIn)):
                if not isinstance(right_node, (ast.Tuple, ast.List)) or not right_node.elts:
                    raise self.fail(
                        right_node, "`in` needs a literal list, e.g. plan in ('pro', 'enterprise')"
                    )
                for elt in right_node.elts:
                    negative_number = (
                        isinstance(elt, ast.UnaryOp) and isinstance(elt.op, ast.USub)
                        and isinstance(elt.operand, ast.Constant)
                        and isinstance(elt.operand.value, (int, float))
                        and not isinstance(elt.operand.value, bool)
                    )
                    if not negative_number and (
                        not isinstance(elt, ast.Constant) or elt.value is None
                    ):
                        raise self.fail(elt, "the items of an `in` list must be literals")
                    et = self.visit(elt)
                    if not _comparable(left, et, ordering=False):
                        raise self.fail(elt, f"cannot look for a {left} among {et} values")
                left_node, left = right_node, left
                continue
            right = self.visit(right_node)
            ordering = not isinstance(op, (ast.Eq, ast.NotEq))
            if left == "null" or right == "null":
                raise self.fail(
                    right_node if right == "null" else left_node,
                    "comparing with None is always unknown; use `x is None`",
                )
            if not _comparable(left, right, ordering):
                raise self.fail(right_node, f"cannot compare {left} with {right}")
            left_node, left = right_node, right
        return "bool"

    def visit_IfExp(self, node: ast.IfExp) -> Type:
        t = self.visit(node.test)
        if t not in ("bool", "null"):
            raise self.fail(node.test, f"the condition of `if` must be true/false, got {t}")
        a = self.visit(node.body)
        b = self.visit(node.orelse)
        u = unify(a, b)
        if u is None:
            raise self.fail(node, f"both branches of `if` must have one type, got {a} and {b}")
        return u

    def visit_Call(self, node: ast.Call) -> Type:
        assert isinstance(node.func, ast.Name)
        name = node.func.id
        fn = FUNCTION_TABLE.get(name)
        if fn is None:
            raise self.fail(node, f"unknown function {name!r}", "unknown_name")
        if fn.history and "days_in_stage" not in self.env:
            raise self.fail(node, f"{name}() reads history, so it is only allowed in action "
                            "conditions (when, resolved_when)", "expr_disallowed")
        wrong = fn.arity_problem(len(node.args))
        if wrong is not None:
            raise self.fail(node, wrong)
        return fn.type_rule(self, node)
