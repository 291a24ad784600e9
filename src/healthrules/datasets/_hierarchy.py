"""A parent column for the sample: customers grouped under group accounts, some groups under
holdings (account hierarchies, ``data.accounts.parent``).

:func:`parent_links` walks the customers in ``account_id`` order: now and then a customer
becomes a *group* (a holding company that is a customer itself) and the next two to four
customers become its subsidiaries; every third group is then the parent of the group formed
right after it, so some groups sit under a *holding* with three levels (holding -> group ->
subsidiary). Trial prospects have no parent. The choices are drawn with their own
:class:`random.Random`, so the events and the other attributes of the sample do not depend
on them, and the same seed always gives the same tree (a forest: no cycle, every parent is an
account of the frame).
"""

from __future__ import annotations

import random
from typing import Final

import polars as pl

__all__ = ["PARENT_COLUMN", "dated_parent_rows", "parent_links"]

PARENT_COLUMN: Final = "parent_id"
"""The name of the parent column ``sample(..., hierarchy=True)`` adds."""

_GROUP_CHANCE: Final = 0.3
"""Chance that a customer not yet placed starts a group."""


def parent_links(accounts: pl.DataFrame, *, seed: int) -> dict[str, str]:
    """``{account_id: parent account_id}`` for the accounts that have a parent.

    Parameters
    ----------
    accounts
        The accounts frame of a sample (``account_id``, ``lifecycle``).
    seed
        The sample's seed.

    Returns
    -------
    dict[str, str]
        Each subsidiary's group and each group's holding; accounts without a parent are
        absent.
    """
    rng = random.Random(f"{seed}/hierarchy")
    customers = accounts.filter(pl.col("lifecycle") == "customer").sort("account_id")[
        "account_id"].to_list()
    parents: dict[str, str] = {}
    groups: list[str] = []
    i = 0
    while i < len(customers):
        # the draws happen for every customer, so one group's size never shifts another's
        starts, size = rng.random() < _GROUP_CHANCE, rng.randint(2, 4)
        kids = customers[i + 1:i + 1 + size]
        if starts and len(kids) >= 2:
            head = customers[i]
            groups.append(head)
            parents.update(dict.fromkeys(kids, head))
            i += 1 + len(kids)
        else:
            i += 1
    for j in range(0, len(groups) - 1, 3):  # a holding: the next group is its subsidiary
        parents[groups[j + 1]] = groups[j]
    return parents


def dated_parent_rows(accounts: pl.DataFrame, key: str = "account_id") -> pl.DataFrame:
    """Dated account rows whose parent exists whenever a row names it.

    A group becomes a customer at its own contract start and may churn; its subsidiaries'
    rows name it only while it has a valid row: a child's row is split at the days its
    parent's rows start and end, and the pieces outside them have a null parent (the company
    was on its own then). Each account's rows are contiguous (from its first ``valid_from``
    to its last ``valid_to``), so a parent's validity is one interval.

    Parameters
    ----------
    accounts
        Dated rows (``valid_from`` / ``valid_to``, exclusive, null while the row holds) with
        the parent column.
    key
        The account key column.

    Returns
    -------
    polars.DataFrame
        The same columns, sorted by key and ``valid_from``.
    """
    spans = {k: (lo, hi) for k, lo, hi in accounts.group_by(key).agg(
        pl.col("valid_from").min(),
        pl.when(pl.col("valid_to").is_null().any()).then(None).otherwise(
            pl.col("valid_to").max())).iter_rows()}
    rows: list[dict[str, object]] = []
    for row in accounts.to_dicts():
        parent = row[PARENT_COLUMN]
        if parent is None:
            rows.append(row)
            continue
        p_lo, p_hi = spans[parent]
        lo, hi = row["valid_from"], row["valid_to"]
        cuts = sorted({lo, *(d for d in (p_lo, p_hi) if d is not None and lo < d
                             and (hi is None or d < hi))})
        for i, start in enumerate(cuts):
            end = cuts[i + 1] if i + 1 < len(cuts) else hi
            inside = p_lo <= start and (p_hi is None or start < p_hi)
            rows.append({**row, "valid_from": start, "valid_to": end,
                         PARENT_COLUMN: parent if inside else None})
    return pl.DataFrame(rows, schema=accounts.schema).sort(key, "valid_from")
