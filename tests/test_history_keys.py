"""history's grid keys: a result frame with every grid row in order takes the keys as they
are; any other frame (rows missing, repeated or out of order) gets the keys of its rows."""

from __future__ import annotations

import datetime as dt

import polars as pl
from polars.testing import assert_frame_equal

from healthrules.history.snapshots import keys_of

KEYS = pl.DataFrame({"as_of": [dt.date(2026, 1, d) for d in (1, 1, 8, 8)],
                     "account_id": ["a", "b", "a", "b"]})


def test_every_row_in_order_is_the_keys_themselves() -> None:
    assert keys_of(KEYS, pl.Series("__hk", [0, 1, 2, 3], pl.Int64)) is KEYS


def test_other_rows_are_gathered() -> None:
    for hk in ([1, 3], [0, 1, 2, 2], [0, 2, 1, 3], [1, 2, 3], [3]):
        got = keys_of(KEYS, pl.Series("__hk", hk, pl.Int64))
        assert_frame_equal(got, KEYS[hk])


def test_no_rows() -> None:
    empty = KEYS.clear()
    assert_frame_equal(keys_of(empty, pl.Series("__hk", [], pl.Int64)), empty)
    assert_frame_equal(keys_of(KEYS, pl.Series("__hk", [], pl.Int64)), KEYS.clear())
