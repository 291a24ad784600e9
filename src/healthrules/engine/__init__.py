"""The engine: a compiled :class:`~healthrules.Plan` evaluated as vectorised polars queries.

The pipeline, one module each:

- :mod:`~healthrules.engine.binding`: names, dates and windows as polars expressions
  (``as_of`` bound late: a literal over the events, columns over the per-account rows);
- :mod:`~healthrules.engine.aggregate`: events -> one row per account of raw aggregates, one
  pass, with the read range and columns pushed down to the scan;
- :mod:`~healthrules.engine.assemble`: raw aggregates -> each roadmap's frame (derived
  indicators, bands, stages, scores, action conditions) and its output frames;
- :mod:`~healthrules.engine.render`: action texts and evidence;
- :mod:`~healthrules.engine.evaluator`: :class:`Evaluator`, the public class that
  ``evaluate``, ``history``, the lifecycle and the Spark adapter share.

See ``docs/design.md``.
"""

from healthrules.engine.aggregate import (
    EventsPass,
    abs_sum_expr,
    aggregate_expr,
    check_sum_range,
    raw_column,
    read_source,
)
from healthrules.engine.assemble import (
    RoadmapOutputs,
    RoadmapProgram,
    action_path,
    roadmap_time_needs,
)
from healthrules.engine.evaluator import (
    CollectedOutputs,
    Evaluator,
    Events,
    PartitionColumn,
    evaluate,
    events_query,
    prepare,
    read_range,
    unrouted_stages,
)
from healthrules.engine.frames import EVIDENCE_DTYPE, TASK_DTYPE, empty_actions, narrow
from healthrules.engine.render import render_value

__all__ = [
    "EVIDENCE_DTYPE",
    "TASK_DTYPE",
    "CollectedOutputs",
    "Evaluator",
    "Events",
    "EventsPass",
    "PartitionColumn",
    "RoadmapOutputs",
    "RoadmapProgram",
    "abs_sum_expr",
    "action_path",
    "aggregate_expr",
    "check_sum_range",
    "empty_actions",
    "evaluate",
    "events_query",
    "narrow",
    "prepare",
    "raw_column",
    "read_range",
    "read_source",
    "render_value",
    "roadmap_time_needs",
    "unrouted_stages",
]
