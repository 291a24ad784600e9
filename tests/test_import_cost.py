"""`import healthrules` is light: heavy and optional dependencies load on first use."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import healthrules

ROOT = Path(__file__).resolve().parents[1]
HEAVY = "{'polars', 'pyspark', 'altair', 'hypothesis'}"


def _imported_after(code: str) -> list[str]:
    """The heavy top-level modules imported by running ``code`` in a fresh interpreter."""
    script = (f"{code}; import json, sys; "
              f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY})))")
    env = dict(os.environ)
    src = str(ROOT / "src")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True, env=env, cwd=ROOT)
    found: list[str] = json.loads(out.stdout)
    return found


def test_import_healthrules_imports_no_heavy_module() -> None:
    assert _imported_after("import healthrules") == []


def test_loading_a_roadmap_imports_no_engine() -> None:
    code = "import healthrules as hr; hr.load('rules/examples/full-format/roadmap.yaml')"
    assert _imported_after(code) == []


def test_the_public_names_are_all_there() -> None:
    from healthrules import (  # noqa: F401
        Evaluation,
        EvaluationError,
        HealthRulesError,
        HealthRulesWarning,
        InputDataError,
        Pack,
        Plan,
        Roadmap,
        RoadmapError,
        TriggeredAction,
        __version__,
        compile,
        evaluate,
        history,
        load,
    )

    assert set(healthrules.__all__) <= set(dir(healthrules))
    for name in healthrules.__all__:
        assert getattr(healthrules, name) is not None
    assert healthrules.Roadmap.__module__ == "healthrules.roadmap"
    assert callable(healthrules.history)
