"""Draws examples from every strategy the suite's property tests use, and runs nothing else.

Not collected by a plain ``pytest`` run (the file name does not start with ``test_``):
``tests/test_determinism.py`` runs it in two processes with different ``PYTHONHASHSEED``
values, recording the examples (``HEALTHRULES_RECORD_EXAMPLES``, see tests/conftest.py), and
requires the two records to be the same, example for example. A strategy that iterates a set
or a dict of strings while it draws (``for f in some_set: draw(...)``), reads ``hash()``, the
clock or the environment, would draw different examples under the other seed. The second
run also imports more of healthrules first (``HEALTHRULES_PROBE_IMPORTS``): what a test draws
must not depend on which modules earlier tests happened to import either; and it draws the
strategies in the other order (``HEALTHRULES_PROBE_REVERSED``): what a strategy draws must
not depend on the objects earlier draws left in memory (a ``st.just(float("nan"))`` built
per draw did: see tests/test_determinism.py).
"""

from __future__ import annotations

import datetime as dt
import importlib
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import healthrules as hr
import test_dated_accounts
import test_differential
import test_engine_vs_reference
import test_generated_corners
import test_hierarchies
import test_lint_intervals
import test_partition_invariance
import test_routing
import test_sources_engine
from healthrules.testing import strategies as library

for _module in filter(None, os.environ.get("HEALTHRULES_PROBE_IMPORTS", "").split(",")):
    importlib.import_module(_module)

EXAMPLES = Path(__file__).resolve().parents[1] / "rules" / "examples"
AS_OF = dt.date(2026, 6, 30)
PACK = hr.load(EXAMPLES / "goal-tracks" / "pack.yaml")
SIGNALS = hr.load(EXAMPLES / "b2b-saas-signals" / "roadmap.yaml")

STRATEGIES: dict[str, st.SearchStrategy[Any]] = {
    "engine_vs_reference": test_engine_vs_reference.cases(),
    "differential": test_differential.cases(),
    "dated_accounts": test_dated_accounts.dated_cases(),
    "dated_keys": test_dated_accounts.keyed_frames(),
    "dated_hierarchies": test_hierarchies.dated_hierarchy_cases(),
    "several_sources": test_sources_engine.multi_source_cases(),
    "packs": test_generated_corners.pack_cases(),
    "packs_of_sources": test_generated_corners.pack_source_cases(),
    "packs_dated": test_generated_corners.pack_dated_cases(),
    "many_cut_bands": test_generated_corners.band_cases(),
    "zone_changes": test_generated_corners.zone_cases(),
    "routing": test_routing._scenarios(),
    "partition_invariance": test_partition_invariance.frames(),
    "lint_intervals": st.tuples(test_lint_intervals.conditions(), test_lint_intervals.rows),
    "library_roadmaps": library.roadmaps(max_sources=3).flatmap(
        lambda r: st.tuples(st.just(r), library.inputs_for(r, as_of=AS_OF))),
    "library_pack_inputs": library.inputs_for(PACK, as_of=AS_OF),
    "library_source_inputs": library.inputs_for(SIGNALS, as_of=AS_OF),
}
EXAMPLES_EACH = 12


ORDER = sorted(STRATEGIES, reverse=bool(os.environ.get("HEALTHRULES_PROBE_REVERSED")))
"""The second run draws in the other order: what a strategy draws must not depend on what
was drawn before it in the process either (see tests/test_determinism.py)."""


@pytest.mark.parametrize("name", ORDER)
def test_draw(name: str) -> None:
    @settings(max_examples=EXAMPLES_EACH, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(example=STRATEGIES[name])
    def draw(example: Any) -> None:
        pass

    draw()
