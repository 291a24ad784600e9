"""The compact event notation of test files: parsing, expansion and error columns."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from healthrules.testing.notation import (
    Anchor,
    NotationError,
    expand,
    parse_line,
    parse_offset,
)

AS_OF = dt.date(2026, 6, 30)
ANCHOR = Anchor.of(AS_OF)


def events(text: str, anchor: Anchor = ANCHOR) -> list[tuple[dt.datetime, str | None]]:
    return list(expand(parse_line(text), anchor))


def test_one_event_defaults_to_noon_on_the_as_of_day() -> None:
    assert events("login") == [(dt.datetime(2026, 6, 30, 12), None)]


def test_count_at_a_day_offset_is_one_minute_apart() -> None:
    out = events("feature_x_used x3 at -2d")
    assert [ts for ts, _ in out] == [dt.datetime(2026, 6, 28, 12, m) for m in range(3)]


def test_per_day_over_a_range_and_users() -> None:
    out = events("login x3/day for 20d by u1")
    assert len(out) == 60
    days = sorted({ts.date() for ts, _ in out})
    assert days[0] == dt.date(2026, 6, 11) and days[-1] == AS_OF and len(days) == 20
    assert {u for _, u in out} == {"u1"}


def test_several_users_repeat_the_pattern() -> None:
    out = events("login x1/day for 3d by u1..u3")
    assert len(out) == 9
    assert sorted({u for _, u in out}) == ["u1", "u2", "u3"]
    assert {u for _, u in events("login by a,b")} == {"a", "b"}
    assert [u for _, u in events("login by u08..u10")] == ["u08", "u09", "u10"]


def test_total_count_over_a_range_is_spread_evenly() -> None:
    out = events("login x5 for 20d")
    assert [ts.date() for ts, _ in out] == [AS_OF - dt.timedelta(days=d)
                                           for d in (19, 15, 11, 7, 3)]


def test_per_week_blocks_drop_what_falls_after_the_range() -> None:
    out = events("login x2/week for 10d")
    # blocks of 7 days from the first day (06-21): days 0 and 3, then 7 (10 is outside)
    assert [ts.date().isoformat() for ts, _ in out] == ["2026-06-21", "2026-06-24", "2026-06-28"]


def test_from_to_covers_both_ends() -> None:
    out = events("login from -30d to -28d")
    assert [ts.date() for ts, _ in out] == [dt.date(2026, 5, 31), dt.date(2026, 6, 1),
                                            dt.date(2026, 6, 2)]


def test_time_of_day_hours_absolute_and_future() -> None:
    assert events("login at -3d@09:30")[0][0] == dt.datetime(2026, 6, 27, 9, 30)
    assert events("login at -1h")[0][0] == dt.datetime(2026, 6, 30, 23, 0)
    assert events("login at -30m")[0][0] == dt.datetime(2026, 6, 30, 23, 30)
    assert events("login at -2w")[0][0] == dt.datetime(2026, 6, 16, 12, 0)
    assert events("login at 2026-01-15")[0][0] == dt.datetime(2026, 1, 15, 12, 0)
    assert events("login at 2026-01-15T08:05")[0][0] == dt.datetime(2026, 1, 15, 8, 5)
    assert events("login at +1d")[0][0] == dt.datetime(2026, 7, 1, 12, 0)


def test_datetime_anchor_hours_are_relative_to_the_instant() -> None:
    anchor = Anchor.of(dt.datetime(2026, 6, 30, 10, 0))
    assert events("login at -2h", anchor)[0][0] == dt.datetime(2026, 6, 30, 8, 0)
    assert events("login at 0d", anchor)[0][0] == dt.datetime(2026, 6, 30, 12, 0)


def test_values_are_numbers_or_null() -> None:
    line = parse_line("nps_response value=9 at -3d by u2")
    assert dict(line.values) == {"value": 9}
    assert dict(parse_line("session value=2.5 minutes=null").values) == {
        "value": 2.5, "minutes": None}
    assert parse_line("session value=2.5").value_columns == {"value": 9}


def test_parse_offset() -> None:
    assert parse_offset("-3d") is not None
    assert parse_offset("+2w") is not None
    assert parse_offset("3x") is None
    assert parse_offset("-3h@09:00") is None  # a time of day goes with day offsets only


@pytest.mark.parametrize(
    ("text", "column", "fragment", "hint"),
    [
        ("", 1, "empty", "login x3/day"),
        ("at -3d", 1, "starts with the event name", None),
        ("login x0", 7, "at least 1", None),
        ("login x3/day", 13, "needs a range", None),
        ("login at -3q", 10, "at expects a time", None),
        ("login fro -3d", 7, "unexpected 'fro'", "did you mean 'from'?"),
        ("login -3d", 7, "unexpected '-3d'", "put 'at' before a time: at -3d"),
        ("login value=abc", 13, "not a number", None),
        ("login from -3d", 15, "needs a 'to'", None),
        ("login to -3d", 7, "'to' without 'from'", None),
        ("login by u1 by u2", 13, "users are given twice", None),
        ("login at -2d at -1d", 14, "time is given twice", None),
        ("login x2 x3", 10, "count is given twice", None),
        ("login at", 9, "needs a value", None),
        ("login by u5..u1", 10, "empty", None),
        ("login by u1..v3", 10, "one prefix", None),
        ("login from -3d@09:00 to -1d", 12, "whole days", None),
        ("login at 2026-02-30", 10, "not a valid date", None),
        ("login value=1 value=2", 15, "given twice", None),
    ],
)
def test_errors_say_where(text: str, column: int, fragment: str, hint: str | None) -> None:
    with pytest.raises(NotationError) as info:
        parse_line(text)
    assert fragment in info.value.message
    assert info.value.column == column
    if hint is not None:
        assert info.value.hint is not None and hint in info.value.hint


def test_too_many_events_is_an_error() -> None:
    with pytest.raises(NotationError) as info:
        parse_line("login x1000/day for 1000d")
    assert info.value.code == "notation_too_many"


def test_a_range_that_ends_before_it_starts() -> None:
    with pytest.raises(NotationError, match="ends before it starts"):
        events("login from -1d to -5d")


@settings(max_examples=60, deadline=None, database=None)
@given(n=st.integers(1, 40), days=st.integers(1, 60), per=st.sampled_from(["", "/day", "/week"]))
def test_counts_and_range(n: int, days: int, per: str) -> None:
    out = events(f"login x{n}{per} for {days}d")
    first = AS_OF - dt.timedelta(days=days - 1)
    assert all(first <= ts.date() <= AS_OF for ts, _ in out)
    if per == "":
        assert len(out) == n
    elif per == "/day":
        assert len(out) == n * days
    else:
        assert len(out) <= n * -(-days // 7)
        assert len(out) >= n * (days // 7)
    assert [ts for ts, _ in out] == sorted(ts for ts, _ in out)
