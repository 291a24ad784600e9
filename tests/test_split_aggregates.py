"""Sums and means in two steps: their reductions inside the events pass's ``group_by``
(each distinct one computed once), finished on one row per account afterwards.

The two-step form must give the same bits as the one-expression form
(:meth:`healthrules.aggregates.Split.whole`), and the engine the same values as the
reference evaluator (docs/performance.md, "Where the engine's time goes").
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

import healthrules as hr
import healthrules.engine.aggregate as aggregate_module
from healthrules.aggregates import AGGREGATE_KINDS, exact_columns, exact_limbs
from healthrules.engine.evaluator import events_query
from healthrules.roadmap import Roadmap
from reference import evaluate_reference

AS_OF = dt.date(2026, 6, 30)
ACCOUNTS = pl.DataFrame({"account_id": ["a", "b", "c", "d"]})

FLOATS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
    st.sampled_from([0.1, 0.2, 0.3, -0.0, 1e-9, 5e-10, 2.5e-9, 1e15, -7.25, None]),
)


def _bits(frame: pl.DataFrame, column: str) -> list[int | None]:
    return frame.get_column(column).cast(pl.Float64).to_frame().select(
        pl.col(column).reinterpret(signed=False)).to_series().to_list()


def _one_and_two_steps(kind_name: str, values: list[float | None], value_type: str,
                       keep: list[bool | None]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The kind's aggregation per group as one expression and in two steps."""
    kind = AGGREGATE_KINDS[kind_name]  # type: ignore[index]
    n = len(values)
    frame = pl.DataFrame({
        "g": [i % 3 for i in range(n)],
        "v": pl.Series(values, dtype=pl.Float64),
        "keep": pl.Series(keep, dtype=pl.Boolean),
    })
    if value_type == "float":
        x = pl.col("v")
        frame = frame.with_columns(pl.when(x.is_finite()).then(x).alias("v"))
        hi, lo = exact_limbs(pl.col("v"))
        frame = frame.with_columns(hi.alias(exact_columns("v")[0]),
                                   lo.alias(exact_columns("v")[1]))
    else:
        frame = frame.with_columns(
            pl.when(pl.col("v").is_finite() & (pl.col("v").abs() < 1e12))
            .then(pl.col("v").round()).cast(pl.Int64).alias("v"))
    inputs = kind.inputs(condition=pl.col("keep"), timestamp=pl.lit(None), of="v", user=None,
                         value_types={"v": value_type}, day="__day", finite=True)
    one = frame.group_by("g").agg(kind.polars(inputs).alias("x")).sort("g")
    assert kind.split is not None
    split = kind.split(inputs)
    if split is None:  # an integer sum: one reduction, nothing to split
        return one, one
    parts = [f"p{k}" for k in range(len(split.parts))]
    two = (frame.group_by("g").agg(p.alias(n) for p, n in zip(split.parts, parts, strict=True))
           .with_columns(split.finish([pl.col(p) for p in parts]).alias("x")).drop(parts)
           .sort("g"))
    return one, two


@pytest.mark.parametrize("kind_name", ["sum", "mean"])
@pytest.mark.parametrize("value_type", ["float", "int"])
@given(st.lists(st.tuples(FLOATS, st.sampled_from([True, False, None])), max_size=40))
def test_two_steps_give_the_bits_of_one(kind_name: str, value_type: str,
                                        rows: list[tuple[float | None, bool | None]]) -> None:
    one, two = _one_and_two_steps(kind_name, [v for v, _ in rows], value_type,
                                  [k for _, k in rows])
    assert one.get_column("g").to_list() == two.get_column("g").to_list()
    assert _bits(one, "x") == _bits(two, "x")


def test_a_mean_of_tenths_is_the_exact_mean() -> None:
    one, two = _one_and_two_steps("mean", [0.1, 0.2, 0.3, 0.1, 0.2, 0.3], "float",
                                  [True] * 6)
    # per group (0: 0.1 and 0.1; 1: 0.2 and 0.2; 2: 0.3 and 0.3): the exact means
    assert two.get_column("x").to_list() == [0.1, 0.2, 0.3]
    assert _bits(one, "x") == _bits(two, "x")


def _roadmap() -> Roadmap:
    def ind(ident: str, aggregate: str, **more: Any) -> dict[str, Any]:
        return {"id": ident, "family": "process", "aggregate": aggregate, "window": "30d",
                **more}

    return Roadmap.model_validate({
        "id": "s", "goal": "g",
        "data": {"events": {"values": {"amount": "float", "seats": "int"}}},
        "indicators": [
            ind("spend", "sum", of="amount", where="event == 'buy'"),
            # the same window and filter: the sums of the limbs are shared with ``spend``
            ind("spend_avg", "mean", of="amount", where="event == 'buy'"),
            ind("spend_avg_trend", "mean", of="amount", where="event == 'buy'",
                compare="delta"),
            ind("spend_all", "sum", of="amount"),
            ind("seats_avg", "mean", of="seats"),
            ind("seats_sum", "sum", of="seats"),
            ind("biggest", "max", of="amount"),
            ind("smallest", "min", of="amount", where="event == 'buy'"),
        ],
        "stages": [{"id": "s", "actions": [{
            "id": "low", "kind": "challenge", "when": "spend < 2", "do": "call",
            "owner": "csm"}]}],
    })


IDS = ["spend", "spend_avg", "spend_avg_trend", "spend_all", "seats_avg", "seats_sum",
       "biggest", "smallest"]


def _events() -> pl.DataFrame:
    days = [29, 28, 20, 10, 2, 29, 25, 5, 30, 1, 15, 12]
    return pl.DataFrame({
        "account_id": ["a", "a", "a", "a", "a", "b", "b", "b", "c", "c", "a", "b"],
        "user_id": ["u1"] * 12,
        "event": ["buy", "buy", "view", "buy", "buy", "buy", "view", "buy", "buy", "view",
                  "buy", "buy"],
        "timestamp": [dt.datetime(2026, 6, d, 9) if k != 4 else dt.datetime(2026, 5, 20, 9)
                      for k, d in enumerate(days)],
        "amount": [0.1, 0.2, math.nan, 0.3, 1e15, math.inf, 2.5, -0.7, None, 9.0, -math.inf,
                   0.1],
        "seats": [1, 2, 3, None, 5, 6, 7, 8, 9, 10, 11, 12],
    })


def test_the_pass_shares_the_reductions_of_sums_and_means() -> None:
    query = events_query(_roadmap(), _events(), ACCOUNTS, AS_OF)
    text = query.explain()
    agg = text[text.index("AGGREGATE"):]
    agg = agg[:agg.index("FROM")]
    # ``spend`` and ``spend_avg`` (and the current window of ``spend_avg_trend``): one sum of
    # each limb over the bought events of the window, not one per indicator. Three
    # (window, filter) pairs: 30 days bought (a sum of each limb, a count), the 30 days
    # before bought (the same) and 30 days all (a sum of each limb)
    hi, lo = exact_columns("amount")
    assert agg.count(f'then(col("{hi}"))') == 5
    assert agg.count(f'then(col("{lo}"))') == 3
    # the value column is read as the pass read it (NaN and inf already null): no second
    # guard around ``max`` and ``min``
    assert "is_finite" not in agg


def test_the_pass_gives_the_values_of_one_step_and_of_the_reference(
        monkeypatch: pytest.MonkeyPatch) -> None:
    roadmap, events = _roadmap(), _events()
    got = hr.evaluate(roadmap, events, ACCOUNTS, AS_OF)
    ref = evaluate_reference(roadmap, events, ACCOUNTS, AS_OF)
    for row in got.indicators.to_dicts():
        want = ref.accounts[row["account_id"]].indicators
        assert {k: row[k] for k in IDS} == {k: want[k] for k in IDS}, row["account_id"]
    rows = {r["account_id"]: r for r in got.indicators.to_dicts()}
    # a: 0.1, 0.2 and 0.3 bought in the window (1e15 a month before, -inf read as null):
    # the exact sum's double, divided by the count in one IEEE division
    assert rows["a"]["spend"] == 0.6 and rows["a"]["spend_avg"] == 0.6 / 3
    assert rows["d"]["spend"] == 0 and rows["d"]["spend_avg"] is None
    # each aggregation as one expression in the group_by (before this change): same frames
    monkeypatch.setattr(aggregate_module, "aggregate_split", lambda *_, **__: None)
    plain = hr.evaluate(hr.compile(roadmap), events, ACCOUNTS, AS_OF)
    assert plain.indicators.equals(got.indicators)
    assert plain.diagnostics == got.diagnostics


@pytest.mark.parametrize("kind", [k for k in AGGREGATE_KINDS.values() if k.split is not None],
                         ids=lambda k: k.name)
@pytest.mark.parametrize("value_type", ["float", "int"])
@pytest.mark.parametrize("finite", [False, True])
def test_a_kinds_split_is_its_polars_form(kind: Any, value_type: str, finite: bool) -> None:
    inputs = kind.inputs(condition=pl.col("keep"), timestamp=pl.col("t"), of="v", user=None,
                         value_types={"v": value_type}, day="__day", finite=finite)
    split = kind.split(inputs)
    if split is None:
        assert kind.name == "sum" and value_type == "int"  # one reduction
        return
    assert split.whole().meta.eq(kind.polars(inputs))
    # floats: the sum of each limb (and a mean's count); integers: the sum and the count
    want = {("sum", "float"): 2, ("mean", "float"): 3, ("mean", "int"): 2}
    assert len(split.parts) == want[kind.name, value_type]
