"""Property tests draw the same examples in every run, whatever the hash seed.

``tests/hashseed_probe.py`` draws examples from every strategy the suite's property tests use
(the roadmaps, frames and expressions of the engine-vs-reference, differential, dated,
hierarchy, several-source, routing, partition, lint and generated-corners (packs, bands,
zones) tests, and the library's own :mod:`healthrules.testing.strategies`). It runs here
twice, in two processes with different ``PYTHONHASHSEED`` values (the CI default is a random
one per process), the second drawing the strategies in the other order, recording every
example; the records must be equal, strategy by strategy, example for example. A strategy
that pairs draws with the members of a set of strings (the weights of
``score.weights.families`` did, until the engine-vs-reference test drew different roadmaps
in one CI run out of three) fails this.

So does a strategy whose *labels* depend on where objects happen to lie in memory.
Hypothesis labels a ``sampled_from`` / ``just`` strategy by the hash of its elements, and
its generator copies one part of an example over another part of the same label (the
"mutator"); a NaN hashes by its identity, so ``st.just(float("nan"))``, built anew for each
event row of ``test_engine_vs_reference.data``, gave rows the same label or not depending on
whether a freed NaN's address was reused. The generated-corners strategies (which draw that
data) drew one example differently when another strategy had run before them in the process
(two of three full probe runs; the same strategy run twice in one process too). The rows now
share one NaN object (``math.nan``), and the second run's other order finds such a
dependence on what ran before.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from hypothesis import given, seed, settings
from hypothesis import strategies as st

from conftest import nondeterministic_settings
from hashseed_probe import EXAMPLES_EACH, STRATEGIES

TESTS = Path(__file__).resolve().parent
SEEDS = ("0", "4242")
# modules none of the probed strategies imports: the second run loads them before drawing
MORE_IMPORTS = "healthrules.cli,healthrules.report"


def _records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_examples_do_not_depend_on_the_hash_seed(tmp_path: Path) -> None:
    runs = []
    for hash_seed in SEEDS:  # both processes at once: each is mostly drawing and printing
        out = tmp_path / f"seed{hash_seed}.jsonl"
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "HYPOTHESIS_PROFILE": "ci",
               "HEALTHRULES_RECORD_EXAMPLES": str(out),
               "HEALTHRULES_PROBE_IMPORTS": MORE_IMPORTS if hash_seed == SEEDS[1] else "",
               "HEALTHRULES_PROBE_REVERSED": "1" if hash_seed == SEEDS[1] else "",
               # the whole frames in the examples' text, not the first and last rows
               "POLARS_FMT_MAX_ROWS": "-1", "POLARS_FMT_MAX_COLS": "-1",
               "POLARS_FMT_STR_LEN": "1000"}
        proc = subprocess.Popen(
            [sys.executable, "-m", "pytest", str(TESTS / "hashseed_probe.py"), "-q",
             "-p", "no:cacheprovider", "-p", "no:randomly"],
            cwd=TESTS.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True)
        runs.append((hash_seed, out, proc))
    recorded = []
    for hash_seed, out, proc in runs:
        output, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0, f"PYTHONHASHSEED={hash_seed}:\n{output[-3000:]}"
        recorded.append(_records(out))
    # the second run drew the strategies in the other order: compared strategy by strategy
    first, second = (sorted(r, key=lambda e: e["test"]) for r in recorded)  # (stable)
    per_test = Counter(r["test"].rsplit("[", 1)[-1].rstrip("]") for r in first)
    assert set(per_test) == set(STRATEGIES), per_test
    assert all(n >= EXAMPLES_EACH for n in per_test.values()), per_test
    assert len(first) == len(second)
    for a, b in zip(first, second, strict=True):
        assert a == b, (f"{a['test']} drew a different example under PYTHONHASHSEED="
                        f"{SEEDS[1]} (importing {MORE_IMPORTS} first, the strategies in the "
                        f"other order) than under {SEEDS[0]}:\n"
                        f"{_first_difference(a['example'], b['example'])}")


def _first_difference(a: str, b: str) -> str:
    at = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y),
              min(len(a), len(b)))
    return f"...{a[max(0, at - 800):at + 300]}\n--- the other run ---\n" \
           f"...{b[max(0, at - 800):at + 300]}"


def test_settings_that_undo_the_ci_profile_are_found() -> None:
    """The collection check of tests/conftest.py: a test's own settings may change the
    number of examples, not the profile's determinism."""

    @settings(max_examples=5)
    @given(st.integers())
    def fine(x: int) -> None:
        pass

    @settings(derandomize=False, database=None)
    @given(st.integers())
    def random_again(x: int) -> None:
        pass

    @settings(deadline=200)
    @given(st.integers())
    def timed(x: int) -> None:
        pass

    @settings(suppress_health_check=[])
    @given(st.integers())
    def slow_checked(x: int) -> None:
        pass

    @seed(7)
    @given(st.integers())
    def pinned(x: int) -> None:
        pass

    assert nondeterministic_settings(fine) == []
    assert nondeterministic_settings(random_again) == ["derandomize=False"]
    assert nondeterministic_settings(timed) == ["deadline=0:00:00.200000"]
    assert nondeterministic_settings(pinned) == ["a @seed"]
    assert nondeterministic_settings(slow_checked) == ["the too_slow health check"]
    assert nondeterministic_settings(test_settings_that_undo_the_ci_profile_are_found) == []
