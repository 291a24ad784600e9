"""Probes: band edges are compared as doubles (``Band.lower`` / ``Band.upper``), so an int
edge that is not exactly a double was read as another number: ``lt: 9007199254740993`` put
an int value of 2**53 in the upper band. Such an edge is refused at load time, located; an
edge that is a double (any int up to 2**53, and larger ones that are doubles) is kept, and the
engine bands large ints and floats at it as the reference does.
"""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

import healthrules as hr
from healthrules.errors import RoadmapError
from healthrules.loader import load_text
from reference import evaluate_reference
from test_engine_vs_reference import compare
from test_roadmap_models import at, banded, pos

B = 2**53


@pytest.mark.parametrize("edge", [str(B + 1), str(2**63 - 1), "1" + "0" * 400])
def test_an_int_edge_that_is_no_double_is_refused_where_it_is(edge: str) -> None:
    text = banded(f"{{name: a, lt: {edge}}}", f"{{name: b, ge: {edge}}}")
    with pytest.raises(RoadmapError) as got:
        load_text(text)
    issues = got.value.errors()
    assert [i.code for i in issues] == ["bands_invalid", "bands_invalid"]
    assert "not exactly a double" in issues[0].message
    assert at(issues[0])[:2] == pos(text, edge)


@pytest.mark.parametrize("edge", [B, B + 2, 2**60 + 256, 2**62, 2**63])
def test_an_int_edge_that_is_a_double_is_kept(edge: int) -> None:
    assert float(edge) == edge
    roadmap = hr.Roadmap.model_validate({
        "id": "p", "goal": "g",
        "data": {"accounts": {"attributes": {"seats": "int", "r": "float"}}},
        "indicators": [
            {"id": "n", "family": "process", "aggregate": "count", "window": "7d"},
            {"id": "s", "family": "process", "expr": "seats",
             "bands": {"levels": [{"name": "lo", "lt": edge}, {"name": "hi", "ge": edge}]}},
            {"id": "f", "family": "process", "expr": "r",
             "bands": {"levels": [{"name": "lo", "le": edge}, {"name": "hi", "gt": edge}]}}],
        "stages": [{"id": "s"}]})
    events = pl.DataFrame({"account_id": ["a"], "user_id": ["u"], "event": ["x"],
                           "timestamp": [dt.datetime(2026, 6, 29)]})
    near = [min(edge + d, 2**63 - 1) for d in (-1, 0, 1)]
    accounts = pl.DataFrame({"account_id": ["a", "b", "c"], "seats": near,
                             "r": [float(v) for v in near]})
    got = hr.evaluate(roadmap, events, accounts, dt.date(2026, 6, 30))
    assert not compare(got, evaluate_reference(roadmap, events, accounts,
                                               dt.date(2026, 6, 30)), roadmap)
