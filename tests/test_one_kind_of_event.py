"""A table with one kind of event needs no event-name column (data.events.event: null)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

import healthrules as hr

AS_OF = dt.date(2026, 6, 30)


def _roadmap(where: str | None = None) -> hr.Roadmap:
    indicator: dict[str, object] = {"id": "purchases_30d", "family": "outcome",
                                    "aggregate": "count", "window": "30d"}
    if where is not None:
        indicator["where"] = where
    return hr.Roadmap.model_validate({
        "id": "orders", "goal": "Customers buy every month",
        "data": {"events": {"event": None, "user": None, "values": {"amount": "float"}}},
        "indicators": [indicator,
                       {"id": "spend_30d", "family": "outcome", "aggregate": "sum",
                        "of": "amount", "window": "30d"}],
        "stages": [{"id": "active", "actions": [{
            "id": "lapsed", "kind": "challenge", "when": "purchases_30d == 0",
            "do": "No purchase in 30 days", "owner": "csm"}]}],
    })


def test_a_roadmap_without_event_names_evaluates_a_table_without_the_column() -> None:
    events = pl.DataFrame({
        "account_id": ["a", "a", "b"], "amount": [10.0, 5.5, 3.0],
        "timestamp": [dt.datetime(2026, 6, 20), dt.datetime(2026, 6, 29),
                      dt.datetime(2026, 4, 1)]})
    accounts = pl.DataFrame({"account_id": ["a", "b"]})
    result = hr.evaluate(_roadmap(), events, accounts, AS_OF)
    assert result.indicators.select("account_id", "purchases_30d", "spend_30d").rows() == [
        ("a", 2, 15.5), ("b", 0, 0.0)]
    assert result.actions["account_id"].to_list() == ["b"]
    assert result.diagnostics["events_null_event"] == 0


def test_reading_the_event_name_is_an_error_at_load() -> None:
    with pytest.raises(hr.RoadmapError) as info:
        hr.compile(_roadmap(where="event == 'purchase'"))
    assert "unknown name 'event'" in str(info.value)


def test_the_history_of_such_a_table(tmp_path: Path) -> None:
    from healthrules.history import history

    events = pl.DataFrame({
        "account_id": ["a", "a"], "amount": [1.0, 2.0],
        "timestamp": [dt.datetime(2026, 6, 1), dt.datetime(2026, 6, 20)]})
    h = history(_roadmap(), events, pl.DataFrame({"account_id": ["a"]}), "2026-06-07",
                "2026-06-21", every="1w")
    assert h.indicators["purchases_30d"].to_list() == [1, 1, 2]
