"""The polars query flags of every query the package collects, in one place.

Every ``collect`` and ``collect_all`` in ``healthrules`` passes one of these objects (a test
reads the source and checks it, and checks at run time that an evaluation passes no other).
They share one guard: ``cluster_with_columns`` is off in each. In polars 2.1 that
optimisation moves an expression of a ``with_columns`` into the ``with_columns`` below it
when it reads no column the lower one creates, and keeps one in place when an expression that
stays reads its name, but not transitively: an expression that stays can then read the moved
one's new value (wrong values, no error). See docs/design.md, "Query flags".

This module imports nothing of the package, so the sample data (``healthrules.datasets``),
the input checks (``healthrules.inputs``) and the engine all read the same objects without
importing each other. A collect copies the flags it is given and does not change them.
"""

from __future__ import annotations

import polars as pl

__all__ = ["EVENTS_QUERY_FLAGS", "NO_OPTIMISATION", "OPTIMISED", "SUBEXPRESSIONS_ONLY"]

OPTIMISED = pl.QueryOptFlags(cluster_with_columns=False)
"""The flags of every query the package collects with optimisation: polars' defaults but
``cluster_with_columns`` (see the module's docstring)."""

EVENTS_QUERY_FLAGS = pl.QueryOptFlags(comm_subplan_elim=False, cluster_with_columns=False)
"""How the events pass's query is collected on the streaming engine: each branch streams its
own scan (``EventsPass._join_distinct_counts``), so no common subplan; no clustering, as
:data:`OPTIMISED`."""

NO_OPTIMISATION = pl.QueryOptFlags.none()
"""The flags of a query without optimisation, made once: ``QueryOptFlags.none()`` costs
about 12 us per call in polars 2.1."""

SUBEXPRESSIONS_ONLY = pl.QueryOptFlags.none()
"""No optimisation but common subexpression elimination (the plain form of a small events
pass, ``healthrules.engine.aggregate.small_events_flags``)."""
SUBEXPRESSIONS_ONLY.comm_subexpr_elim = True
