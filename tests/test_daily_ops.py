"""Stale data, missed days and which rules produced a run: the newest event is reported and
checked against a limit, gaps are reported, and every run records the hashes of its rule
files and says when they changed."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import polars as pl
import pytest

import healthrules as hr
from healthrules.cli import main
from healthrules.history import StateStore, run
from healthrules.history.daily import StaleDataError, provenance, rules_diff
from test_cli_contract import ROADMAP
from test_store import ACCOUNTS, VALUES, _events, _roadmap, day


def test_the_newest_event_is_reported_and_checked(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    events = _events(VALUES)  # events up to day(6) 12:00
    first = run(_roadmap(), path, events, ACCOUNTS, day(6))
    assert first.newest_event == dt.datetime.combine(day(6), dt.time(12))
    assert first.data_age == dt.timedelta(hours=12)
    assert "newest event 2026-03-06 12:00 (12 hours old)" in first.summary()
    stale = r"4 days old at the end of the run date 2026-03-10; the limit is 2d"
    with pytest.raises(StaleDataError, match=stale) as info:
        run(_roadmap(), path, events, ACCOUNTS, day(10), max_staleness="2d")
    assert info.value.issues[0].code == "stale_data"
    with StateStore(path) as store:  # refused before anything was written
        assert store.last_run() == day(6)
    late = run(_roadmap(), path, events, ACCOUNTS, day(8), max_staleness=3)
    assert late.data_age == dt.timedelta(days=2, hours=12)
    with StateStore(path) as store:
        assert store.runs()["newest_event"].to_list() == ["2026-03-06T12:00:00"] * 2


def test_the_roadmap_sets_the_limit(tmp_path: Path) -> None:
    doc = _roadmap().model_dump(mode="json", by_alias=True)
    doc["data"]["events"]["max_staleness"] = "1d"
    roadmap = hr.Roadmap.model_validate(doc)
    with pytest.raises(StaleDataError, match=r"data\.events\.max_staleness of roadmap 'lc'"):
        run(roadmap, tmp_path / "s.db", _events(VALUES), ACCOUNTS, day(8))
    with pytest.raises(StaleDataError, match="36 hours old"):
        run(roadmap, tmp_path / "s.db", _events(VALUES), ACCOUNTS, day(7))
    assert run(roadmap, tmp_path / "s.db", _events(VALUES), ACCOUNTS, day(6)).previous is None
    with pytest.raises(ValueError, match="duration"):
        hr.Roadmap.model_validate({**doc, "data": {**doc["data"], "events": {
            **doc["data"]["events"], "max_staleness": "0d"}}})


def test_a_skipped_day_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    run(_roadmap(), path, _events(VALUES), ACCOUNTS, day(2))
    result = run(_roadmap(), path, _events(VALUES), ACCOUNTS, day(5))
    assert result.previous == day(2) and result.skipped == (day(3), day(4))
    text = result.summary()
    assert "gap: no run on 2026-03-03..2026-03-04 (2 days since the run of 2026-03-02)" in text
    assert "judged at run dates only" in text and "escalate_after" in text
    assert run(_roadmap(), path, _events(VALUES), ACCOUNTS, day(6)).skipped == ()
    with StateStore(path) as store:
        assert store.runs()["skipped"].to_list() == [0, 2, 0]


def test_every_run_records_its_rules(tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    lib = tmp_path / "lib.yaml"
    lib.write_text(json.dumps({"kind": "library", "id": "extra", "indicators": [
        {"id": "y", "family": "process", "aggregate": "max", "of": "x", "window": "2d"}]}))
    doc = json.loads(json.dumps(ROADMAP))
    doc["imports"] = [{"path": "lib.yaml"}]
    roadmap = tmp_path / "roadmap.yaml"
    roadmap.write_text(json.dumps(doc))
    frames = tmp_path / "events.parquet", tmp_path / "accounts.parquet"
    _events(VALUES).write_parquet(frames[0])
    ACCOUNTS.write_parquet(frames[1])
    state, out = tmp_path / "s.db", tmp_path / "out"

    def cli(as_of: dt.date, *extra: str) -> int:
        return main(["run", str(roadmap), "--state", str(state), "--events", str(frames[0]),
                     "--accounts", str(frames[1]), "--as-of", str(as_of), *extra])

    assert cli(day(2), "--out", str(out)) == 0
    sha = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (roadmap, lib)}
    manifest = json.loads((out / "manifest.json").read_text())
    rules = manifest["rules"]
    assert {Path(k).name: v for k, v in rules["files"].items()} == sha
    assert rules["healthrules_version"] == hr.__version__
    assert rules["actions"]["lc/fix"]["when"] == "x < 3"
    with StateStore(state) as store:
        runs = store.runs()
        assert runs["rules_hash"].to_list() == [rules["rules_hash"]]
        rows = store.actions(provenance=True)
        assert rows.height and set(rows["rules_hash"]) == {rules["rules_hash"]}
        assert set(store.changes()["rules_hash"]) == {rules["rules_hash"]}
    # the same rules: nothing said; changed rules: the summary and the feed say what changed
    assert cli(day(3)) == 0
    assert "rules changed" not in capsys.readouterr().out
    doc["actions"][0]["when"] = "x < 4"
    doc["actions"].append({"id": "new", "kind": "positive", "when": "x > 4", "do": "ok"})
    roadmap.write_text(json.dumps(doc))
    feed = tmp_path / "changes.ndjson"
    assert cli(day(4), "--ndjson", str(feed)) == 0
    out_text = capsys.readouterr().out
    assert ("rules changed since the previous run (files: roadmap.yaml): 1 action(s) added "
            "(lc/new); 1 condition(s) changed (lc/fix)") in out_text
    head = json.loads(feed.read_text().splitlines()[0])
    assert head["change"] == "rules_changed" and head["actions_added"] == ["lc/new"]
    assert head["conditions_changed"] == ["lc/fix"] and head["files"] == ["roadmap.yaml"]
    assert head["previous_rules_hash"] == rules["rules_hash"]
    # the rerun of the day compares with the run before it, not with itself
    assert cli(day(4), "--format", "json") == 0
    assert json.loads(capsys.readouterr().out)["rules_diff"]["actions_added"] == ["lc/new"]


def test_rules_diff_of_a_roadmap_in_memory() -> None:
    before = provenance(_roadmap()).to_dict()
    assert rules_diff(before, provenance(_roadmap())) is None
    changed = provenance(_roadmap(priority="high"))
    diff = rules_diff(before, changed)
    assert diff is not None and diff["settings_changed"] == ["lc/fix"]
    assert diff["conditions_changed"] == [] and list(changed.files) == ["<roadmap lc>"]
    assert rules_diff(None, changed) is None
    assert pl.__version__  # polars imported for the shared helpers
