"""The streaming events passes of several sources collected each on a thread of its own
(``collect_passes``) instead of in one ``pl.collect_all``.

The same queries give the same frames and the same evaluation (every output frame and
counter) as the one ``collect_all`` they replace, on the inputs of the source-join tests
(the first source holding every account or not, unknown and null keys, an empty source,
keys of another dtype) and on Parquet scans of a few thousand events per source; an error
of a pass is raised on the calling thread, the first failing source's in source order.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import healthrules as hr
from healthrules.engine import evaluator as evaluator_module
from healthrules.engine.aggregate import EventsPass, collect_passes
from healthrules.engine.evaluator import prepare
from healthrules.inputs import accounts_at
from healthrules.query_flags import EVENTS_QUERY_FLAGS
from test_source_joins import _cases
from test_sources import AS_OF, _roadmap


def _queries(events: dict[str, pl.DataFrame | pl.LazyFrame], accounts: pl.DataFrame,
             ) -> tuple[list[pl.LazyFrame], str]:
    """The evaluation's streaming passes of ``events`` at ``AS_OF`` (as
    ``Evaluator.aggregates`` builds them for frames of unknown size)."""
    plan, clock, frames, acc = prepare(_roadmap(), events, accounts, AS_OF)
    acc = accounts_at(acc, clock, plan.account_key).frame
    passes = [EventsPass(plan, clock, acc, source=name, optimistic=True)
              for name in plan.sources]
    return [p.query(frames[p.source], shared=p.streams_shared(), folded=True)
            for p in passes], plan.account_key


def _same_frames(got: list[pl.DataFrame], want: list[pl.DataFrame]) -> None:
    """Equal frames, rows in any order; the absolute sums (a data check, only compared
    with a bound: their last bit depends on the order polars' threads add the values in)
    within 1e-12 relative, every other column exactly."""
    assert len(got) == len(want)
    for a, b in zip(got, want, strict=True):
        assert a.columns == b.columns and a.schema == b.schema
        key = a.columns[0]
        a, b = a.sort(key, nulls_last=True), b.sort(key, nulls_last=True)
        checks = [c for c in a.columns if c.startswith("__abs__")]
        assert_frame_equal(a.drop(checks), b.drop(checks))
        if checks:
            assert_frame_equal(a.select(checks), b.select(checks), check_exact=False,
                               rel_tol=1e-12, abs_tol=0.0)


@pytest.mark.parametrize("case", list(_cases()))
def test_passes_collected_apart_equal_one_collect_all(case: str) -> None:
    events, accounts = _cases()[case]
    queries, _ = _queries(dict(events), accounts)
    assert len(queries) == 3
    want = pl.collect_all(queries, optimizations=EVENTS_QUERY_FLAGS, engine="streaming")
    _same_frames(collect_passes(queries), want)


def test_one_pass_alone() -> None:
    events, accounts = _cases()["first holds every account"]
    queries, _ = _queries(dict(events), accounts)
    want = queries[1].collect(optimizations=EVENTS_QUERY_FLAGS, engine="streaming")
    _same_frames(collect_passes(queries[1:2]), [want])


def _scans(tmp_path: Path, n: int = 6_000) -> tuple[dict[str, pl.LazyFrame], pl.LazyFrame]:
    """Parquet scans of the three sources of ``_roadmap``: ``n`` usage events over 200
    accounts and 60 days, ``n // 4`` tickets, ``n // 10`` survey answers (a few null
    values, a ticket of an account the accounts do not have)."""
    accounts = [f"acc{i:03d}" for i in range(200)]
    start = dt.datetime(2026, 5, 2)
    usage = pl.DataFrame({
        "account_id": [accounts[(i * 7) % 200] for i in range(n)],
        "event": ["login" if i % 3 else "export" for i in range(n)],
        "timestamp": [start + dt.timedelta(minutes=13 * i) for i in range(n)],
    }).with_columns(pl.col("timestamp").dt.replace_time_zone("Europe/Paris"))
    m = n // 4
    tickets = pl.DataFrame({
        "customer": [accounts[(i * 11) % 200] if i % 97 else "ghost" for i in range(m)],
        "kind": ["opened" if i % 2 else "closed" for i in range(m)],
        "opened_at": [start + dt.timedelta(minutes=53 * i) for i in range(m)],
        "severity": [None if i % 17 == 0 else i % 5 for i in range(m)],
    }).with_columns(pl.col("opened_at").dt.replace_time_zone("UTC").dt.cast_time_unit("ms"))
    k = n // 10
    surveys = pl.DataFrame({
        "account_id": [accounts[(i * 13) % 200] for i in range(k)],
        "respondent": [f"u{i % 37}" for i in range(k)],
        "answered_on": [start.date() + dt.timedelta(days=i % 60) for i in range(k)],
        "nps": [None if i % 23 == 0 else i % 11 for i in range(k)],
    })
    scans: dict[str, pl.LazyFrame] = {}
    for name, frame in (("usage", usage), ("tickets", tickets), ("surveys", surveys)):
        path = tmp_path / f"{name}.parquet"
        frame.write_parquet(path, row_group_size=500)
        scans[name] = pl.scan_parquet(path)
    acc_path = tmp_path / "accounts.parquet"
    pl.DataFrame({"account_id": accounts,
                  "plan": ["pro" if i % 2 else "basic" for i in range(200)]}
                 ).write_parquet(acc_path)
    return scans, pl.scan_parquet(acc_path)


def _evaluation_frames(result: Any) -> dict[str, pl.DataFrame]:
    return {name: getattr(result, name)
            for name in ("indicators", "stages", "scores", "actions", "conditions")}


def test_an_evaluation_of_three_scans_is_the_one_collect_alls(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Three Parquet scans (sizes unknown: the streaming passes): each pass is its own
    query on its own thread, and the evaluation (every frame, every counter) is the one
    the passes collected by one ``collect_all`` give."""
    scans, accounts = _scans(tmp_path)
    plan = hr.compile(_roadmap())
    seen: list[int] = []

    def recording(queries: list[pl.LazyFrame]) -> list[pl.DataFrame]:
        seen.append(len(queries))
        return collect_passes(queries)

    monkeypatch.setattr(evaluator_module, "collect_passes", recording)
    got = hr.evaluate(plan, scans, accounts, AS_OF)
    assert seen == [3]

    def together(queries: list[pl.LazyFrame]) -> list[pl.DataFrame]:
        return pl.collect_all(queries, optimizations=EVENTS_QUERY_FLAGS, engine="streaming")

    monkeypatch.setattr(evaluator_module, "collect_passes", together)
    want = hr.evaluate(plan, scans, accounts, AS_OF)
    assert got.diagnostics == want.diagnostics
    assert got.diagnostics["tickets:unknown_accounts"] == 1
    assert got.indicators.height == 200
    expected = _evaluation_frames(want)
    for name, frame in _evaluation_frames(got).items():
        assert_frame_equal(frame, expected[name])


def test_the_first_failing_sources_error_is_raised() -> None:
    """A pass that fails raises on the calling thread, whichever thread ran it; with two
    failing, the first in source order (the other passes still run to their end)."""
    ok = pl.LazyFrame({"k": ["a", "b"], "x": [1, 2]}).group_by("k").agg(pl.col("x").sum())

    def failing(value: int) -> pl.LazyFrame:  # (an overflow of a strict cast)
        return pl.LazyFrame({"k": ["a"], "x": [value]}).select(
            pl.col("k"), pl.col("x").cast(pl.Int8, strict=True))

    with pytest.raises(pl.exceptions.InvalidOperationError, match="1000"):
        collect_passes([ok, failing(1000), failing(2000)])
    with pytest.raises(pl.exceptions.InvalidOperationError, match="3000"):
        collect_passes([failing(3000), ok, failing(2000)])
    with pytest.raises(pl.exceptions.InvalidOperationError, match="2000"):
        collect_passes([ok, ok, failing(2000)])
    assert [f.height for f in collect_passes([ok, ok])] == [2, 2]
