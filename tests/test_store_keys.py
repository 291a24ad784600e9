"""Account keys of every type a frame may hold, through the state store: what a run stores
reads back as the same accounts, and a key SQLite cannot keep is refused with a clear error
before anything is stored (it was an OverflowError from the driver, a crash of the CLI)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import healthrules as hr
from healthrules.history import StateStore, StoreError, run

ROADMAP = hr.Roadmap.model_validate({
    "id": "keys", "goal": "g", "data": {"events": {"user": None}},
    "indicators": [{"id": "n", "family": "process", "aggregate": "count", "window": "7d"}],
    "stages": [{"id": "o", "actions": [{"id": "quiet", "kind": "challenge", "when": "n < 2",
                                        "do": "call {n}", "owner": "csm"}]}]})


def _run(path: Path, keys: list[Any], dtype: pl.DataType, day: str, busy: bool) -> Any:
    events = pl.DataFrame({"account_id": pl.Series(keys, dtype=dtype),
                           "timestamp": [dt.datetime(2026, 6, 28, 9)] * len(keys),
                           "event": ["login"] * len(keys)})
    if busy:  # two logins each: the action closes
        events = pl.concat([events, events])
    accounts = pl.DataFrame({"account_id": pl.Series(keys, dtype=dtype)})
    return run(ROADMAP, path, events, accounts, day)


@pytest.mark.parametrize(("keys", "dtype"), [
    (["007", "7", "", "é"], pl.String()),
    ([0, 7, 2**32 - 1], pl.UInt32()),
    ([-(2**15), 2**15 - 1], pl.Int16()),
    ([-(2**63), 2**63 - 1, 0], pl.Int64()),
    ([0, 2**63 - 1], pl.UInt64()),
])
def test_keys_read_back_as_the_same_accounts(tmp_path: Path, keys: list[Any],
                                             dtype: pl.DataType) -> None:
    path = tmp_path / "state.db"
    first = _run(path, keys, dtype, "2026-06-30", busy=False)
    assert sorted(first.changes["account_id"].to_list()) == sorted(keys)
    second = _run(path, keys, dtype, "2026-07-01", busy=True)
    assert sorted(second.changes["account_id"].to_list()) == sorted(keys)
    assert set(second.changes["change"]) == {"resolved"}
    with StateStore(path) as store:
        stored = store.actions(statuses=("resolved",))["account_id"].to_list()
    assert sorted(stored) == sorted(keys)


def test_a_key_beyond_what_sqlite_keeps_is_refused_and_nothing_is_stored(
        tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    _run(path, [1, 2], pl.UInt64(), "2026-06-30", busy=False)
    with pytest.raises(StoreError, match=r"account key 9223372036854775808 of column "
                                         r"'account_id' \(UInt64\) and 1 more: beyond the "
                                         r"64-bit signed integers"):
        _run(path, [1, 2**63, 2**64 - 1], pl.UInt64(), "2026-07-01", busy=False)
    with StateStore(path) as store:
        assert store.runs()["as_of"].to_list() == [dt.date(2026, 6, 30)]
        assert sorted(store.actions()["account_id"].to_list()) == [1, 2]
