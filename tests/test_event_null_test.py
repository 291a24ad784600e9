"""The folded flaw test reads the event name's nulls from a filter column (``_Shape.event_test``).

polars 2.2 reads a Parquet string column stored with a dictionary as a dictionary column,
where ``is_null`` costs about 48 instructions an event (the codes used, then a gather of the
result). Where the pass's shared form has a column ``col(event) == '<text>'`` (a filter
``event == '<text>'``), that column is null exactly where the event name is, and the folded
flaw test reads its nulls instead (docs/performance.md, "Eleventh round on the events
pass"). These tests pin which filters qualify, that the streaming pass uses the column, and
that the pass gives the same frames and counters as without it (and as the unfolded pass)
on null event names, null timestamps, NaN and infinities, over Parquet scans and in-memory
frames.
"""

from __future__ import annotations

import ast
import datetime as dt
import math
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import healthrules as hr
from healthrules.engine import aggregate
from healthrules.engine.aggregate import EventsPass, is_event_test
from healthrules.expressions import Parsed
from healthrules.query_flags import EVENTS_QUERY_FLAGS
from test_one_limb_sums import CLOCK, DAY, ROADMAP


def _parsed(text: str) -> Parsed:
    return Parsed(text, ast.parse(text, mode="eval").body)


@pytest.mark.parametrize(("text", "expr", "expected"), [
    ("event == 'buy'", pl.col("event") == pl.lit("buy"), True),
    ("'buy' == event", pl.col("event") == pl.lit("buy"), True),
    # the expression must be that comparison as it is
    ("event == 'buy'", (pl.col("event") == pl.lit("buy")).fill_null(False), False),
    ("event == 'buy'", pl.col("event") == pl.lit("view"), False),
    # null where the event is null is not what these are (``or`` of Kleene logic, ``!=``
    # is fine but not detected: only the one form is)
    ("event == 'a' or event == 'b'", pl.col("event") == pl.lit("a"), False),
    ("event != 'buy'", pl.col("event") != pl.lit("buy"), False),
    ("event == 'buy' and amount > 1", pl.col("event") == pl.lit("buy"), False),
    ("kind == 'buy'", pl.col("kind") == pl.lit("buy"), False),
    ("event == 3", pl.col("event") == pl.lit(3), False),
])
def test_which_filters_qualify(text: str, expr: pl.Expr, expected: bool) -> None:
    assert is_event_test(_parsed(text), expr, "event") is expected


def test_no_event_column() -> None:
    assert not is_event_test(_parsed("event == 'buy'"), pl.col("event") == "buy", None)


def _events() -> pl.DataFrame:
    """Events with every kind of flaw, among clean ones (several accounts)."""
    rows = []
    for a in range(6):
        for i in range(40):
            rows.append({"account_id": f"a{a}", "user_id": "u",
                         "event": ("buy", "view", None)[(i + a) % 3] if a % 2 else
                         ("buy", "view")[i % 2],
                         "timestamp": None if (a == 3 and i % 7 == 0) else
                         DAY - dt.timedelta(days=i, minutes=a),
                         "amount": (math.nan if (a == 5 and i == 4) else
                                    math.inf if (a == 1 and i == 9) else
                                    None if i % 11 == 0 else (i - 17) * 1.25 + a / 8),
                         "seats": i})
    # two clean accounts only: the pass's sums stay finite for them
    return pl.DataFrame(rows, schema_overrides={"timestamp": pl.Datetime("us"),
                                                "amount": pl.Float64, "event": pl.String})


def _run(events: pl.LazyFrame, plan: hr.Plan, folded: bool,
         ) -> tuple[pl.DataFrame, dict[str, int], str]:
    accounts = pl.DataFrame({"account_id": [f"a{a}" for a in range(6)]})
    p = EventsPass(plan, CLOCK, accounts, optimistic=True)
    query = p.query(events, shared=p.streams_shared(), folded=folded)
    raw = query.collect(optimizations=EVENTS_QUERY_FLAGS)
    got, counts = p.finish(raw, events)
    return got.sort(p.key), counts, query.explain(optimizations=EVENTS_QUERY_FLAGS)


@pytest.fixture(params=["parquet", "lazy"])
def events(request: pytest.FixtureRequest, tmp_path: Path) -> pl.LazyFrame:
    df = _events()
    if request.param == "lazy":
        return df.lazy()
    path = tmp_path / "events.parquet"
    df.write_parquet(path, use_pyarrow=False)
    return pl.scan_parquet(path)


def test_same_results_with_and_without_the_column(
        events: pl.LazyFrame, monkeypatch: pytest.MonkeyPatch) -> None:
    got, counts, plan_text = _run(events, hr.compile(ROADMAP), folded=True)
    # the folded flaw test reads the filter column's nulls, not the event column's
    assert 'col("event").is_null()' not in plan_text
    assert '.is_null() | col("__shared' in plan_text
    # flaws of every kind are there: the counters say so
    assert counts["events_null_event"] > 0 and counts["events_null_timestamp"] > 0
    assert counts["values_not_finite"] == 2
    unfolded, unfolded_counts, _ = _run(events, hr.compile(ROADMAP), folded=False)
    monkeypatch.setattr(aggregate, "is_event_test", lambda *args: False)
    before, before_counts, before_text = _run(events, hr.compile(ROADMAP), folded=True)
    assert 'col("event").is_null()' in before_text
    # (the sums are exact: their bits do not depend on the order of the additions)
    assert_frame_equal(got, before)
    assert_frame_equal(got, unfolded)
    assert counts == before_counts == unfolded_counts


def test_clean_events_run_nothing_more(events: pl.LazyFrame,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    clean = events.filter(pl.col("event").is_not_null() & pl.col("timestamp").is_not_null()
                          & (pl.col("amount").abs() < math.inf))
    seen: list[int] = []
    real = EventsPass._flaw_query

    def spy(self: EventsPass, *args: object, **kwargs: object) -> object:
        seen.append(1)
        return real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(EventsPass, "_flaw_query", spy)
    got, counts, _ = _run(clean, hr.compile(ROADMAP), folded=True)
    assert seen == []
    assert [counts[k] for k in ("events_null_event", "events_null_timestamp",
                                "values_not_finite")] == [0, 0, 0]
    unfolded, _, _ = _run(clean, hr.compile(ROADMAP), folded=False)
    assert_frame_equal(got, unfolded)


def test_without_such_a_filter_the_event_column_is_tested() -> None:
    spec = ROADMAP.model_dump(mode="json", by_alias=True, exclude_none=True)
    for ind in spec["indicators"]:
        if ind.get("where") == "event == 'buy'":
            ind["where"] = "event == 'buy' or event == 'sell'"
    plan = hr.compile(hr.Roadmap.model_validate(spec))
    _, _, text = _run(_events().lazy(), plan, folded=True)
    assert 'col("event").is_null()' in text
