"""The same events as a polars frame, CSV, NDJSON, Parquet, an Arrow IPC file, an Arrow table
and an Arrow stream evaluate alike, or are refused with an error naming the file, the column
and the value (docs/sources.md, "Time zones"): zones with offsets to the second (Paris before
1911: +00:09:21), half and three-quarter hours, daylight-saving changes, ms/us/ns, dates,
nulls. Offsets are read to the second; an offset cut to the minute from the zone's own is
refused, never shifted; a wall time is read as the engine reads wall times (one a change
repeats is its earlier instant: Python's ``fold=0``)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import healthrules as hr
from healthrules.cli._frames import scan_frame
from healthrules.compiler import compile as compile_plan
from healthrules.errors import InputDataError
from healthrules.loader import load_text
from healthrules.roadmap import Roadmap

# (zone, as_of): eras with odd offsets and days of daylight-saving changes
CASES = [
    (None, dt.date(2026, 3, 29)),
    ("UTC", dt.date(2026, 6, 30)),
    ("Europe/Paris", dt.date(1905, 1, 2)),       # +00:09:21
    ("Europe/Paris", dt.date(1911, 3, 12)),      # +00:09:21 -> +00:00 on 1911-03-11
    ("Europe/Paris", dt.date(2026, 3, 30)),
    ("Europe/Paris", dt.date(2026, 10, 26)),
    ("America/New_York", dt.date(2026, 11, 2)),
    ("Asia/Kolkata", dt.date(2026, 6, 30)),      # +05:30
    ("Australia/Lord_Howe", dt.date(2026, 4, 6)),  # +11:00 -> +10:30
    ("Pacific/Chatham", dt.date(2026, 4, 6)),    # +13:45 -> +12:45
]


def _roadmap(zone: str | None) -> Roadmap:
    tz = f"    timezone: {zone}\n" if zone else ""
    text = (
        "id: files\ngoal: g\ndata:\n  events:\n    values: {v: float}\n" + tz
        + "  accounts:\n    attributes: {}\nindicators:\n"
        "  - {id: n1, family: process, aggregate: count, window: 1d}\n"
        "  - {id: n7, family: process, aggregate: count, window: 7d}\n"
        "  - {id: s1, family: process, aggregate: sum, of: v, window: 1d}\n"
        "  - {id: last, family: process, aggregate: last_time}\n"
        "  - {id: first, family: process, aggregate: first_time}\n"
        "stages:\n  - id: s\n")
    loaded = load_text(text, source="files.yaml")
    assert isinstance(loaded, Roadmap)
    return loaded


def _offset(value: dt.datetime) -> str:
    """The UTC offset of an aware datetime, to the second when it has seconds."""
    off = value.utcoffset()
    assert off is not None
    secs = int(off.total_seconds())
    sign = "-" if secs < 0 else "+"
    h, rest = divmod(abs(secs), 3600)
    m, s = divmod(rest, 60)
    return f"{sign}{h:02d}:{m:02d}" + (f":{s:02d}" if s else "")


def _text(value: dt.datetime | dt.date | None, nanos: int, offset: bool) -> str | None:
    if value is None:
        return None
    if not isinstance(value, dt.datetime):
        return value.isoformat()
    base = value.replace(tzinfo=None, microsecond=0).isoformat()
    frac = f".{value.microsecond * 1000 + nanos:09d}" if value.microsecond or nanos else ""
    return base + frac + (_offset(value) if offset and value.tzinfo else "")


@st.composite
def events(draw: st.DrawFn) -> tuple[str | None, dt.date, str, bool, pl.DataFrame, list[int]]:
    zone, as_of = draw(st.sampled_from(CASES))
    unit = draw(st.sampled_from(["ms", "us", "ns"]))
    dates = draw(st.booleans()) and zone is not None
    end = dt.datetime.combine(as_of, dt.time())
    n = draw(st.integers(0, 8))
    stamps: list[dt.datetime | dt.date | None] = []
    nanos: list[int] = []
    for _ in range(n):
        if draw(st.integers(0, 9)) == 0:
            stamps.append(None)
            nanos.append(0)
            continue
        # UTC instants around the midnights of the last days
        secs = draw(st.integers(-3 * 86400, 86400))
        sub = draw(st.integers(0, 999_999_999))
        sub = {"ms": sub // 1_000_000 * 1_000_000, "us": sub // 1000 * 1000, "ns": sub}[unit]
        at = (end + dt.timedelta(seconds=secs, microseconds=sub // 1000)).replace(
            tzinfo=dt.UTC)
        nanos.append(sub % 1000)
        if dates:
            stamps.append((end + dt.timedelta(seconds=secs)).date())
        elif zone is None:
            stamps.append(at.replace(tzinfo=None))
        else:
            stamps.append(at.astimezone(ZoneInfo(zone)))
    values = draw(st.lists(st.sampled_from([1.5, -0.0, 2.0, None, float("inf")]),
                           min_size=n, max_size=n))
    if dates:
        ts = pl.Series("timestamp", stamps, pl.Date)
    else:
        utc = [None if s is None else s.replace(tzinfo=None) if zone is None
               else s.astimezone(dt.UTC).replace(tzinfo=None) for s in stamps]
        ts = (pl.Series("timestamp", utc, pl.Datetime("us")).dt.cast_time_unit("ns")
              + pl.Series(nanos, dtype=pl.Int64).cast(pl.Duration("ns"))
              ).dt.cast_time_unit(unit).alias("timestamp")  # type: ignore[arg-type]
        if zone is not None:
            ts = ts.dt.replace_time_zone("UTC").dt.convert_time_zone(zone)
    frame = pl.DataFrame({"account_id": [draw(st.sampled_from(["a", "b", "z"]))
                                         for _ in range(n)],
                          "user_id": ["u"] * n, "event": ["e"] * n},
                         schema=dict.fromkeys(["account_id", "user_id", "event"],
                                              pl.String)).with_columns(
        ts, pl.Series("v", values, pl.Float64))
    return zone, as_of, unit, dates, frame, nanos


ACCOUNTS = pl.DataFrame({"account_id": ["a", "b"]})


def _result(roadmap: Roadmap, events: object, as_of: dt.date) -> list[tuple[object, ...]] | str:
    try:
        got = hr.evaluate(roadmap, events, ACCOUNTS, as_of).indicators  # type: ignore[arg-type]
    except InputDataError as exc:
        return f"refused: {exc}"
    # the instants of first/last in one unit (a CSV file is read in us, or ns when needed)
    return got.with_columns(pl.col(pl.Datetime).dt.cast_time_unit("ns")).sort(
        "account_id").rows()


def _write_text(frame: pl.DataFrame, nanos: list[int], path: Path, kind: str,
                offset: bool) -> None:
    texts = [_text(s, nn, offset) for s, nn in zip(frame["timestamp"].to_list(), nanos,
                                                    strict=True)]
    rows = frame.drop("timestamp").with_columns(pl.Series("timestamp", texts, pl.String))
    if kind == "csv":
        rows.write_csv(path)
    else:
        # (JSON has no infinity: the values as text, which the reader parses as declared)
        rows = rows.with_columns(pl.col("v").cast(pl.String))
        path.write_text("".join(json.dumps(r) + "\n" for r in rows.to_dicts()))


def _as_walls(frame: pl.DataFrame, zone: str | None) -> pl.DataFrame:
    """``frame`` with each timestamp moved to the instant its wall time names under
    Python's ``fold=0`` (the earlier of a repeated wall time)."""
    if zone is None or frame.schema["timestamp"] == pl.Date:
        return frame
    moves = []
    for s in frame["timestamp"].to_list():
        if s is None:
            moves.append(dt.timedelta(0))
            continue
        named = s.replace(tzinfo=None).replace(tzinfo=ZoneInfo(zone))
        moves.append(named.astimezone(dt.UTC) - s.astimezone(dt.UTC))
    return frame.with_columns(pl.col("timestamp") + pl.Series(moves, dtype=pl.Duration("us")))


@settings(max_examples=60)
@given(events())
def test_every_file_and_arrow_form_evaluates_like_the_frame(
        tmp_path_factory: pytest.TempPathFactory,
        case: tuple[str | None, dt.date, str, bool, pl.DataFrame, list[int]]) -> None:
    zone, as_of, _unit, dates, frame, nanos = case
    roadmap = _roadmap(zone)
    plan = compile_plan(roadmap)
    want = _result(roadmap, frame, as_of)
    assert not isinstance(want, str), want
    tmp = tmp_path_factory.mktemp("files")

    def scanned(path: Path) -> list[tuple[object, ...]] | str:
        try:
            lf = scan_frame(path, "events", plan, "events")
        except InputDataError as exc:
            return f"refused: {exc}"
        return _result(roadmap, lf, as_of)

    frame.write_parquet(tmp / "e.parquet")
    frame.write_ipc(tmp / "e.arrow")
    assert scanned(tmp / "e.parquet") == want
    assert scanned(tmp / "e.arrow") == want
    table = frame.to_arrow()
    assert _result(roadmap, table, as_of) == want
    assert _result(roadmap, table.to_reader(max_chunksize=3), as_of) == want
    if zone is not None and not dates:
        # the same instants in another zone: an Arrow table, a stream and the files are
        # shown in the roadmap's zone (a polars frame must match it: the data contract)
        moved = frame.with_columns(pl.col("timestamp").dt.convert_time_zone("Asia/Tokyo"))
        assert _result(roadmap, moved.to_arrow(), as_of) == want
        assert _result(roadmap, moved.to_arrow().to_reader(), as_of) == want
        moved.write_parquet(tmp / "m.parquet")
        moved.write_ipc(tmp / "m.arrow")
        assert scanned(tmp / "m.parquet") == want
        assert scanned(tmp / "m.arrow") == want
        refused = _result(roadmap, moved, as_of)
        assert isinstance(refused, str) and "timezone_mismatch" in refused
    for kind in ("csv", "ndjson"):
        # offsets written to the second: exact
        _write_text(frame, nanos, tmp / f"o.{kind}", kind, offset=True)
        assert scanned(tmp / f"o.{kind}") == want, kind
        # wall times without an offset: the instants Python's fold=0 gives them (a wall
        # time a change repeats is its earlier instant; docs/semantics.md)
        _write_text(frame, nanos, tmp / f"w.{kind}", kind, offset=False)
        assert scanned(tmp / f"w.{kind}") == _result(roadmap, _as_walls(frame, zone),
                                                     as_of), kind
    # polars' own CSV writer cuts an offset to the minute: exact, or refused by name
    frame.write_csv(tmp / "p.csv")
    got = scanned(tmp / "p.csv")
    if isinstance(got, str):
        assert "cut to the minute" in got and "column 'timestamp'" in got, got
        assert zone == "Europe/Paris" and as_of.year < 1912
    else:
        assert got == want


@pytest.mark.parametrize(("text", "zone", "why"), [
    ("1905-01-01T12:00:00+0009", "Europe/Paris", "cut to the minute"),
    ("2026-06-01T12:00:00+01:00", None, "declares no time zone"),
    ("2026-06-01T12:00:00+25:00", "UTC", "no valid UTC offset"),
    ("yesterday", "UTC", "is not a date and time"),
    ("1600-06-01T12:00:00.1234567", "UTC", "nanosecond"),
])
def test_a_timestamp_text_that_is_not_exact_is_refused_by_file_column_row(
        tmp_path: Path, text: str, zone: str | None, why: str) -> None:
    plan = compile_plan(_roadmap(zone))
    path = tmp_path / "e.csv"
    path.write_text(f"account_id,user_id,event,v,timestamp\na,u,e,1,2026-06-01T00:00:00\n"
                    f"a,u,e,1,{text}\n")
    with pytest.raises(InputDataError) as err:
        scan_frame(path, "events", plan, "events")
    msg = str(err.value)
    assert why in msg and str(path) in msg, msg
    assert "column 'timestamp' is declared datetime, but row 2 holds" in msg, msg
    assert repr(text) in msg


def test_paris_before_1911_read_to_the_second(tmp_path: Path) -> None:
    """12:00:00+00:09:21 is noon on Paris' wall clock then (was read 21 s later, or not at
    all: the offset's seconds were lost)."""
    roadmap = _roadmap("Europe/Paris")
    path = tmp_path / "e.ndjson"
    path.write_text('{"account_id": "a", "user_id": "u", "event": "e", "v": 1.0, '
                    '"timestamp": "1905-01-01T12:00:00+00:09:21"}\n')
    lf = scan_frame(path, "events", compile_plan(roadmap), "events")
    got = hr.evaluate(roadmap, lf, ACCOUNTS, dt.date(1905, 1, 2)).indicators
    assert got.filter(pl.col("account_id") == "a")["last"].to_list() == [
        dt.datetime(1905, 1, 1, 12, tzinfo=ZoneInfo("Europe/Paris"))]


def test_a_bad_number_in_a_csv_is_refused_by_name(tmp_path: Path) -> None:
    """A value column's text that is not a number: an input error naming the file, the
    column and the row (was polars' ComputeError, reported as an internal error)."""
    plan = compile_plan(_roadmap("UTC"))
    path = tmp_path / "e.csv"
    path.write_text("account_id,user_id,event,v,timestamp\na,u,e,1.5x,2026-06-01T00:00:00Z\n")
    with pytest.raises(InputDataError, match=r"column 'v' is declared float, but row 1 "
                       r"holds '1.5x', which is not a number"):
        scan_frame(path, "events", plan, "events")


def test_an_arrow_table_in_another_zone_is_converted_like_a_stream() -> None:
    roadmap = _roadmap("Europe/Paris")
    at = dt.datetime(2026, 10, 25, 23, 30, tzinfo=dt.UTC)  # 00:30 on the 26th in Paris
    frame = pl.DataFrame({"account_id": ["a"], "user_id": ["u"], "event": ["e"], "v": [1.0],
                          "timestamp": [at]})
    table = frame.to_arrow()
    assert table.schema.field("timestamp").type == pa.timestamp("us", "UTC")
    got = [hr.evaluate(roadmap, x, ACCOUNTS, dt.date(2026, 10, 25)).indicators
           .filter(pl.col("account_id") == "a")["n1"].to_list()
           for x in (table, table.to_reader(), table.to_batches()[0])]
    assert got == [[0], [0], [0]]  # (read as UTC wall times, the event would be the 25th's)
    got = [hr.evaluate(roadmap, x, ACCOUNTS, dt.date(2026, 10, 26)).indicators
           .filter(pl.col("account_id") == "a")["n1"].to_list()
           for x in (table, table.to_reader(), table.to_batches()[0])]
    assert got == [[1], [1], [1]]
