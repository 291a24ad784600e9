"""Health over time: history over many dates, the action lifecycle, the state store, backtests.

- :func:`history` evaluates a roadmap at every date of a range, reading the events once, and
  returns the frames of :func:`healthrules.evaluate` with an ``as_of`` column;
  :attr:`History.lifecycle` replays the action lifecycle (pending, open, resolved) over them.
- :mod:`healthrules.history.lifecycle` defines the lifecycle (``for``, ``cooldown``,
  hysteresis, escalation).
- :func:`run` is the daily job: one evaluation, the lifecycle moved on, only the changes
  reported, the rest kept in a :class:`StateStore` (SQLite) with the CSMs' overrides and
  their snoozes and dismissals (:mod:`healthrules.history.holds`); changes can go to a
  webhook (:mod:`healthrules.history.webhooks`) and the open actions to a CRM export.
- :func:`backtest` evaluates the roadmap in the past against renewal outcomes: retention per
  band, AUC and red-band lift, lead time of red before churn, action counts.

The module itself is callable: ``healthrules.history(roadmap, events, accounts, start, end)``
is :func:`history` (type checkers see a module; ``from healthrules.history import history``
gives them the function).

See ``docs/time.md``.
"""

from __future__ import annotations

import sys
import types
from typing import Any

from healthrules.history.backtest import Backtest, backtest
from healthrules.history.daily import RunResult, run
from healthrules.history.lifecycle import Lifecycle
from healthrules.history.snapshots import History, history
from healthrules.history.store import StateStore, StoreError

__all__ = [
    "Backtest",
    "History",
    "Lifecycle",
    "RunResult",
    "StateStore",
    "StoreError",
    "backtest",
    "history",
    "run",
]


class _CallableModule(types.ModuleType):
    """``healthrules.history(...)`` calls :func:`history`, as the API is spelled."""

    def __call__(self, *args: Any, **kwargs: Any) -> History:
        return history(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
