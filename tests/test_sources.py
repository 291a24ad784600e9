"""Several event sources in one roadmap: the format, located errors, the input checks, the
one-pass-per-source reading, the command line, the sample tables and test files."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import healthrules as hr
from healthrules.cli import main
from healthrules.datasets import sample
from healthrules.engine import events_query, read_range
from healthrules.errors import InputDataError, RoadmapError
from healthrules.examples import example_path
from healthrules.loader import load_text
from healthrules.pack_contract import pack_issues
from healthrules.roadmap import EventColumns, Roadmap
from healthrules.testing import run as run_tests

AS_OF = dt.date(2026, 6, 30)

ROADMAP = """\
id: signals
goal: Customers use the product and are heard
data:
  events:
    usage:
      user: null
      timezone: Europe/Paris
    tickets:
      account: customer
      event: kind
      user: null
      timestamp: opened_at
      timezone: UTC
      values: {severity: int}
    surveys:
      event: null
      user: respondent
      timestamp: answered_on
      timezone: America/New_York
      values: {nps: int}
  accounts:
    attributes: {plan: str}
indicators:
  - {id: logins_7d, family: process, aggregate: count, where: "event == 'login'", window: 7d}
  - {id: tickets_30d, family: relationship, source: tickets, aggregate: count,
     where: "kind == 'opened'", window: 30d}
  - {id: worst_30d, family: relationship, source: tickets, aggregate: max, of: severity,
     window: 30d}
  - {id: last_ticket, family: relationship, source: tickets, aggregate: last_time}
  - {id: nps, family: outcome, source: surveys, aggregate: mean, of: nps, window: 90d}
stages:
  - id: operation
    actions:
      - {id: calls, kind: challenge, when: "tickets_30d >= 2 and logins_7d < 3",
         do: "{tickets_30d} tickets and {logins_7d} logins: call them (last {last_ticket})"}
"""


def _roadmap(text: str = ROADMAP) -> Roadmap:
    loaded = load_text(text, source="signals.yaml")
    assert isinstance(loaded, Roadmap)
    return loaded


def _frames() -> tuple[dict[str, pl.DataFrame], pl.DataFrame]:
    paris = "Europe/Paris"
    usage = pl.DataFrame({
        "account_id": ["a", "a", "b"], "event": ["login"] * 3,
        "timestamp": [dt.datetime(2026, 6, 29, 9), dt.datetime(2026, 6, 30, 23, 30),
                      dt.datetime(2026, 6, 20)]}).with_columns(
        pl.col("timestamp").dt.replace_time_zone(paris))
    tickets = pl.DataFrame({
        "customer": ["a", "a", "a", "ghost"], "kind": ["opened"] * 4,
        # 22:30 UTC on 30 June is 00:30 on 1 July in Paris: after as_of, never counted
        "opened_at": [dt.datetime(2026, 6, 10), dt.datetime(2026, 6, 29, 8),
                      dt.datetime(2026, 6, 30, 22, 30), dt.datetime(2026, 6, 11)],
        "severity": [2, 3, 4, 1]}).with_columns(
        pl.col("opened_at").dt.replace_time_zone("UTC").dt.cast_time_unit("ms"))
    surveys = pl.DataFrame({
        "account_id": ["a", "b", "b"], "respondent": ["u1", "u2", "u3"],
        "answered_on": [dt.date(2026, 6, 1), dt.date(2026, 5, 1), dt.date(2026, 1, 1)],
        "nps": [9, 3, 0]})
    accounts = pl.DataFrame({"account_id": ["a", "b"], "plan": ["pro", "basic"]})
    return {"usage": usage, "tickets": tickets, "surveys": surveys}, accounts


# --------------------------------------------------------------------------- the format


def test_named_sources_and_the_default() -> None:
    r = _roadmap()
    assert list(r.data.sources) == ["usage", "tickets", "surveys"]
    assert r.data.default_source == "usage" and r.data.named_sources
    assert r.data.sources["tickets"].timestamp == "opened_at"
    plan = hr.compile(r)
    assert plan.default_source == "usage" and plan.events.timezone == "Europe/Paris"
    assert [ind.id for _, _, ind in plan.source_indicators("tickets")] == [
        "tickets_30d", "worst_30d", "last_ticket"]


def test_one_frame_form_is_the_default_source_named_events() -> None:
    r = Roadmap.model_validate({"id": "d", "goal": "g", "stages": [{"id": "s"}],
                                "data": {"events": {"user": None, "values": {"x": "int"}}}})
    assert not r.data.named_sources and list(r.data.sources) == ["events"]
    assert isinstance(r.data.events, EventColumns)
    # the dump is unchanged: no `source:` key appears, existing files keep their meaning
    assert "source" not in json.dumps(r.model_dump(exclude_none=True))


def _issues(text: str) -> list[str]:
    with pytest.raises(RoadmapError) as exc:
        load_text(text, source="signals.yaml")
    return [str(i) for i in exc.value.issues]


def test_unknown_source_is_located_with_a_did_you_mean() -> None:
    text = ROADMAP.replace("source: tickets, aggregate: count", "source: tikets, aggregate: count")
    (issue,) = _issues(text)
    assert issue.startswith("signals.yaml:25:53:")
    assert "unknown event source 'tikets'" in issue and "indicators[1].source" in issue
    assert "did you mean 'tickets'?" in issue


def test_a_source_on_a_one_frame_roadmap_says_how_to_declare_sources() -> None:
    text = ("id: d\ngoal: g\nindicators:\n  - {id: n, family: process, aggregate: count, "
            "source: tickets}\nstages: [{id: s}]\n")
    (issue,) = _issues(text)
    assert "unknown event source 'tickets'" in issue
    assert "declare the sources as named entries of data.events" in issue


def test_a_mistyped_key_inside_a_source_is_located() -> None:
    text = ROADMAP.replace("      timestamp: opened_at\n", "      timestamp: opened_at\n"
                           "      acount: x\n")
    (issue,) = _issues(text)
    assert "unknown key 'acount'" in issue and "data.events.tickets.acount" in issue
    assert "did you mean 'account'?" in issue


def test_a_filter_reads_the_columns_of_its_own_source() -> None:
    text = ROADMAP.replace("where: \"kind == 'opened'\"", "where: \"event == 'opened'\"")
    (issue,) = _issues(text)
    assert "unknown name 'event'" in issue and "indicators[1].where" in issue


def test_a_value_column_of_another_source_is_refused() -> None:
    text = ROADMAP.replace("aggregate: max, of: severity", "aggregate: max, of: nps")
    (issue,) = _issues(text)
    assert "'nps' is not a numeric value column of source 'tickets'" in issue
    assert "data.events.tickets.values" in issue


def test_naive_and_zoned_sources_cannot_mix() -> None:
    text = ROADMAP.replace("      timezone: America/New_York\n", "")
    (issue,) = _issues(text)
    assert "event source 'surveys' has naive timestamps" in issue
    assert "data.events.surveys" in issue


def test_tracks_of_a_pack_must_agree_on_their_sources() -> None:
    first = _roadmap()
    other = ROADMAP.replace("id: signals", "id: other").replace(
        "      timestamp: opened_at\n", "      timestamp: created_at\n")
    second = load_text(other, source="other.yaml")
    assert isinstance(second, Roadmap)
    issues = pack_issues([first, second])
    assert [(i.location.file, i.location.path) for i in issues] == [
        ("other.yaml", "data.events.tickets")]
    assert "other columns for event source 'tickets'" in issues[0].message
    sources = first.data.sources
    third = Roadmap.model_validate({
        "id": "third", "goal": "g", "stages": [{"id": "s"}],
        "data": {"events": {"tickets": sources["tickets"].model_dump(),
                            "usage": sources["usage"].model_dump()},
                 "accounts": {"attributes": {"plan": "str"}}}})
    (issue,) = pack_issues([first, third])
    assert "default event source of roadmap 'third' is 'tickets'" in issue.message
    with pytest.raises(RoadmapError):
        hr.compile([first, third])


# --------------------------------------------------------------------------- evaluating


def test_each_indicator_reads_its_own_source() -> None:
    events, accounts = _frames()
    result = hr.evaluate(_roadmap(), events, accounts, AS_OF)
    rows = {r["account_id"]: r for r in result.indicators.to_dicts()}
    assert rows["a"]["logins_7d"] == 2  # 23:30 on 30 June in Paris is before the end
    assert rows["a"]["tickets_30d"] == 2 and rows["a"]["worst_30d"] == 3
    # a datetime of another source comes out on the evaluation clock (the default source's)
    assert rows["a"]["last_ticket"] == dt.datetime(2026, 6, 29, 10,
                                                   tzinfo=rows["a"]["last_ticket"].tzinfo)
    assert result.indicators.schema["last_ticket"] == pl.Datetime("us", "Europe/Paris")
    assert rows["b"]["tickets_30d"] == 0 and rows["b"]["nps"] == 3.0
    assert result.actions.select("account_id", "text").rows() == [
        ("a", "2 tickets and 2 logins: call them (last 2026-06-29 10:00:00)")]
    d = result.diagnostics
    assert d["tickets:events_read"] == 3 and d["tickets:events_unknown_account"] == 1
    # each source reads its own range: 7 days of usage, 90 days of surveys
    assert d["usage:events_read"] == 2 and d["surveys:events_read"] == 2
    assert d["events_read"] == 7 and d["events_unknown_account"] == 1


def test_a_single_frame_is_still_the_default_source() -> None:
    r = Roadmap.model_validate({
        "id": "d", "goal": "g", "data": {"events": {"usage": {"user": None}}},
        "indicators": [{"id": "n", "family": "process", "aggregate": "count"}],
        "stages": [{"id": "s"}]})
    events = pl.DataFrame({"account_id": ["a"], "event": ["x"],
                           "timestamp": [dt.datetime(2026, 6, 1)]})
    accounts = pl.DataFrame({"account_id": ["a"]})
    one = hr.evaluate(r, events, accounts, AS_OF)
    named = hr.evaluate(r, {"usage": events}, accounts, AS_OF)
    assert one.indicators.equals(named.indicators) and one.indicators["n"].to_list() == [1]


def test_missing_and_unknown_sources_are_input_errors() -> None:
    events, accounts = _frames()
    with pytest.raises(InputDataError) as exc:
        hr.evaluate(_roadmap(), events["usage"], accounts, AS_OF)
    text = str(exc.value)
    assert "no events frame for source 'tickets'" in text
    assert "a single frame is the default source 'usage'" in text
    wrong = {"usage": events["usage"], "tickts": events["tickets"], "surveys": events["surveys"]}
    with pytest.raises(InputDataError) as exc:
        hr.evaluate(_roadmap(), wrong, accounts, AS_OF)
    codes = sorted(i.code for i in exc.value.issues)
    assert codes == ["unknown_source", "unknown_source"]
    assert "did you mean 'tickets'?" in str(exc.value)


def test_data_checks_name_the_source_and_its_declaration() -> None:
    events, accounts = _frames()
    events["tickets"] = events["tickets"].rename({"severity": "severty"})
    events["surveys"] = events["surveys"].with_columns(pl.col("nps").cast(pl.String))
    with pytest.raises(InputDataError) as exc:
        hr.evaluate(_roadmap(), events, accounts, AS_OF)
    by_file = {(i.location.file, i.location.path): i for i in exc.value.issues}
    missing = by_file[("<events:tickets>", "severity")]
    assert missing.code == "missing_column"
    assert "events frame 'tickets' has no column 'severity'" in missing.message
    assert missing.hint == "did you mean 'severty'?"
    assert missing.related is not None
    assert missing.related.path == "data.events.tickets.values.severity"
    assert missing.related.line == 14
    wrong = by_file[("<events:surveys>", "nps")]
    assert wrong.code == "wrong_dtype" and "events frame 'surveys'" in wrong.message


def test_a_source_in_another_time_zone_than_declared() -> None:
    events, accounts = _frames()
    events["tickets"] = events["tickets"].with_columns(
        pl.col("opened_at").dt.convert_time_zone("Asia/Tokyo"))
    with pytest.raises(InputDataError) as exc:
        hr.evaluate(_roadmap(), events, accounts, AS_OF)
    (issue,) = exc.value.issues
    assert issue.code == "timezone_mismatch"
    assert "data.events.tickets.timezone" in issue.message


def test_a_source_key_of_another_kind_is_refused() -> None:
    events, accounts = _frames()
    events["tickets"] = events["tickets"].with_columns(pl.lit(1).alias("customer"))
    with pytest.raises(InputDataError) as exc:
        hr.evaluate(_roadmap(), events, accounts, AS_OF)
    assert "the account key is Int32 in events frame 'tickets' but String" in str(exc.value)


def test_each_source_is_its_own_pass_with_its_own_range_and_columns() -> None:
    events, accounts = _frames()
    r = _roadmap()
    plan = hr.compile(r)
    tickets = events_query(plan, events, accounts, AS_OF, event_source="tickets")
    text = tickets.explain()
    # only the ticket columns read, the range on the source's own timestamps (UTC, ms),
    # which reaches the scan
    assert "customer" in text and "opened_at" in text and "respondent" not in text
    assert "FILTER" in text
    start, end = read_range(plan, events, accounts, AS_OF, event_source="surveys")
    assert start is not None and (end - start).days == 90
    assert read_range(plan, events, accounts, AS_OF, event_source="tickets")[0] is None
    with pytest.raises(ValueError, match="unknown event source 'nope'"):
        events_query(plan, events, accounts, AS_OF, event_source="nope")


def test_each_source_file_is_scanned_once(tmp_path: Path) -> None:
    """One evaluation reads each source once, with only its columns (counted on the query
    plans polars runs)."""
    events, accounts = _frames()
    paths = {}
    for name, frame in events.items():
        paths[name] = tmp_path / f"{name}.parquet"
        frame.write_parquet(paths[name])
    scans = {name: pl.scan_parquet(p) for name, p in paths.items()}
    plan = hr.compile(_roadmap())
    for name in scans:
        text = events_query(plan, scans, accounts, AS_OF, event_source=name).explain()
        assert text.count("Parquet SCAN") == 1, text
        assert str(paths[name]) in text
        assert not any(str(p) in text for other, p in paths.items() if other != name)
    direct = hr.evaluate(plan, events, accounts, AS_OF)
    scanned = hr.evaluate(plan, scans, accounts, AS_OF)
    assert direct.indicators.equals(scanned.indicators)


def test_partition_column_per_source(tmp_path: Path) -> None:
    events, accounts = _frames()
    usage = events["usage"].with_columns(pl.col("timestamp").dt.date().alias("date"))
    usage.write_parquet(tmp_path / "usage", partition_by="date")
    folder = pl.scan_parquet(tmp_path / "usage" / "**" / "*.parquet", hive_partitioning=True)
    scans: dict[str, Any] = {**events, "usage": folder}
    got = hr.evaluate(_roadmap(), scans, accounts, AS_OF, partition_column={"usage": "date"})
    want = hr.evaluate(_roadmap(), events, accounts, AS_OF)
    assert got.indicators.equals(want.indicators)
    with pytest.raises(InputDataError, match="no partition column 'date'"):
        hr.evaluate(_roadmap(), scans, accounts, AS_OF, partition_column="date")
    with pytest.raises(InputDataError, match="unknown event source 'usge'"):
        hr.evaluate(_roadmap(), scans, accounts, AS_OF, partition_column={"usge": "date"})


# --------------------------------------------------------------------------- the sample


def test_the_sample_has_tickets_and_surveys_of_its_accounts() -> None:
    s = sample(60, seed=3)
    assert s.tickets.columns == ["account_id", "ticket_id", "status", "at", "priority",
                                 "handling_minutes"]
    assert str(s.tickets.schema["at"]) == "Datetime(time_unit='ms', time_zone='UTC')"
    assert set(s.tickets["status"]) <= {"opened", "resolved"}
    assert s.tickets["priority"].is_between(1, 4).all()
    # a resolved row belongs to a ticket opened before it, resolved once
    resolved = s.tickets.filter(pl.col("status") == "resolved")
    assert resolved["ticket_id"].is_unique().all()
    opened = s.tickets.filter(pl.col("status") == "opened").select("ticket_id", opened="at")
    joined = resolved.join(opened, on="ticket_id")
    assert joined.height == resolved.height and (joined["at"] >= joined["opened"]).all()
    assert resolved["handling_minutes"].null_count() == 0
    assert opened.height == s.events.filter(pl.col("event") == "support_ticket").height
    assert s.surveys.columns == ["account_id", "respondent", "answered_on", "nps"]
    assert s.surveys.schema["answered_on"] == pl.Date
    assert s.surveys["nps"].is_between(0, 10).all()
    assert set(s.surveys["account_id"]) <= set(s.accounts["account_id"])
    again = sample(60, seed=3)
    assert again.tickets.equals(s.tickets) and again.surveys.equals(s.surveys)
    assert set(s.sources) == {"usage", "tickets", "surveys"}


# --------------------------------------------------------------------------- command line


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("signals")
    s = sample(40)
    s.events.write_parquet(folder / "usage.parquet")
    s.tickets.write_csv(folder / "tickets.csv")
    s.surveys.write_ndjson(folder / "surveys.ndjson")
    s.accounts.write_parquet(folder / "accounts.parquet")
    s.events.write_parquet(folder / "date=2026.parquet")  # a path holding an equals sign
    return {"usage": folder / "usage.parquet", "tickets": folder / "tickets.csv",
            "surveys": folder / "surveys.ndjson", "accounts": folder / "accounts.parquet",
            "odd": folder / "date=2026.parquet"}


def _evaluate_args(files: dict[str, Path], out: Path, *events: str) -> list[str]:
    args = ["evaluate", str(example_path("b2b-saas-signals"))]
    for e in events:
        args += ["--events", e]
    return [*args, "--accounts", str(files["accounts"]), "--as-of", "2026-06-30",
            "--out", str(out)]


def test_cli_reads_one_file_per_source(files: dict[str, Path], tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    code = main(_evaluate_args(files, out, f"usage={files['usage']}",
                               f"tickets={files['tickets']}", f"surveys={files['surveys']}"))
    text = capsys.readouterr()
    assert code == 0, text.err
    assert "40 accounts" in text.out
    s = sample(40)
    want = hr.evaluate(hr.load(example_path("b2b-saas-signals")), s.sources, s.accounts,
                       s.as_of)
    got = pl.read_parquet(out / "indicators.parquet")
    assert got.sort("account_id").equals(want.indicators.sort("account_id"))
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["diagnostics"]["tickets:events_read"] == want.diagnostics[
        "tickets:events_read"] > 0


@pytest.mark.parametrize(("events", "message"), [
    (["tickets={tickets}"], "no --events for event sources usage, surveys"),
    (["{usage}"], "the roadmap reads 3 event sources: give one --events NAME=PATH for each"),
    (["usage={usage}", "tikets={tickets}", "surveys={surveys}"],
     "the roadmap has no event source 'tikets'"),
    (["usage={usage}", "usage={usage}"], "--events names source 'usage' twice"),
    (["{usage}", "tickets={tickets}"], "give one --events PATH"),
])
def test_cli_usage_errors_name_the_sources(files: dict[str, Path], tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str],
                                           events: list[str], message: str) -> None:
    args = [e.format(**{k: str(v) for k, v in files.items()}) for e in events]
    assert main(_evaluate_args(files, tmp_path / "o", *args)) == 2
    err = capsys.readouterr().err
    assert message in err, err
    if "tikets" in message:
        assert "did you mean 'tickets'?" in err


def test_cli_plain_events_still_work_and_paths_may_hold_equals(
        files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["evaluate", str(example_path("b2b-saas")), "--events", str(files["odd"]),
            "--accounts", str(files["accounts"]), "--as-of", "2026-06-30",
            "--out", str(tmp_path / "o")]
    assert main(args) == 0, capsys.readouterr().err


def test_cli_data_problem_in_a_source_names_it(files: dict[str, Path], tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "tickets.csv"
    bad.write_text("account_id,ticket_id,state,at,priority,handling_minutes\n")
    code = main(_evaluate_args(files, tmp_path / "o", f"usage={files['usage']}",
                               f"tickets={bad}", f"surveys={files['surveys']}"))
    err = capsys.readouterr().err
    assert code == 1
    assert "<events:tickets>" in err and "events frame 'tickets' has no column 'status'" in err


def test_cli_report_with_history_reads_one_file_per_source(
        files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report.html"
    args = ["report", str(example_path("b2b-saas-signals"))]
    for name in ("usage", "tickets", "surveys"):
        args += ["--events", f"{name}={files[name]}"]
    args += ["--accounts", str(files["accounts"]), "--as-of", "2026-06-30",
             "--history-weeks", "1", "--out", str(out)]
    assert main(args) == 0, capsys.readouterr().err
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


# --------------------------------------------------------------------------- test files


def test_a_test_file_rejects_an_unknown_source(tmp_path: Path) -> None:
    roadmap = tmp_path / "roadmap.yaml"
    roadmap.write_text(ROADMAP)
    (tmp_path / "r.test.yaml").write_text(
        "kind: test\nroadmap: roadmap.yaml\nas_of: 2026-06-30\ncases:\n"
        "  - name: c\n    accounts: [a]\n    sources:\n      tikets:\n"
        "        a: [opened at -1d]\n      tickets:\n        a: [opened at -1d sevrity=2]\n"
        "    expect: {a: {indicators: {tickets_30d: 1}}}\n")
    report = run_tests([tmp_path])
    text = report.render()
    assert not report.ok
    assert "unknown event source 'tikets'" in text and "did you mean 'tickets'?" in text
    assert "'sevrity' is not a value column of source 'tickets'" in text


def test_a_daily_run_judges_each_source_by_its_own_staleness_limit(tmp_path: Path) -> None:
    from healthrules.history import run as daily
    from healthrules.history.daily import StaleDataError

    text = ROADMAP.replace("      values: {severity: int}\n",
                           "      values: {severity: int}\n      max_staleness: 1d\n")
    (tmp_path / "strict.yaml").write_text(text)
    (tmp_path / "plain.yaml").write_text(ROADMAP)
    events, accounts = _frames()
    # the newest ticket read on 30 June (Paris) is from the morning of 29 June: 38 hours
    # old (the one at 22:30 UTC on 30 June is on 1 July in Paris)
    with pytest.raises(StaleDataError, match="newest event of source 'tickets'"):
        daily(hr.load(tmp_path / "strict.yaml"), tmp_path / "s.db", events, accounts, AS_OF)
    # the run's own limit is the default source's; the usage events are fresh
    result = daily(hr.load(tmp_path / "plain.yaml"), tmp_path / "t.db", events, accounts,
                   AS_OF, max_staleness="1d")
    assert result.newest_event is not None


# --------------------------------------------------------------------------- mixed inputs


def test_a_dict_may_mix_a_duckdb_table_a_relation_and_a_polars_frame(tmp_path: Path) -> None:
    """Each named source is resolved once, with its own columns, timestamp, zone and read
    range: tickets from a DuckDB table (a ``DuckDBSource``), surveys from a DuckDB
    relation, usage a polars frame; the result is the all-polars evaluation's, and each
    source's SQL carries only that source's columns and range."""
    import duckdb

    from healthrules.sources import DuckDBSource

    events, accounts = _frames()
    plan = hr.compile(_roadmap())
    expected = hr.evaluate(plan, events, accounts, AS_OF)
    path = tmp_path / "warehouse.duckdb"
    con = duckdb.connect(str(path))
    # a column no roadmap reads next to each source's own
    for name in ("tickets", "surveys"):
        con.from_arrow(events[name].with_columns(pl.lit("x").alias("note")).to_arrow()
                       ).create(name)
    con.close()
    con = duckdb.connect(str(path), read_only=True)
    try:
        tickets = DuckDBSource(path, table="tickets")
        surveys = DuckDBSource(relation=con.table("surveys"))
        got = hr.evaluate(plan, {"usage": events["usage"], "tickets": tickets,
                                 "surveys": surveys}, accounts, AS_OF)
        # an Arrow table for one source, next to the DuckDB table
        arrow = hr.evaluate(plan, {"usage": events["usage"].to_arrow(), "tickets": tickets,
                                   "surveys": events["surveys"]}, accounts, AS_OF)
    finally:
        tickets.close()
        con.close()
    for name in ("indicators", "stages", "scores", "actions", "conditions"):
        assert_frame_equal(getattr(got, name), getattr(expected, name), check_exact=True)
        assert_frame_equal(getattr(arrow, name), getattr(expected, name), check_exact=True)
    assert got.diagnostics == expected.diagnostics == arrow.diagnostics
    # tickets: its four columns, no lower bound (last_time reads all history), the end of
    # 30 June in Paris written as the UTC instant; the 22:30 UTC ticket is never read
    t_sql = tickets.last_query or ""
    for col in ("customer", "kind", "opened_at", "severity"):
        assert f'"{col}"' in t_sql
    for col in ("note", "respondent", "answered_on", "nps", "account_id"):
        assert f'"{col}"' not in t_sql, t_sql
    assert '"opened_at" <' in t_sql and '"opened_at" >=' not in t_sql
    assert "2026-06-30 22:00:00" in t_sql
    assert tickets.rows_read == 3
    # surveys: its own columns, and its own 90-day range on its dates (New York wall clock)
    s_sql = surveys.last_query or ""
    for col in ("account_id", "respondent", "answered_on", "nps"):
        assert f'"{col}"' in s_sql
    for col in ("note", "customer", "opened_at", "severity"):
        assert f'"{col}"' not in s_sql, s_sql
    start, end = read_range(plan, events, accounts, AS_OF, event_source="surveys")
    assert start is not None and '"answered_on" >=' in s_sql and '"answered_on" <' in s_sql
    assert surveys.rows_read == 2  # the 1 January answer is outside the 90 days
    # [start, end) of the surveys is midnight to midnight in Paris: 18:00 the day before
    # on New York's wall clock, where a survey's date begins
    assert (start.isoformat(), end.isoformat()) == ("2026-04-02T00:00:00+02:00",
                                                    "2026-07-01T00:00:00+02:00")
    assert "'2026-04-01 18:00:00.000000'" in s_sql and "'2026-06-30 18:00:00.000000'" in s_sql


def test_cli_mixes_a_file_a_duckdb_table_and_a_query_per_source(
        files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--events NAME=PATH``, ``--events-table NAME=TABLE`` and ``--events-query NAME=SQL``
    name one source each, of one ``--duckdb`` file."""
    import duckdb

    s = sample(40)
    db = tmp_path / "w.duckdb"
    con = duckdb.connect(str(db))
    con.from_arrow(s.sources["tickets"].to_arrow()).create("tickets")
    con.from_arrow(s.sources["surveys"].to_arrow()).create("surveys_raw")
    con.close()
    out = tmp_path / "out"
    code = main([*_evaluate_args(files, out, f"usage={files['usage']}"), "--duckdb", str(db),
                 "--events-table", "tickets=tickets",
                 "--events-query", "surveys=SELECT * FROM surveys_raw WHERE 1=1"])
    text = capsys.readouterr()
    assert code == 0, text.err
    want = hr.evaluate(hr.load(example_path("b2b-saas-signals")), s.sources, s.accounts,
                       s.as_of)
    got = pl.read_parquet(out / "indicators.parquet")
    assert_frame_equal(got.sort("account_id"), want.indicators.sort("account_id"))
    # a source given twice, by two kinds of option, is a usage error naming both
    code = main([*_evaluate_args(files, tmp_path / "o2", f"usage={files['usage']}",
                                 f"tickets={files['tickets']}"), "--duckdb", str(db),
                 "--events-table", "tickets=tickets",
                 "--events-table", "surveys=surveys_raw"])
    assert code == 2
    assert ("the events of source 'tickets' are given twice (--events and --events-table)"
            in capsys.readouterr().err)


def test_dated_accounts_with_named_sources_history_equals_evaluate() -> None:
    """Dated accounts (validity columns) next to several event sources: each source's
    aggregator works on the dated accounts' units, and every date of the history is the
    evaluation at that date."""
    import yaml

    doc = yaml.safe_load(example_path("b2b-saas-signals").read_text(encoding="utf-8"))
    doc["data"]["accounts"] |= {"valid_from": "valid_from", "valid_to": "valid_to"}
    r = load_text(yaml.safe_dump(doc, sort_keys=False), source="dated-signals.yaml")
    assert isinstance(r, Roadmap)
    s = sample(40, dated=True)
    first = s.as_of - dt.timedelta(days=14)
    h = hr.history(r, s.sources, s.accounts, first, s.as_of, every="1w")
    for d in (first, first + dt.timedelta(days=7), s.as_of):
        e = hr.evaluate(r, s.sources, s.accounts, d)
        assert e.diagnostics["tickets:events_read"] > 0
        got = h.scores.filter(pl.col("as_of") == d).drop("as_of").sort("account_id")
        assert_frame_equal(got.select(e.scores.columns), e.scores.sort("account_id"))
        got_ind = h.indicators.filter(pl.col("as_of") == d).drop("as_of").sort("account_id")
        assert_frame_equal(got_ind.select(e.indicators.columns),
                           e.indicators.sort("account_id"))
