"""The bundled example rule packs: where they are, inside the installed package or the repo."""

from __future__ import annotations

from pathlib import Path

__all__ = ["EXAMPLES", "example_path", "examples_dir"]

EXAMPLES = {
    "b2b-saas": "b2b-saas/roadmap.yaml",
    "b2b-saas-signals": "b2b-saas-signals/roadmap.yaml",
    "goal-tracks": "goal-tracks/pack.yaml",
    "trial-conversion": "trial-conversion/roadmap.yaml",
    "subscription-upsell": "subscription-upsell/roadmap.yaml",
}


def examples_dir() -> Path:
    """The folder of example packs (``healthrules/_examples`` in a wheel, else the repo's)."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "_examples", here.parent.parent / "rules" / "examples"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("the example rule packs are not installed with this copy")


def example_path(name: str) -> Path:
    """The main file of an example pack, e.g. ``example_path("b2b-saas")``."""
    if name not in EXAMPLES:
        raise KeyError(f"unknown example {name!r}; known: {', '.join(sorted(EXAMPLES))}")
    return examples_dir() / EXAMPLES[name]
