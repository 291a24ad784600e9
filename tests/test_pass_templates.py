"""The events passes' shared form built without a clock (issues #10, #14).

``compile`` builds each source's events pass once without its date (``EventsPass._template``:
every aggregation, reduction and finish of the shared form, reading its windows and filters
from columns); an evaluation at a new date builds only those columns (the windows' instants,
the filters that read ``as_of``) and its read, and the streaming pass runs in that shared
form where it ran the plain one (docs/performance.md, "Ninth round on the events pass").
A speed change: the templates must give the expressions the shared form built at each clock
gives, and the evaluations the results of the former plain streaming pass, on adversarial
inputs.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import math
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import healthrules as hr
from healthrules.engine import EventsPass
from healthrules.engine.aggregate import EVENTS_QUERY_FLAGS, _Shape
from healthrules.inputs import clock_for
from healthrules.roadmap import Roadmap

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "rules" / "examples"
AS_OF = dt.date(2026, 6, 30)


def _workload() -> Any:
    spec = importlib.util.spec_from_file_location("workload", ROOT / "benchmarks" / "workload.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


WORKLOAD = _workload()


def _roadmap(zone: str | None = None) -> Roadmap:
    events: dict[str, Any] = {"values": {"amount": "float", "n": "int"}}
    if zone is not None:
        events["timezone"] = zone
    return Roadmap.model_validate({
        "id": "p", "goal": "g",
        "data": {"events": events, "accounts": {"attributes": {"start": "date"}}},
        "indicators": [
            {"id": "logins_30d", "family": "process", "aggregate": "count",
             "where": "event == 'login'", "window": "30d", "compare": "delta"},
            # a filter that reads as_of: a column built at each clock
            {"id": "recent_logins", "family": "process", "aggregate": "count",
             "where": "event == 'login' and days_since(timestamp) <= 3", "window": "30d"},
            {"id": "late_spend", "family": "outcome", "aggregate": "sum", "of": "amount",
             "where": "days_since(timestamp) >= 10", "window": "90d"},
            {"id": "spend", "family": "outcome", "aggregate": "sum", "of": "amount",
             "where": "event != 'view'", "window": "30d"},
            {"id": "spend_again", "family": "outcome", "aggregate": "sum", "of": "amount",
             "where": "event != 'view'", "window": "30d"},
            {"id": "spend_avg", "family": "outcome", "aggregate": "mean", "of": "amount",
             "where": "event != 'view'", "window": "30d"},
            {"id": "spend_all", "family": "outcome", "aggregate": "sum", "of": "amount",
             "window": "90d", "compare": "pct_change"},
            {"id": "n_avg", "family": "outcome", "aggregate": "mean", "of": "n",
             "window": "all"},
            {"id": "n_sum", "family": "outcome", "aggregate": "sum", "of": "n",
             "window": "90d"},
            {"id": "top", "family": "outcome", "aggregate": "max", "of": "amount",
             "window": "90d"},
            {"id": "users", "family": "process", "aggregate": "distinct", "window": "30d"},
            {"id": "days", "family": "process", "aggregate": "active_days",
             "window": "90d"},
            {"id": "last_buy", "family": "process", "aggregate": "days_since_last",
             "where": "event == 'buy'", "window": "all"},
            # windows that start at an account attribute: instants built at each clock
            {"id": "since_start", "family": "process", "aggregate": "count",
             "window": {"from": "start"}},
            {"id": "first_month", "family": "process", "aggregate": "sum", "of": "amount",
             "where": "event != 'view'", "window": {"from": "start", "days": 30}},
        ],
        "stages": [{"id": "s", "actions": [{
            "id": "quiet", "kind": "challenge", "when": "recent_logins < 1", "do": "call",
            "owner": "csm"}]}],
    })


IDS = ["logins_30d", "recent_logins", "late_spend", "spend", "spend_again", "spend_avg",
       "spend_all", "n_avg", "n_sum", "top", "users", "days", "last_buy", "since_start",
       "first_month"]


def _events(zone: str | None = None, n: int = 3000, big: bool = False) -> pl.DataFrame:
    frame = pl.DataFrame({
        "account_id": [None if k % 97 == 0 else f"a{k % 11}" for k in range(n)],
        "user_id": [f"u{k % 5}" if k % 11 else None for k in range(n)],
        "event": [("login", "view", "buy", None)[k % 4] if k % 37 else None
                  for k in range(n)],
        "timestamp": [None if k % 53 == 0 else
                      dt.datetime(2026, 1, 1) + dt.timedelta(minutes=83 * k + k % 5)
                      for k in range(n)],
        "amount": [(math.nan if k % 29 == 0 else math.inf if k % 31 == 0
                    else -math.inf if k % 41 == 0
                    else -0.0 if k % 17 == 0 else None if k % 13 == 0
                    else 6e9 if big and k % 7 == 0
                    else (k % 9 - 4) * 1.25 + k / 1000) for k in range(n)],
        "n": [None if k % 19 == 0 else k % 23 - 11 for k in range(n)],
    }, schema_overrides={"timestamp": pl.Datetime("us")})
    if zone is None:
        return frame
    # wall times a daylight-saving change skips or repeats among them
    return frame.with_columns(pl.col("timestamp").dt.replace_time_zone(
        zone, ambiguous="earliest", non_existent="null"))


ACCOUNTS = pl.DataFrame({
    "account_id": [f"a{k}" for k in range(10)],  # a10: an unknown account
    "start": [None if k == 3 else dt.date(2026, 1, 1) + dt.timedelta(days=17 * k)
              for k in range(10)],
})

FIELDS = ("shared", "shared_aggs", "finishes", "copies", "parts", "values", "columns",
          "attributes", "joined", "instants", "use_day", "checks", "one_limb_checks",
          "pair_flags")


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, pl.Expr):
        return isinstance(b, pl.Expr) and a.meta.eq(b)
    if isinstance(a, tuple):
        return (isinstance(b, tuple) and len(a) == len(b)
                and all(_same(x, y) for x, y in zip(a, b, strict=True)))
    return bool(a == b)


def _assert_shapes_equal(got: _Shape, want: _Shape, what: str) -> None:
    for field in FIELDS:
        assert _same(getattr(got, field), getattr(want, field)), (what, field)
    assert _same(got.staged[0] + got.staged[1], want.staged[0] + want.staged[1]), what


def _plans() -> list[Any]:
    paths = sorted(EXAMPLES.glob("*/roadmap.yaml")) + sorted(EXAMPLES.glob("*/pack.yaml"))
    sources: list[Any] = [hr.load(p) for p in paths]
    sources += [Roadmap.model_validate(WORKLOAD.roadmap_dict()),
                Roadmap.model_validate(WORKLOAD.roadmap_sources_dict()),
                _roadmap(), _roadmap("Europe/Amsterdam")]
    return sources


def test_templates_are_the_shared_form_of_every_clock() -> None:
    """Over every example pack and both benchmark roadmaps, three time units, dates in
    turn (a daylight-saving change among them): the template at a clock is the shared
    form built at that clock, field by field; compile built the templates."""
    templated = untemplated = 0
    for source in _plans():
        plan = hr.compile(source)
        held = plan.memo.get("events-pass-template", {})
        assert {k for k, v in held.items() if v is not None} | {
            k for k, v in held.items() if v is None} == {
            (s, True, f) for s in plan.sources for f in (False, True)}
        for unit in ("us", "ms", "ns"):
            schema = pl.Schema({"timestamp": pl.Datetime(unit, plan.events.timezone)})
            for as_of in (AS_OF, dt.date(2024, 3, 31), dt.datetime(2026, 10, 25, 2, 30),
                          dt.date(2026, 3, 29)):
                clock = clock_for(plan, schema, as_of)
                for name in plan.sources:
                    for optimistic in (True, False):
                        for folded in (False, True):
                            p = EventsPass(plan, clock, ACCOUNTS, source=name,
                                           optimistic=optimistic)
                            if p._template(folded) is None:
                                untemplated += 1
                                continue
                            templated += 1
                            got = p._shape(folded, shared=True)
                            assert got.templated
                            want = p._build_shape()
                            if folded and optimistic:
                                want = p._folded(want)
                            _assert_shapes_equal(got, want, f"{plan.pack_id} {name}")
                            assert _same(p._base().columns, want.columns)
    # (portfolio-scorecard reads a window from an indicator: no template there)
    assert templated > 300 and untemplated > 0


def _old_query(monkeypatch: pytest.MonkeyPatch) -> None:
    """The evaluation as it ran before: the streaming passes in the plain form, no
    template (the small in-memory passes as they were: their own shared form)."""
    query = EventsPass.query

    def plain(self: EventsPass, events: pl.LazyFrame, small: bool = False,
              shared: bool = False, folded: bool = False) -> pl.LazyFrame:
        return query(self, events, small=small, shared=shared and small, folded=folded)

    monkeypatch.setattr(EventsPass, "query", plain)
    monkeypatch.setattr(EventsPass, "_template", lambda self, folded: None)


def _frames_equal(a: pl.DataFrame, b: pl.DataFrame) -> None:
    key = "account_id"
    a, b = a.sort(key), b.sort(key)
    assert a.columns == b.columns
    assert a.schema == b.schema
    for col in a.columns:
        for x, y in zip(a[col].to_list(), b[col].to_list(), strict=True):
            if col.startswith("__abs__") and isinstance(x, float) and isinstance(y, float):
                # a check's sum of absolute values, only compared with EXACT_BOUND: the
                # streaming group_by adds an account's events in the order its threads
                # meet them, so the last bits may differ from one collect to the next
                assert x == y or math.isclose(x, y, rel_tol=1e-12), (col, x, y)
            elif isinstance(x, float) and isinstance(y, float):
                assert (math.isnan(x) and math.isnan(y)) or (
                    x == y and math.copysign(1, x) == math.copysign(1, y)), (col, x, y)
            else:
                assert x == y, (col, x, y)


def _evaluate_both(monkeypatch: pytest.MonkeyPatch, plan_source: Any, events: Any,
                   accounts: pl.DataFrame, dates: list[Any],
                   **kw: Any) -> list[hr.Evaluation]:
    """Each date evaluated with one plan in the new form, then with another plan in the
    old, and compared: indicators, actions and data checks."""
    new_plan = hr.compile(plan_source)
    got = [hr.evaluate(new_plan, events, accounts, d, **kw) for d in dates]
    with monkeypatch.context() as m:
        _old_query(m)
        old_plan = hr.compile(plan_source)
        want = [hr.evaluate(old_plan, events, accounts, d, **kw) for d in dates]
    for g, w in zip(got, want, strict=True):
        _frames_equal(g.indicators, w.indicators)
        assert g.actions.equals(w.actions)
        assert g.diagnostics == w.diagnostics
    return got


@pytest.mark.parametrize("zone", [None, "America/New_York"])
@pytest.mark.parametrize("form", ["lazy", "parquet", "frame"])
def test_evaluations_match_the_plain_streaming_pass(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, zone: str | None,
        form: str) -> None:
    """NaN, infinities, -0.0, nulls (values, timestamps, events, accounts), an unknown
    account, windows at an attribute and filters reading ``as_of``, dates in turn in one
    process (a daylight-saving change among them), lazy frames, Parquet scans and
    in-memory frames: the same indicators, actions and data checks as the plain pass."""
    events: Any = _events(zone)
    if form == "lazy":
        events = events.lazy()
    elif form == "parquet":
        events.write_parquet(tmp_path / "events.parquet")
        events = pl.scan_parquet(tmp_path / "events.parquet")
    got = _evaluate_both(monkeypatch, _roadmap(zone), events, ACCOUNTS,
                         [AS_OF, dt.date(2026, 3, 8), dt.datetime(2026, 4, 12, 13, 30), AS_OF])
    assert got[0].diagnostics["values_not_finite"] > 0
    assert got[0].diagnostics["unknown_accounts"] == 1
    assert got[0].diagnostics["events_null_account"] > 0


def test_empty_events_and_sums_beyond_one_limb(monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty frame (lazy: the streaming pass), and values whose sums leave the one-Int64
    bound (the pass runs again with two limbs, from its own template)."""
    empty = _events().clear().lazy()
    _evaluate_both(monkeypatch, _roadmap(), empty, ACCOUNTS, [AS_OF])
    big = _events(big=True).lazy()
    runs: list[bool] = []
    run = EventsPass._run

    def counted(self: EventsPass, events: pl.LazyFrame, in_memory: bool) -> pl.DataFrame:
        runs.append(self.optimistic)
        return run(self, events, in_memory)

    monkeypatch.setattr(EventsPass, "_run", counted)
    got = _evaluate_both(monkeypatch, _roadmap(), big, ACCOUNTS, [AS_OF, dt.date(2026, 5, 1)])
    assert False in runs[:4]  # (the new form's runs: again with two limbs)
    assert max(abs(v) for v in got[0].indicators["late_spend"].to_list()
               if v is not None and not math.isnan(v)) > 4.6e9


def test_three_sources_and_the_fallbacks(monkeypatch: pytest.MonkeyPatch,
                                         tmp_path: Path) -> None:
    """The benchmark's three sources (millisecond tickets, ``Date`` surveys) over small
    generated data with NaN, -0.0, nulls and an unknown account, lazy frames and Parquet
    scans; distinct counts from pairs (``low_memory``: no template) and a window that
    starts at an indicator (portfolio-scorecard: no template): the same results."""
    events, accounts = WORKLOAD.generate(20_000, 150)
    tickets, surveys = WORKLOAD.generate_sources(20_000, 150)
    k = pl.int_range(pl.len())
    events = events.with_columns(
        pl.when(k % 41 == 0).then(float("nan")).when(k % 43 == 0).then(-0.0)
        .when(k % 47 == 0).then(None).otherwise(pl.col("value")).alias("value"),
        pl.when(k % 53 == 0).then(pl.lit("nobody")).otherwise(pl.col("account_id"))
        .alias("account_id"))
    tickets = tickets.with_columns(
        pl.when(k % 7 == 0).then(None).when(k % 11 == 0).then(float("inf"))
        .otherwise(pl.col("minutes")).alias("minutes"))
    surveys = surveys.with_columns(
        pl.when(k % 9 == 0).then(None).otherwise(pl.col("nps")).alias("nps"))
    roadmap = Roadmap.model_validate(WORKLOAD.roadmap_sources_dict())
    tickets.write_parquet(tmp_path / "tickets.parquet")
    frames: dict[str, Any] = {"usage": events.lazy(),
                              "tickets": pl.scan_parquet(tmp_path / "tickets.parquet"),
                              "surveys": surveys.lazy()}
    got = _evaluate_both(monkeypatch, roadmap, frames, accounts,
                         [WORKLOAD.AS_OF, WORKLOAD.AS_OF - dt.timedelta(days=45)])
    assert got[0].diagnostics["unknown_accounts"] == 1
    assert got[0].diagnostics["values_not_finite"] > 0
    _evaluate_both(monkeypatch, Roadmap.model_validate(WORKLOAD.roadmap_dict()),
                   events.lazy(), accounts, [WORKLOAD.AS_OF], low_memory=True)
    scorecard = hr.load(EXAMPLES / "portfolio-scorecard" / "roadmap.yaml")
    splan = hr.compile(scorecard)
    clock = clock_for(splan, pl.Schema({"timestamp": pl.Datetime("us")}), AS_OF)
    assert EventsPass(splan, clock, accounts, optimistic=True)._template(True) is None
    assert EventsPass(hr.compile(roadmap), clock, accounts, optimistic=True,
                      low_memory=True)._template(True) is None


def test_a_new_date_builds_no_aggregation(monkeypatch: pytest.MonkeyPatch) -> None:
    """After compile, evaluations at new dates (the streaming pass, several sources)
    build no pass shape: only the templates' columns that read the clock."""
    plan = hr.compile(Roadmap.model_validate(WORKLOAD.roadmap_dict()))
    calls: list[bool] = []
    build = EventsPass._build_shape

    def counted(self: EventsPass, template: bool = False) -> _Shape:
        calls.append(template)
        return build(self, template)

    monkeypatch.setattr(EventsPass, "_build_shape", counted)
    frame, accounts = WORKLOAD.generate(5_000, 40)
    k = pl.int_range(pl.len())
    events = frame.with_columns(
        pl.when(k % 43 == 0).then(float("nan")).when(k % 47 == 0).then(-0.0)
        .otherwise(pl.col("value")).alias("value")).lazy()
    for d in (AS_OF, dt.date(2026, 6, 1), dt.date(2025, 12, 31)):
        hr.evaluate(plan, events, accounts, d)
    assert calls == []
    # the plain form is still built for the callers that ask for it
    clock = clock_for(plan, events.collect_schema(), AS_OF)
    p = EventsPass(plan, clock, accounts, optimistic=True)
    plain = p.query(events, folded=True).collect(optimizations=EVENTS_QUERY_FLAGS)
    shared = p.query(events, folded=True, shared=True).collect(optimizations=EVENTS_QUERY_FLAGS)
    assert calls == [False]
    _frames_equal(shared, plain)


@pytest.mark.parametrize("zone", [None, "UTC", "America/New_York", "Asia/Kolkata"])
def test_reads_and_read_ranges_kept_across_dates(zone: str | None) -> None:
    """The read steps (kept per plan, source, zone and unit) and the read range (its
    windows' lengths kept per plan and source) at dates in turn, a daylight-saving change
    among them, microsecond, millisecond and ``Date`` timestamps: the steps each clock's
    own build gives, and the earliest start of each clock's windows."""
    from healthrules.engine.aggregate import _read_steps
    from healthrules.inputs import read_event_exprs

    spec = WORKLOAD.roadmap_sources_dict()
    spec["indicators"] = spec["indicators"] + [
        {"id": "since_contract", "family": "process", "aggregate": "count",
         "window": {"from": "contract_start", "days": 400}}]
    plan = hr.compile(Roadmap.model_validate(spec))
    accounts = pl.DataFrame({"account_id": ["a", "b"],
                             "contract_start": [dt.date(2025, 2, 3), None]})
    schemas = {"usage": pl.Datetime("us", zone), "tickets": pl.Datetime("ms", zone),
               "surveys": pl.Date()}
    longest = {"usage": 180, "tickets": 0, "surveys": 0}
    for name in plan.sources:
        got = EventsPass(plan, clock_for(plan, pl.Schema(
            {"timestamp": schemas["usage"]}), AS_OF), accounts, source=name)._range_parts()
        longest[name] = got[0].days if got[0] is not None else 0
    assert longest["usage"] == 180 and longest["tickets"] > 0 and longest["surveys"] > 0
    for as_of in (AS_OF, dt.date(2026, 3, 8), dt.datetime(2026, 11, 1, 1, 30),
                  dt.date(2024, 2, 29)):
        clock = clock_for(plan, pl.Schema({"timestamp": schemas["usage"]}), as_of)
        for name, ev in plan.sources.items():
            schema = pl.Schema({ev.timestamp: schemas[name], ev.account: pl.String,
                                **{c: pl.Float64 if t == "float" else pl.Int64
                                   for c, t in ev.values.items()}})
            columns = tuple(sorted({ev.timestamp, ev.account, *ev.values}))
            for one_limb in (False, True):
                cols, exprs, _ = _read_steps(plan, name, clock, schema, columns, one_limb)
                want_cols, want = read_event_exprs(plan, clock, schema, columns, name)
                assert [c.meta.output_name() for c in cols] == want_cols
                assert _same(tuple(exprs), tuple(want)), (name, as_of)
            p = EventsPass(plan, clock, accounts, source=name)
            start, end = p.read_range()
            assert end == clock.end
            starts = [clock.end - dt.timedelta(days=longest[name])]
            if name == "usage":
                starts.append(dt.datetime(2025, 2, 3))
            assert start == min(starts), (name, as_of)
    # one entry per source, zone and unit, and form of the limbs: none per date
    assert len(plan.memo["event-reads"]) == 2 * len(plan.sources)
    assert len(plan.memo["read-range"]) == len(plan.sources)
