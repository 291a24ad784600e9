"""Probes: percentiles of finite values near the largest doubles (docs/semantics.md,
"Percentiles"). ``v[i] + (v[i+1] - v[i]) * f`` overflowed when the two values had opposite
signs beyond about 9e307: the median of -1e308 and 1e308 was ``inf`` (banded and scored as
the best band) in the engine and the reference alike. Such a difference is now taken by
halves, ``v[i] + d * f + d * f`` with ``d = v[i+1] * 0.5 - v[i] * 0.5``: finite, between the
two values, and the same bits in the engine, history, the reference and ``percentile_of``.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import polars as pl
import pytest

import healthrules as hr
from healthrules.aggregates import percentile_of, q_units
from healthrules.history import history
from healthrules.roadmap import Roadmap
from reference import evaluate_reference

AS_OF = dt.date(2026, 6, 30)
M = 1.7976931348623157e308
QS = [0.5, 0.25, 0.9, 0.000001, 0.999999, 0.333333]


def _roadmap() -> Roadmap:
    inds: list[dict[str, Any]] = [
        {"id": "med", "family": "process", "aggregate": "median", "of": "v", "window": "30d",
         "bands": {"levels": [{"name": "lo", "lt": 0}, {"name": "hi", "ge": 0}]}}]
    inds += [{"id": f"p{k}", "family": "process", "aggregate": "percentile", "of": "v",
              "q": q, "window": "30d"} for k, q in enumerate(QS)]
    return Roadmap.model_validate({"id": "p", "goal": "g",
                                   "data": {"events": {"values": {"v": "float"}}},
                                   "indicators": inds, "stages": [{"id": "s"}]})


@pytest.mark.parametrize("values", [[-M, M], [-1e308, 1e308], [-M, M, M], [-M, -M, M],
                                    [-1.7e308, 1.7e308, 0.0, 5.0], [-M, 1.0, M],
                                    [-9e307, 9e307], [-5e-324, M], [M, M], [1.0, 2.0, 4.0]])
def test_percentiles_near_the_largest_doubles_are_finite(values: list[float]) -> None:
    roadmap = _roadmap()
    n = len(values)
    events = pl.DataFrame({"account_id": ["a"] * n, "user_id": ["u"] * n, "event": ["x"] * n,
                           "timestamp": [dt.datetime(2026, 6, 20 + k) for k in range(n)],
                           "v": values})
    accounts = pl.DataFrame({"account_id": ["a"]})
    got = hr.evaluate(roadmap, events, accounts, AS_OF).indicators.to_dicts()[0]
    ref = evaluate_reference(roadmap, events, accounts, AS_OF).accounts["a"].indicators
    past = history(roadmap, events, accounts, AS_OF, AS_OF).at(AS_OF).indicators.to_dicts()[0]
    for k, q in [(None, 0.5), *enumerate(QS)]:
        name = "med" if k is None else f"p{k}"
        want = percentile_of(values, q_units(q))
        assert want is not None and math.isfinite(want)
        assert min(values) <= want <= max(values)
        for side in (got[name], ref[name], past[name]):
            assert side == want and math.copysign(1, side) == math.copysign(1, want), (
                name, side, want)
    assert percentile_of([-M, M], q_units(0.5)) == 0.0
