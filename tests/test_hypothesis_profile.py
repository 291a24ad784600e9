"""The suite's hypothesis profile is deterministic (see tests/conftest.py)."""

from __future__ import annotations

import os

from hypothesis import settings


def test_hypothesis_runs_derandomised_without_a_database() -> None:
    if os.environ.get("HYPOTHESIS_PROFILE", "ci") == "ci":
        assert settings.default.derandomize is True
        assert settings.default.database is None
        assert settings.default.deadline is None
