"""Test-suite settings: hypothesis runs derandomised, so CI is deterministic.

The ``ci`` profile (the default) draws the same examples on every run and keeps no example
database; set ``HYPOTHESIS_PROFILE=explore`` to draw new random examples while developing.
Each test's own ``@settings`` (its number of examples) applies on top of the profile.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", derandomize=True, database=None, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("explore", deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
