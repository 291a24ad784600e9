"""The data checks of a summed float column ride on its absolute sum.

The events pass takes the absolute sum per account of every summed float column over the
values as stored (NaN and infinities kept), so that a NaN or infinite value makes it not
finite: the pass then tests no event for that flaw, and only data with such values pays a
query that takes the absolute sums again over the values as read and counts the kinds of
flaw (docs/performance.md, "Fourth round on the events pass"). The results and diagnostics
must be those of the form it replaces: every value here is checked against the reference
evaluator or written out by hand.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import polars as pl
import pytest

import healthrules as hr
from healthrules.aggregates import EXACT_BOUND, ONE_LIMB_BOUND
from healthrules.engine import EventsPass
from healthrules.engine.evaluator import events_query
from healthrules.errors import Code, InputDataError
from healthrules.roadmap import Roadmap
from reference import evaluate_reference

AS_OF = dt.date(2026, 6, 30)
ACCOUNTS = pl.DataFrame({"account_id": ["a", "b", "c"]})
IDS = ["spend", "spend_avg", "lowest_score", "logins"]


def _roadmap(score: bool = True) -> Roadmap:
    values = {"amount": "float", "score": "float"} if score else {"amount": "float"}
    indicators: list[dict[str, Any]] = [
        {"id": "spend", "family": "outcome", "aggregate": "sum", "of": "amount",
         "window": "30d"},
        {"id": "spend_avg", "family": "outcome", "aggregate": "mean", "of": "amount",
         "window": "30d"},
        {"id": "logins", "family": "process", "aggregate": "count",
         "where": "event == 'login'", "window": "30d"},
    ]
    if score:  # a float column that no sum adds: its flaws are tested per event
        indicators.append({"id": "lowest_score", "family": "outcome", "aggregate": "min",
                           "of": "score", "window": "30d"})
    return Roadmap.model_validate({
        "id": "p", "goal": "g", "data": {"events": {"values": values}},
        "indicators": indicators,
        "stages": [{"id": "s", "actions": [{
            "id": "quiet", "kind": "challenge", "when": "logins < 1", "do": "call",
            "owner": "csm"}]}],
    })


def _events(amount: list[float | None], score: list[float | None] | None = None,
            ) -> pl.DataFrame:
    n = len(amount)
    return pl.DataFrame({
        "account_id": (["a", "b", "c"] * n)[:n],
        "user_id": ["u"] * n,
        "event": (["login", "view"] * n)[:n],
        "timestamp": [dt.datetime(2026, 6, 1 + k % 28, 9) for k in range(n)],
        "amount": amount,
        "score": score if score is not None else [float(k) for k in range(n)],
    }, schema_overrides={"amount": pl.Float64, "score": pl.Float64})


def _same_as_reference(got: hr.Evaluation, roadmap: Roadmap, events: pl.DataFrame,
                       ids: list[str]) -> None:
    ref = evaluate_reference(roadmap, events, ACCOUNTS, AS_OF)
    for row in got.indicators.to_dicts():
        want = ref.accounts[row["account_id"]].indicators
        assert {k: row[k] for k in ids} == {k: want[k] for k in ids}, row["account_id"]


def _spy(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the queries that take the absolute sums again."""
    calls: list[int] = []
    original = EventsPass._abs_sums_as_read

    def spy(self: EventsPass, *args: Any, **kwargs: Any) -> pl.DataFrame:
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(EventsPass, "_abs_sums_as_read", spy)
    return calls


def test_the_pass_tests_no_event_for_a_summed_columns_flaws() -> None:
    query = events_query(_roadmap(score=False), _events([1.0, 2.0]), ACCOUNTS, AS_OF)
    text = query.explain()
    aggregate = text[text.index("AGGREGATE"):text.index("FROM")]
    assert "__rawabs__amount" in aggregate and "__not_finite" not in aggregate
    # a float column that no sum adds keeps its test per event
    text = events_query(_roadmap(), _events([1.0, 2.0]), ACCOUNTS, AS_OF).explain()
    assert "__others_not_finite" in text[text.index("AGGREGATE"):text.index("FROM")]


@pytest.mark.parametrize("lazy", [False, True])
def test_clean_values_never_take_the_sums_again(monkeypatch: pytest.MonkeyPatch,
                                                lazy: bool) -> None:
    calls = _spy(monkeypatch)
    events = _events([1.5, -2.25, 0.0, -0.0, 4.0, None, 8.5])
    got = hr.evaluate(_roadmap(), events.lazy() if lazy else events, ACCOUNTS, AS_OF)
    assert calls == []
    assert got.diagnostics["values_not_finite"] == 0
    assert got.diagnostics["events_read"] == 7
    _same_as_reference(got, _roadmap(), events, IDS)


@pytest.mark.parametrize("lazy", [False, True])
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_a_not_finite_summed_value_is_counted_and_read_as_null(
        monkeypatch: pytest.MonkeyPatch, bad: float, lazy: bool) -> None:
    calls = _spy(monkeypatch)
    events = _events([1.5, bad, 2.0, 3.0, bad, 4.0, 0.5])
    got = hr.evaluate(_roadmap(), events.lazy() if lazy else events, ACCOUNTS, AS_OF)
    assert calls == [1]
    d = got.diagnostics
    assert (d["values_not_finite"], d["events_null_timestamp"], d["events_null_event"]) == (
        2, 0, 0)
    _same_as_reference(got, _roadmap(), events, IDS)
    rows = {r["account_id"]: r for r in got.indicators.to_dicts()}
    # rows 0, 3 and 6 are a's; rows 1 and 4, both not finite, b's
    assert rows["a"]["spend"] == 1.5 + 3.0 + 0.5
    assert rows["b"]["spend"] == 0.0 and rows["b"]["spend_avg"] is None


def test_a_not_finite_value_of_a_column_no_sum_adds_is_counted() -> None:
    events = _events([1.0, 2.0, 3.0, 4.0], score=[5.0, math.nan, math.inf, 1.0])
    got = hr.evaluate(_roadmap(), events, ACCOUNTS, AS_OF)
    assert got.diagnostics["values_not_finite"] == 2
    _same_as_reference(got, _roadmap(), events, IDS)


def test_every_flaw_at_once() -> None:
    events = _events([1.0, math.nan, 3.0, 4.0, 5.0], score=[1.0, 2.0, -math.inf, 4.0, 5.0])
    events = events.with_columns(
        pl.when(pl.int_range(pl.len()) == 3).then(None).otherwise(pl.col("timestamp"))
        .alias("timestamp"),
        pl.when(pl.int_range(pl.len()) == 4).then(None).otherwise(pl.col("event"))
        .alias("event"))
    got = hr.evaluate(_roadmap(), events, ACCOUNTS, AS_OF)
    d = got.diagnostics
    assert (d["values_not_finite"], d["events_null_timestamp"], d["events_null_event"],
            d["events_read"]) == (2, 1, 1, 5)
    _same_as_reference(got, _roadmap(), events, IDS)


def test_a_sum_out_of_range_is_refused_with_its_size_as_read() -> None:
    big = float(EXACT_BOUND) * 0.75  # two of them reach the bound; a NaN beside them
    events = _events([big, math.nan, 1.0, big, 2.0, 3.0])
    with pytest.raises(InputDataError) as err:
        hr.evaluate(_roadmap(), events, ACCOUNTS, AS_OF)
    (issue,) = err.value.issues
    assert issue.code == Code.VALUES_OUT_OF_RANGE.value
    assert "account 'a'" in issue.message and f"{2 * big:.4g}" in issue.message
    # finite values whose absolute sum is beyond any double: refused too, as before
    with pytest.raises(InputDataError) as err:
        hr.evaluate(_roadmap(), _events([1e308, 1.0, 2.0, 1e308]), ACCOUNTS, AS_OF)
    assert "account 'a'" in err.value.issues[0].message


def test_a_nan_beside_an_account_beyond_one_limb_is_read_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # a's sums need two limbs (the pass runs again); b has a NaN: counted once
    calls = _spy(monkeypatch)
    large = ONE_LIMB_BOUND * 0.6
    events = _events([large, math.nan, 1.0, large, 2.5, 3.0, 0.125])
    got = hr.evaluate(_roadmap(), events, ACCOUNTS, AS_OF)
    assert len(calls) == 2  # the optimistic pass's and the two-limb pass's
    assert got.diagnostics["values_not_finite"] == 1
    assert got.diagnostics["events_read"] == 7
    _same_as_reference(got, _roadmap(), events, IDS)
