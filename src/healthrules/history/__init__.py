"""Health over time: history over many dates, the action lifecycle, the state store, backtests.

- :func:`history` evaluates a roadmap at every date of a range, reading the events once, and
  returns the frames of :func:`healthrules.evaluate` with an ``as_of`` column;
  :attr:`History.lifecycle` replays the action lifecycle (pending, open, resolved) over them.
- :mod:`healthrules.history.lifecycle` defines the lifecycle (``for``, ``cooldown``,
  hysteresis, escalation).

See ``docs/time.md``.
"""

from __future__ import annotations

from healthrules.history.lifecycle import Lifecycle
from healthrules.history.snapshots import History, history

__all__ = ["History", "Lifecycle", "history"]
