"""Writing result frames: formats, atomic replacement, manifest."""

from __future__ import annotations

import datetime as dt
import json
import math
import tempfile
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from healthrules.errors import EvaluationError
from healthrules.output import atomic_write, write_frames

FRAMES = {
    "scores": pl.DataFrame({"account_id": ["a", "b"], "score": [50.0, None]}),
    "actions": pl.DataFrame({
        "account_id": ["a"],
        "evidence": [[{"name": "x", "value": "1"}]],
    }),
}


@pytest.mark.parametrize("fmt", ["parquet", "csv", "ndjson"])
def test_every_format_round_trips(tmp_path: Path, fmt: str) -> None:
    files = write_frames(FRAMES, tmp_path, format=fmt)  # type: ignore[arg-type]
    assert [f.name for f in files] == [f"scores.{fmt}", f"actions.{fmt}", "manifest.json"]
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["files"]["scores"]["rows"] == 2
    reader = {"parquet": pl.read_parquet, "csv": pl.read_csv, "ndjson": pl.read_ndjson}[fmt]
    back = reader(tmp_path / f"scores.{fmt}")
    assert back["score"].to_list() == [50.0, None]
    actions = reader(tmp_path / f"actions.{fmt}")
    if fmt == "csv":
        assert json.loads(actions["evidence"][0]) == [{"name": "x", "value": "1"}]
    else:
        assert actions["evidence"].to_list() == [[{"name": "x", "value": "1"}]]
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_failed_write_leaves_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "f.txt"
    target.write_text("old")

    def boom(p: Path) -> None:
        p.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(target, boom)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="format must be"):
        write_frames(FRAMES, tmp_path, format="xlsx")  # type: ignore[arg-type]


def test_ndjson_refuses_what_json_cannot_hold_and_writes_nothing(tmp_path: Path) -> None:
    """JSON has no infinity: polars writes inf as null, which means "no value". A frame
    holding one is refused (naming the file, the column and an account) before anything is
    written; Parquet and CSV keep it."""
    write_frames(FRAMES, tmp_path, format="ndjson")  # type: ignore[arg-type]
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    frames = {**FRAMES, "indicators": pl.DataFrame(
        {"account_id": ["a", "b", "c"], "big": [1.0, float("inf"), -float("inf")]})}
    with pytest.raises(EvaluationError, match=r"indicators: column 'big' holds inf in 2 row"
                                              r"\(s\) \(account 'b'\)") as err:
        write_frames(frames, tmp_path, format="ndjson")  # type: ignore[arg-type]
    assert err.value.issues[0].location.file == str(tmp_path / "indicators.ndjson")
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    for fmt in ("parquet", "csv"):
        write_frames(frames, tmp_path / fmt, format=fmt)  # type: ignore[arg-type]
        path = tmp_path / fmt / f"indicators.{fmt}"
        back = pl.read_parquet(path) if fmt == "parquet" else pl.read_csv(
            path, schema=frames["indicators"].schema)
        assert_frame_equal(back, frames["indicators"], check_exact=True)


def test_a_failure_in_any_file_leaves_the_previous_set_and_its_manifest(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every file is written before any is renamed into place: a failure writing the second
    frame leaves the first frame's old file, not a mix of old and new files under the old
    manifest."""
    write_frames(FRAMES, tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    calls = []
    real = pl.DataFrame.write_parquet

    def second_fails(self: pl.DataFrame, file: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(file)
        if len(calls) == 2:
            Path(file).write_bytes(b"half")
            raise OSError(28, "No space left on device")
        return real(self, file, *args, **kwargs)

    monkeypatch.setattr(pl.DataFrame, "write_parquet", second_fails)
    new = {"scores": FRAMES["scores"].with_columns(pl.col("score") + 1),
           "actions": FRAMES["actions"]}
    with pytest.raises(OSError, match="No space"):
        write_frames(new, tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    monkeypatch.undo()
    write_frames(new, tmp_path)
    assert pl.read_parquet(tmp_path / "scores.parquet")["score"].to_list() == [51.0, None]
    assert not list(tmp_path.glob(".*.tmp"))


_FLOATS = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                    st.sampled_from([0.0, -0.0, 5e-324, 1.7976931348623157e308, 0.1]),
                    st.none())
_ZONES = st.sampled_from(["UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata",
                          "Australia/Lord_Howe"])


@settings(max_examples=60)
@given(data=st.data(), fmt=st.sampled_from(["parquet", "csv", "ndjson"]))
def test_what_is_written_reads_back_identical(data: st.DataObject, fmt: str) -> None:
    """Floats (-0.0, subnormals, the largest, inf and NaN where the format holds them),
    zoned datetimes around daylight-saving changes, dates, 64-bit ints, text with quotes,
    commas and new lines, nulls, and empty frames read back identical (CSV and NDJSON with
    the frame's schema)."""
    n = data.draw(st.integers(0, 6))
    finite = fmt == "ndjson"
    floats = _FLOATS.filter(lambda x: x is None or math.isfinite(x)) if finite else _FLOATS
    zone = data.draw(_ZONES)
    moments = st.datetimes(min_value=dt.datetime(1970, 1, 1), max_value=dt.datetime(2099, 12, 31))
    frame = pl.DataFrame({
        "account_id": data.draw(st.lists(st.text(max_size=5), min_size=n, max_size=n)),
        "f": data.draw(st.lists(floats, min_size=n, max_size=n)),
        "i": data.draw(st.lists(st.one_of(st.none(), st.integers(-2**63, 2**63 - 1)),
                                min_size=n, max_size=n)),
        "at": data.draw(st.lists(st.one_of(st.none(), moments), min_size=n, max_size=n)),
        "d": data.draw(st.lists(st.one_of(st.none(), st.dates()), min_size=n, max_size=n)),
        "b": data.draw(st.lists(st.one_of(st.none(), st.booleans()), min_size=n, max_size=n)),
    }, schema={"account_id": pl.String, "f": pl.Float64, "i": pl.Int64,
               "at": pl.Datetime("us"), "d": pl.Date, "b": pl.Boolean})
    frame = frame.with_columns(pl.col("at").dt.replace_time_zone("UTC")
                               .dt.convert_time_zone(zone))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        write_frames({"indicators": frame}, out, format=fmt)  # type: ignore[arg-type]
        path = out / f"indicators.{fmt}"
        if fmt == "parquet":
            back = pl.read_parquet(path)
        elif fmt == "csv":
            back = pl.read_csv(path, schema=frame.schema)
        else:
            back = pl.read_ndjson(path, schema=frame.schema)
        assert_frame_equal(back, frame, check_exact=True)
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["files"]["indicators"]["rows"] == n
