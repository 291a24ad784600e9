"""Writing result frames: formats, atomic replacement, manifest."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

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
