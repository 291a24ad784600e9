"""Fuzzing the loader: whatever the text, only RoadmapError comes out, every issue located."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from healthrules.errors import RoadmapError
from healthrules.loader import load_text
from healthrules.roadmap import IndicatorLibrary, Pack, Roadmap

EXAMPLE = Path(__file__).resolve().parent.parent / "rules" / "examples" / "full-format"
SEED = (EXAMPLE / "roadmap.yaml").read_text(encoding="utf-8")
SEED_LINES = SEED.splitlines(keepends=True)
LIBRARY = (EXAMPLE / "indicators.yaml").read_text(encoding="utf-8")

FUZZ = settings(
    max_examples=int(os.environ.get("HEALTHRULES_FUZZ_EXAMPLES", "80")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

KEYS = ["id", "kind", "goal", "stages", "indicators", "when", "do", "bands", "levels", "window",
        "score", "weights", "on", "yes", "<<", "from", "days", "ge", "lt", "expr", "actions"]
SCALARS = ["", "~", "null", "0", "-1", "1e400", ".nan", "yes", "on", "2026-01-01", "1:30",
           "'x'", '"x"', "[]", "{}", "[1, [2, {a: b}]]", "&a x", "*a", "!tag x", "!!int x",
           "| \n  text", "logins_30d.__class__", "x ** 99", "{name: a, lt: 5}", "%", "@", "`",
           "'unterminated", "\t", "\x00", "é", "日本", "\ud800"]


def _check(text: str) -> None:
    """Load ``text``; a model or a RoadmapError is fine, every issue has a file and a line."""
    try:
        model = load_text(text, source="fuzz.yaml", base_dir=EXAMPLE)
    except RoadmapError as exc:
        assert exc.issues
        for issue in exc.issues:
            assert issue.location.file, issue
            assert isinstance(issue.location.line, int) and issue.location.line >= 1, issue
            assert issue.location.column is None or issue.location.column >= 1, issue
            assert str(issue)
    else:
        assert isinstance(model, (Roadmap, Pack, IndicatorLibrary))


@st.composite
def mutated(draw: st.DrawFn) -> str:
    lines = list(SEED_LINES)
    for _ in range(draw(st.integers(1, 4))):
        if not lines:
            break
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["delete", "duplicate", "swap", "key", "value", "indent",
                                   "bytes", "truncate"]))
        if op == "delete":
            del lines[i]
        elif op == "duplicate":
            lines.insert(i, lines[i])
        elif op == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "key":
            indent = len(lines[i]) - len(lines[i].lstrip(" "))
            key = draw(st.sampled_from(KEYS) | st.text(min_size=1, max_size=8))
            lines.insert(i, " " * indent + f"{key}: {draw(st.sampled_from(SCALARS))}\n")
        elif op == "value":
            head, sep, _tail = lines[i].partition(": ")
            if sep:
                value = draw(st.sampled_from(SCALARS) | st.text(max_size=12))
                lines[i] = f"{head}: {value}\n"
        elif op == "indent":
            lines[i] = " " * draw(st.integers(0, 9)) + lines[i].lstrip(" ")
        elif op == "bytes":
            junk = draw(st.text(min_size=1, max_size=6))
            at = draw(st.integers(0, len(lines[i])))
            lines[i] = lines[i][:at] + junk + lines[i][at:]
        else:
            text = "".join(lines)
            return text[: draw(st.integers(0, len(text)))]
    return "".join(lines)


@FUZZ
@given(mutated())
def test_mutated_roadmaps_fail_cleanly(text: str) -> None:
    _check(text)


@FUZZ
@given(st.binary(max_size=300))
def test_random_bytes_fail_cleanly(data: bytes) -> None:
    _check(data.decode("utf-8", errors="surrogateescape"))


yaml_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True),
    st.text(max_size=20), st.sampled_from(SCALARS),
)
yaml_values = st.recursive(
    yaml_scalars,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), inner, max_size=5),
    max_leaves=25,
)


def _dump(value: object, indent: int = 0) -> str:
    pad = " " * indent
    if isinstance(value, dict):
        if not value:
            return "{}"
        return "".join(f"\n{pad}{_key(k)}: {_dump(v, indent + 2)}" for k, v in value.items())
    if isinstance(value, list):
        if not value:
            return "[]"
        return "".join(f"\n{pad}- {_dump(v, indent + 2).lstrip()}" for v in value)
    if isinstance(value, str):
        return value if value in SCALARS else repr(value)
    return str(value)


def _key(key: str) -> str:
    return key if key in KEYS else repr(key)


@FUZZ
@given(st.dictionaries(st.sampled_from(KEYS), yaml_values, max_size=8))
def test_random_yaml_fails_cleanly(doc: dict[str, object]) -> None:
    _check(_dump(doc).lstrip("\n") or "{}")


@FUZZ
@given(st.sampled_from(LIBRARY.splitlines(keepends=True)), st.text(max_size=10))
def test_mutated_library_fails_cleanly(line: str, junk: str) -> None:
    _check(LIBRARY.replace(line, junk + line, 1))


@pytest.mark.parametrize("n", [1, 50, 500])
def test_truncations_of_the_seed(n: int) -> None:
    _check(SEED[:n])
