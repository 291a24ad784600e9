"""Test-suite settings: hypothesis runs derandomised, so CI is deterministic.

The ``ci`` profile (the default) draws the same examples on every run and keeps no example
database; set ``HYPOTHESIS_PROFILE=explore`` to draw new random examples while developing.
Each test's own ``@settings`` (its number of examples) applies on top of the profile.

Under the ``ci`` profile, collection refuses a property test whose own settings undo the
profile (``derandomize``, no database, no deadline, no ``too_slow`` health check) or that
pins a ``@seed``: every ``@given`` must draw the same examples in every run
(docs/testing.md, "Deterministic property tests").

``HEALTHRULES_RECORD_EXAMPLES=<file>`` records every example hypothesis runs (the test, its
status and the example's text) as JSON lines, to compare the examples of two runs
(``tests/test_determinism.py`` does, under two hash seeds).
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, is_hypothesis_test, settings

settings.register_profile(
    "ci", derandomize=True, database=None, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("explore", deadline=None, print_blob=True)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
settings.load_profile(PROFILE)


def _pin_local_constants() -> None:
    """Draw no constants from the project's source (hypothesis 6.131+), under ``ci``.

    Hypothesis mixes into its draws numbers and strings it reads from the source of the
    project's modules that are imported at the time (``sys.modules``). That pool depends on
    which tests ran before and which modules they imported (a file run alone, ``-k``, the
    whole suite, a lazy import): the same derandomised test then draws different examples.
    The pool is pinned empty here; the strategies draw their boundary values themselves.
    """
    try:
        from hypothesis.internal.conjecture import providers
        from hypothesis.internal.constants_ast import Constants
    except ImportError:  # an older hypothesis: no local constants
        return
    if hasattr(providers, "_get_local_constants"):
        pinned = Constants()
        providers._get_local_constants = lambda: pinned


if PROFILE == "ci":
    _pin_local_constants()


def nondeterministic_settings(test: Any) -> list[str]:
    """What makes a ``@given`` test draw different examples from run to run (or fail on
    timing) although the ``ci`` profile is loaded; empty for a deterministic test."""
    if not is_hypothesis_test(test):
        return []
    own: settings = test._hypothesis_internal_use_settings
    problems = []
    if not own.derandomize:
        problems.append("derandomize=False")
    if own.database is not None:
        problems.append(f"database={own.database!r}")
    if own.deadline is not None:
        problems.append(f"deadline={own.deadline}")
    if HealthCheck.too_slow not in own.suppress_health_check:  # a timing, like a deadline
        problems.append("the too_slow health check")
    if getattr(test, "_hypothesis_internal_use_seed", None) is not None:
        problems.append("a @seed")
    return problems


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if PROFILE != "ci":
        return
    bad = [f"{item.nodeid}: {', '.join(found)}" for item in items
           if (found := nondeterministic_settings(getattr(item, "obj", None)))]
    if bad:
        raise pytest.UsageError(
            "property tests whose settings undo the deterministic 'ci' profile "
            "(set max_examples only, or build settings after tests/conftest.py loads the "
            "profile):\n  " + "\n  ".join(bad))


def _record_examples(path: str) -> None:
    from hypothesis.internal.observability import add_observability_callback

    out = open(path, "a", encoding="utf-8")

    def record(observation: Any, _thread: int | None = None) -> None:
        if getattr(observation, "type", None) == "test_case":
            # the pytest item (a parametrised one too) when pytest runs the test
            current = os.environ.get("PYTEST_CURRENT_TEST", "").split(" ")[0]
            out.write(json.dumps({"test": current or observation.property,
                                  "status": observation.status,
                                  "example": observation.representation}) + "\n")
            out.flush()

    add_observability_callback(record, all_threads=True)


if os.environ.get("HEALTHRULES_RECORD_EXAMPLES"):
    _record_examples(os.environ["HEALTHRULES_RECORD_EXAMPLES"])
