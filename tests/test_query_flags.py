"""The engine's optimised collects run without polars' ``cluster_with_columns``.

polars 2.1's ``cluster_with_columns`` optimisation (on by default) moves an expression of a
``with_columns`` into the ``with_columns`` below it when it reads no column the lower one
creates; it leaves an expression in place when a staying one reads its name, but not
transitively, so a staying expression can end up reading the moved expression's new value
(a polars bug: wrong numbers, no error). Every query the package collects with optimisation
passes ``healthrules.engine.frames.OPTIMISED`` (or ``EVENTS_QUERY_FLAGS``): every
optimisation but that one (docs/design.md, "Query flags").

The first test shows the bug itself: when a polars release fixes it, that test fails, and
the guard may go. The others fail without the guard: the flags, every collect in the
package passing flags, the flags each evaluation path passes, and a user's lazy frame of
the bug's shape read through ``evaluate`` and ``history``. The last ones check that the
flags are written in one place, ``healthrules.query_flags``.
"""

from __future__ import annotations

import ast
import datetime as dt
import inspect
import sys
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import healthrules as hr
import healthrules.engine.aggregate as aggregate_module
import healthrules.engine.evaluator as evaluator_module
import healthrules.engine.frames as frames_module
from healthrules.datasets import sample
from healthrules.engine.aggregate import PLAIN_EVENTS, small_events_flags
from healthrules.engine.frames import SMALL_ROWS
from healthrules.history import history
from healthrules.query_flags import EVENTS_QUERY_FLAGS, NO_OPTIMISATION, OPTIMISED

SRC = Path(__file__).resolve().parents[1] / "src" / "healthrules"
B2B = Path(__file__).resolve().parents[1] / "rules" / "examples" / "b2b-saas" / "roadmap.yaml"
AS_OF = dt.date(2026, 7, 1)
FRAME = {"a": [1.0, 2.0], "b": [3.0, 5.0], "c": [7.0, 11.0]}
RIGHT = [(18.0, 4.0, 20.0), (50.0, 14.0, 63.0)]


def _two_steps(lf: pl.LazyFrame) -> pl.LazyFrame:
    """Two ``with_columns`` over columns a, b, c. In the upper step ``a`` and ``b`` read
    nothing the lower one creates (either may move down), ``c`` reads the lower step's ``c``
    (it stays) and ``a``; ``a`` then stays because ``c`` reads it, but ``b`` moves down,
    though ``a`` reads it: ``a`` reads the new ``b``."""
    b, c = pl.col("b"), pl.col("c")
    a = pl.col("a")
    return (lf.with_columns(c=a + b)
            .with_columns(a=(b + b) * b, c=(c + a) * c, b=(a + b) * a))


def test_polars_cluster_with_columns_changes_what_a_step_reads() -> None:
    """The polars bug the guard is for. If this test fails because the default flags give
    the right rows, polars has fixed it: the guard (``OPTIMISED``, the clustering off in
    ``EVENTS_QUERY_FLAGS``) may go, with this test (docs/design.md, "Query flags")."""
    q = _two_steps(pl.LazyFrame(FRAME))
    assert q.collect(optimizations=pl.QueryOptFlags.none()).rows() == RIGHT
    for engine in ("in-memory", "streaming"):
        assert q.collect(engine=engine, optimizations=OPTIMISED).rows() == RIGHT
        assert q.collect(engine=engine, optimizations=EVENTS_QUERY_FLAGS).rows() == RIGHT
        only_clustering = pl.QueryOptFlags.none()
        only_clustering.cluster_with_columns = True
        wrong = q.collect(engine=engine, optimizations=only_clustering).rows()
        assert wrong != RIGHT, (
            f"polars {pl.__version__} clusters these with_columns right: the bug is fixed, "
            "and the engine's guard against it may go (docs/design.md, 'Query flags')")
        assert q.collect(engine=engine).rows() == wrong


def _flag_names() -> list[str]:
    return [n for n in inspect.signature(pl.QueryOptFlags).parameters if not n.startswith("_")]


def test_the_engine_flags_keep_every_optimisation_but_the_clustering() -> None:
    """``OPTIMISED`` is polars' default flags with ``cluster_with_columns`` off and nothing
    else changed; the events pass's flags are those without the common subplans; the
    unoptimised flags of small inputs have it off too."""
    default = pl.QueryOptFlags()
    names = _flag_names()
    assert "cluster_with_columns" in names and default.cluster_with_columns
    for flags, changed in ((OPTIMISED, {"cluster_with_columns"}),
                           (EVENTS_QUERY_FLAGS, {"cluster_with_columns", "comm_subplan_elim"})):
        assert not flags.cluster_with_columns
        for name in names:
            if name not in changed:
                assert getattr(flags, name) == getattr(default, name), name
    assert not EVENTS_QUERY_FLAGS.comm_subplan_elim
    for rows in (0, PLAIN_EVENTS, PLAIN_EVENTS + 1, SMALL_ROWS):
        assert not small_events_flags(rows).cluster_with_columns
    assert not NO_OPTIMISATION.cluster_with_columns


# the calls that run a query: every one in the package passes ``optimizations=``
_RUNS = {"collect", "collect_all", "collect_async", "collect_all_async", "collect_batches",
         "sink_parquet", "sink_ipc", "sink_csv", "sink_ndjson", "sink_batches", "profile"}


def _unguarded(tree: ast.AST) -> list[int]:
    """Lines of calls in ``tree`` that run a polars query without ``optimizations=`` (or
    with flags built in place), and flags built with the clustering left on."""
    bad: list[int] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "polars":
            bad += [node.lineno for a in node.names if a.name in _RUNS]
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        kw = {k.arg: k.value for k in node.keywords}
        if isinstance(func, ast.Attribute) and func.attr == "QueryOptFlags":
            off = kw.get("cluster_with_columns")
            if not (isinstance(off, ast.Constant) and off.value is False):
                bad.append(node.lineno)
            continue
        if not isinstance(func, ast.Attribute) or func.attr not in _RUNS:
            continue
        # a method of the package's own (EventsPass.collect(events, rows)) takes positional
        # arguments; LazyFrame.collect() takes none, pl.collect_all its frames
        is_polars = ((isinstance(func.value, ast.Name) and func.value.id == "pl")
                     or (func.attr == "collect" and not node.args))
        if not is_polars:
            continue
        # flags by name, or from a helper that returns them (``inputs._optimised()``)
        flags = kw.get("optimizations")
        if not (isinstance(flags, ast.Name | ast.Attribute)
                or (isinstance(flags, ast.Call) and isinstance(flags.func, ast.Name)
                    and not flags.args)):
            bad.append(node.lineno)
    return sorted(set(bad))


def test_every_query_the_package_runs_passes_the_engine_flags() -> None:
    """No collect (or sink, or batch collect) in ``src/healthrules`` runs with polars'
    default flags, and no flags are built with the clustering on."""
    found: dict[str, list[int]] = {}
    runs = 0
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        runs += sum(isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
                    and n.func.attr in _RUNS for n in ast.walk(tree))
        bad = _unguarded(tree)
        if bad:
            found[str(path.relative_to(SRC))] = bad
    assert runs > 30  # the walk saw the package's collects
    assert not found, found
    # the walk finds what it is for
    assert _unguarded(ast.parse("lf.collect()\npl.collect_all(x)\nq.collect(engine='auto')\n"
                                "pl.QueryOptFlags(comm_subplan_elim=False)\n"
                                "lf.collect(optimizations=pl.QueryOptFlags())\n"
                                "from polars import collect_all\n")) == [1, 2, 3, 4, 5, 6]
    assert _unguarded(ast.parse("lf.collect(optimizations=OPTIMISED)\np.collect(lf, 3)\n"
                                "pl.collect_all(x, optimizations=flags)\n"
                                "lf.collect(optimizations=_optimised())\n"
                                "pl.QueryOptFlags(cluster_with_columns=False)\n")) == []


def _recording(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    """Record the flags of every collect the package runs (callers in ``healthrules``)."""
    seen: list[tuple[str, Any]] = []
    real_collect, real_all = pl.LazyFrame.collect, pl.collect_all

    def note() -> None:
        caller = sys._getframe(2).f_globals.get("__name__", "")
        if caller.startswith("healthrules"):
            seen.append((caller, flags_of.get("optimizations")))

    flags_of: dict[str, Any] = {}

    def collect(self: pl.LazyFrame, *args: Any, **kwargs: Any) -> Any:
        flags_of.clear()
        flags_of.update(kwargs)
        note()
        return real_collect(self, *args, **kwargs)

    def collect_all(frames: Any, *args: Any, **kwargs: Any) -> Any:
        flags_of.clear()
        flags_of.update(kwargs)
        note()
        return real_all(frames, *args, **kwargs)

    monkeypatch.setattr(pl.LazyFrame, "collect", collect)
    monkeypatch.setattr(pl, "collect_all", collect_all)
    return seen


def test_every_collect_of_an_evaluation_runs_without_the_clustering(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """``evaluate`` (in-memory and lazy events, small and large inputs), ``history`` and
    its lifecycle, and ``explain``: every query they collect passes flags, with the
    clustering off."""
    plan = hr.compile(hr.load(B2B))
    data = sample(60, days=200)
    seen = _recording(monkeypatch)
    small = hr.evaluate(plan, data.events, data.accounts, data.as_of)
    small.explain(small.indicators[plan.account_key][0])
    lazy = hr.evaluate(plan, data.events.lazy(), data.accounts.lazy(), data.as_of)
    for module in (frames_module, evaluator_module, aggregate_module):
        monkeypatch.setattr(module, "SMALL_ROWS", 0)
    large = hr.evaluate(plan, data.events, data.accounts, data.as_of)
    h = history(plan, data.events.lazy(), data.accounts, data.as_of - dt.timedelta(weeks=4),
                data.as_of, "1w")
    assert h.lifecycle is not None and h.actions.height > 0
    for name in ("indicators", "stages", "scores", "actions", "conditions"):
        assert_frame_equal(getattr(lazy, name), getattr(small, name))
        assert_frame_equal(getattr(large, name), getattr(small, name))
    callers = {c for c, _ in seen}
    assert {"healthrules.engine.aggregate", "healthrules.engine.frames",
            "healthrules.history.aggregation"} <= callers, callers
    unguarded = [(c, f) for c, f in seen if f is None or f.cluster_with_columns]
    assert not unguarded, unguarded


def _events(n: int) -> pl.DataFrame:
    """Events of three accounts with three float values: a, b, c."""
    day = dt.datetime(2026, 6, 20, 12)
    return pl.DataFrame({
        "account_id": [f"acc{i % 3}" for i in range(n)],
        "user_id": ["u"] * n, "event": ["buy"] * n,
        "timestamp": [day + dt.timedelta(minutes=i) for i in range(n)],
        "a": [float(i % 7) for i in range(n)], "b": [0.5 * (i % 5) for i in range(n)],
        "c": [float(i % 11) - 3.0 for i in range(n)],
    }, schema_overrides={"timestamp": pl.Datetime("us")})


ROADMAP = hr.Roadmap.model_validate({
    "id": "abc", "goal": "g",
    "data": {"events": {"values": {"a": "float", "b": "float", "c": "float"}}},
    "indicators": [
        {"id": f"{v}_{agg}", "family": "outcome", "aggregate": agg, "of": v, "window": "30d"}
        for v in "abc" for agg in ("sum", "max")],
    "stages": [{"id": "s"}],
})


def test_a_lazy_frame_of_the_bugs_shape_reads_as_its_rows() -> None:
    """A user's lazy events frame built with the two ``with_columns`` of the bug: what
    ``evaluate`` and ``history`` compute from it equals what they compute from its rows
    collected without optimisation (with polars' default flags, the ``c`` every indicator
    of ``c`` reads would be another column)."""
    base = _events(300)
    lazy = _two_steps(base.lazy())
    rows = lazy.collect(optimizations=pl.QueryOptFlags.none())
    assert lazy.collect().rows() != rows.rows()  # the bug shows on this frame
    accounts = pl.DataFrame({"account_id": ["acc0", "acc1", "acc2"]})
    got = hr.evaluate(ROADMAP, lazy, accounts, AS_OF).indicators
    want = hr.evaluate(ROADMAP, rows, accounts, AS_OF).indicators
    assert_frame_equal(got, want)
    start = AS_OF - dt.timedelta(days=14)
    got_h = history(ROADMAP, lazy, accounts, start, AS_OF, "1w").indicators
    want_h = history(ROADMAP, rows, accounts, start, AS_OF, "1w").indicators
    assert_frame_equal(got_h, want_h)


# ------------------------------------------------------- the flags in one place (query_flags)
# Every flags object the package passes to a collect is made once, in healthrules.query_flags;
# the engine (frames, aggregate), the input checks and the sample data import it from there.

FLAGS_MODULE = SRC / "query_flags.py"


def _flag_objects() -> dict[str, pl.QueryOptFlags]:
    import healthrules.query_flags as qf

    return {n: getattr(qf, n) for n in qf.__all__}


def _annotation_nodes(tree: ast.AST) -> set[int]:
    """ids of the nodes inside annotations (a return or argument type may name the class)."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        notes: list[ast.expr | None] = []
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            notes.append(node.returns)
            a = node.args
            notes += [x.annotation for x in (*a.posonlyargs, *a.args, *a.kwonlyargs,
                                             *([a.vararg] if a.vararg else []),
                                             *([a.kwarg] if a.kwarg else []))]
        elif isinstance(node, ast.AnnAssign):
            notes.append(node.annotation)
        for note in notes:
            if note is not None:
                inside |= {id(n) for n in ast.walk(note)}
    return inside


# functions of the package that choose among the flags (their results are checked below)
_CHOOSERS = {"small_events_run", "small_events_flags"}


def _not_from_the_flags_module(tree: ast.AST) -> list[int]:
    """Lines of ``tree`` (a module other than query_flags) that make, change or pass query
    flags not taken from ``healthrules.query_flags``: a mention of ``QueryOptFlags`` outside
    an annotation, a flag set on an object, or a query run whose ``optimizations=`` is not
    a name imported from that module (or a local name bound from one of :data:`_CHOOSERS`)."""
    from_flags: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "healthrules.query_flags":
            from_flags |= {a.asname or a.name for a in node.names}
    chosen: set[str] = set()  # names bound (anywhere in the module) from a chooser's result
    for node in ast.walk(tree):
        if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
                and isinstance(node.value.func, ast.Name) and node.value.func.id in _CHOOSERS):
            for target in node.targets:
                chosen |= {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}
    flag_names = set(_flag_names())
    notes = _annotation_nodes(tree)
    bad: list[int] = []
    for node in ast.walk(tree):
        if id(node) in notes:
            continue
        if isinstance(node, ast.Attribute | ast.Name | ast.alias):
            name = (node.attr if isinstance(node, ast.Attribute) else
                    node.id if isinstance(node, ast.Name) else node.name)
            if name == "QueryOptFlags":
                bad.append(getattr(node, "lineno", 0) or 0)
        if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            bad += [t.lineno for t in targets
                    if isinstance(t, ast.Attribute) and t.attr in flag_names]
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id == "setattr"):
            bad.append(node.lineno)  # no flag set by name either
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in _RUNS):
            continue
        func = node.func
        if not ((isinstance(func.value, ast.Name) and func.value.id == "pl")
                or (func.attr == "collect" and not node.args)):
            continue  # a method of the package's own (EventsPass.collect(events, rows))
        flags = {k.arg: k.value for k in node.keywords}.get("optimizations")
        if not (isinstance(flags, ast.Name) and (flags.id in from_flags or flags.id in chosen)):
            bad.append(node.lineno)
    return sorted(set(bad))


def test_every_flags_object_the_package_passes_is_made_in_query_flags() -> None:
    """The query flags are written once: ``healthrules.query_flags`` is the only module that
    makes or changes a ``QueryOptFlags``, and every query the package runs (outside it)
    passes a name imported from it. The engine's, the input checks' and the sample data's
    names are those very objects."""
    import healthrules.datasets._random as random_module
    import healthrules.inputs as inputs_module
    import healthrules.query_flags as qf

    found: dict[str, list[int]] = {}
    for path in sorted(SRC.rglob("*.py")):
        if path == FLAGS_MODULE:
            continue
        bad = _not_from_the_flags_module(ast.parse(path.read_text(), str(path)))
        if bad:
            found[str(path.relative_to(SRC))] = bad
    assert not found, found
    # the flags module imports nothing of the package (the samples and inputs load no engine)
    tree = ast.parse(FLAGS_MODULE.read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert imported == {"__future__", "polars"}, imported
    # the old homes are the same objects, or gone
    assert frames_module.OPTIMISED is qf.OPTIMISED
    assert frames_module.NO_OPTIMISATION is qf.NO_OPTIMISATION
    assert aggregate_module.EVENTS_QUERY_FLAGS is qf.EVENTS_QUERY_FLAGS
    assert not hasattr(random_module, "QUERY_FLAGS")
    assert not hasattr(inputs_module, "_optimised")
    # the choosers return objects of the module, and keep the clustering off
    objects = list(_flag_objects().values())
    for rows in (0, 1, PLAIN_EVENTS, PLAIN_EVENTS + 1, 619, SMALL_ROWS):
        assert any(small_events_flags(rows) is o for o in objects)
        assert any(aggregate_module.small_events_run(rows)[1] is o for o in objects)
    for o in objects:
        assert not o.cluster_with_columns
    assert qf.SUBEXPRESSIONS_ONLY.comm_subexpr_elim
    assert not qf.NO_OPTIMISATION.comm_subexpr_elim  # two objects, one not changed by the other


def test_the_one_place_check_finds_what_it_is_for() -> None:
    """The source check flags each way of passing other flags, and none of the allowed."""
    bad = ("import polars as pl\nfrom healthrules.query_flags import OPTIMISED\n"
           "F = pl.QueryOptFlags(cluster_with_columns=False)\n"     # 3: made here
           "lf.collect(optimizations=F)\n"                          # 4: not from the module
           "G = pl.QueryOptFlags.none()\n"                          # 5: made here
           "OPTIMISED.comm_subexpr_elim = False\n"                  # 6: changed here
           "pl.collect_all(x, optimizations=frames.OPTIMISED)\n"    # 7: by another module
           "lf.collect()\n"                                         # 8: no flags
           "from polars import QueryOptFlags\n"                     # 9: the class imported
           "setattr(OPTIMISED, 'slice_pushdown', False)\n"          # 10: changed by name
           "lf.collect(optimizations=helper())\n")                  # 11: from elsewhere
    assert _not_from_the_flags_module(ast.parse(bad)) == [3, 4, 5, 6, 7, 8, 9, 10, 11]
    good = ("import polars as pl\nfrom healthrules.query_flags import OPTIMISED as O, X\n"
            "def f(rows: int) -> pl.QueryOptFlags:\n"
            "    shared, flags = small_events_run(rows)\n"
            "    lf.collect(optimizations=flags)\n"
            "    pl.collect_all(x, engine='in-memory', optimizations=O)\n"
            "    p.collect(lf, 3)\n"
            "    return X\n")
    assert _not_from_the_flags_module(ast.parse(good)) == []


def test_every_collect_of_an_evaluation_passes_an_object_of_query_flags(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """At run time: ``evaluate`` (small, lazy and large inputs), ``history`` with its
    lifecycle, ``explain`` and the sample data pass, to every collect they run, one of the
    objects of ``healthrules.query_flags`` itself (not a copy, not one of their own)."""
    plan = hr.compile(hr.load(B2B))
    seen = _recording(monkeypatch)
    data = sample(60, days=200)
    small = hr.evaluate(plan, data.events, data.accounts, data.as_of)
    small.explain(small.indicators[plan.account_key][0])
    hr.evaluate(plan, data.events.lazy(), data.accounts.lazy(), data.as_of)
    for module in (frames_module, evaluator_module, aggregate_module):
        monkeypatch.setattr(module, "SMALL_ROWS", 0)
    hr.evaluate(plan, data.events, data.accounts, data.as_of)
    h = history(plan, data.events.lazy(), data.accounts, data.as_of - dt.timedelta(weeks=4),
                data.as_of, "1w")
    assert h.lifecycle is not None
    callers = {c for c, _ in seen}
    assert {"healthrules.engine.aggregate", "healthrules.engine.frames", "healthrules.inputs",
            "healthrules.history.aggregation", "healthrules.datasets._build"} <= callers, callers
    objects = _flag_objects()
    foreign = [(c, f) for c, f in seen if not any(f is o for o in objects.values())]
    assert not foreign, foreign
