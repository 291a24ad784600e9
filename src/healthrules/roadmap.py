"""The success-roadmap format: pydantic v2 models of roadmap, pack and indicator-library files.

These models check the shape of each node and the constraints inside one node (bands ordered
with no gap, weights non-negative, windows well formed). Names that cross nodes (an expression
naming an indicator, a per-stage weight naming a stage) are resolved afterwards by
:mod:`healthrules.analysis`, which reports all unresolved names at once.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from healthrules.aggregates import AGGREGATE_KINDS, Q_DECIMALS, Aggregate, q_units

__all__ = [
    "AGGREGATES",
    "DEFAULT_SOURCE",
    "ROLLUP_AGGREGATES",
    "UNASSIGNED_STAGE",
    "AccountColumns",
    "Achievement",
    "Action",
    "AggregateIndicator",
    "AttributeType",
    "Band",
    "Bands",
    "DataContract",
    "DerivedIndicator",
    "EventColumns",
    "EventSources",
    "Goal",
    "Import",
    "Indicator",
    "IndicatorLibrary",
    "LintSettings",
    "MissingPolicy",
    "Owner",
    "Pack",
    "Roadmap",
    "RollupIndicator",
    "ScoreSegment",
    "ScoreSpec",
    "Stage",
    "StageScore",
    "Task",
    "Tasks",
    "Weights",
    "Window",
    "events_form",
    "number_text",
]

UNASSIGNED_STAGE = "_unassigned"
"""Stage id reported for accounts whose entry criteria all fail (they are never dropped)."""

ID_PATTERN = r"^[A-Za-z][A-Za-z0-9_]*$"
Id = Annotated[
    str,
    Field(pattern=ID_PATTERN, max_length=64, description="An identifier: letters, digits, _"),
]
ExprText = Annotated[
    str,
    Field(min_length=1, max_length=4000, description="An expression (see docs/expressions.md)"),
]
AttributeType = Literal["int", "float", "str", "bool", "date", "datetime"]
ValueType = Literal["int", "float"]
Family = Literal["process", "relationship", "outcome"]
MissingPolicy = Literal["skip", "neutral", "worst"]
Priority = Literal["critical", "high", "medium", "low"]

AGGREGATES: tuple[Aggregate, ...] = tuple(AGGREGATE_KINDS)
"""The aggregate kinds, in order (the keys of :data:`healthrules.aggregates.AGGREGATE_KINDS`)."""


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False
    )


# --------------------------------------------------------------------------- data contract


class EventColumns(_Model):
    """Names of the columns of the usage-event frame, and its numeric value columns."""

    account: str = Field("account_id", description="Column holding the account key.")
    user: str | None = Field("user_id", description="Column holding the user key (optional).")
    event: str | None = Field(
        "event", description="Column holding the event name (a string); null for a table "
        "with one kind of event (expressions then cannot read an event name).")
    timestamp: str = Field("timestamp", description="Column holding the event time (Datetime).")
    values: dict[Id, ValueType] = Field(
        default_factory=dict,
        description="Numeric value columns usable in aggregations, with their type.",
    )
    timezone: str | None = Field(
        None,
        description="Time zone of the timestamp column (e.g. UTC); omit for naive timestamps.",
    )
    max_staleness: str | None = Field(
        None,
        pattern=r"^\s*\d+\s*[dw]\s*$",
        description="Refuse a daily run (healthrules run) when the newest event is older than "
        "this at the end of the run date, e.g. 2d; omit for no limit.",
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str | None) -> str | None:
        if v is not None:
            from healthrules.zones import database_problem, zone_problem

            missing = database_problem(v)
            if missing is not None:  # not cached: a database installed later is read
                raise PydanticCustomError("no_timezone_database", "{message}",
                                          {"message": missing[0], "hint": missing[1]})
            problem = zone_problem(v)
            if problem is not None:
                raise PydanticCustomError("unknown_timezone", "{message}",
                                          {"message": problem[0], "hint": problem[1]})
        return v

    @model_validator(mode="after")
    def _distinct_columns(self) -> EventColumns:
        if self.max_staleness is not None:
            parse_days(self.max_staleness)
        names = [self.account, self.timestamp, *self.values]
        if self.user is not None:
            names.append(self.user)
        if self.event is not None:
            names.append(self.event)
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise PydanticCustomError(
                "duplicate_id",
                "event columns must be distinct; used twice: {dup}",
                {"dup": ", ".join(dup)},
            )
        return self


class AccountColumns(_Model):
    """The account frame: its key column and typed attributes usable in expressions."""

    key: str = Field("account_id", description="Column holding the account key.")
    attributes: dict[Id, AttributeType] = Field(
        default_factory=dict, description="Attribute columns and their types."
    )
    parent: str | None = Field(
        None,
        description="Column holding the key of the account's parent (account hierarchies, "
        "roll-up indicators); null for a top-level account. With dated accounts it is read "
        "from the row valid at each date. Omit when accounts have no parents.",
    )
    valid_from: str | None = Field(
        None, description="Type-2 history: the column holding the first day (Date) or instant "
        "(Datetime) a row is valid. Give it with valid_to; each account then has one row per "
        "version of its attributes, and every evaluation reads the row valid at its date.")
    valid_to: str | None = Field(
        None, description="Type-2 history: the column holding the day or instant a row stops "
        "being valid (exclusive); null while the row is still valid.")
    snapshot: str | None = Field(
        None, description="Snapshots: the column holding the date of the snapshot a row belongs "
        "to (one row per account per snapshot). A row is valid from its snapshot date until "
        "the next snapshot date of the frame; an account missing from a snapshot does not "
        "exist from that date.")


    @model_validator(mode="after")
    def _key_not_attribute(self) -> AccountColumns:
        if self.key in self.attributes:
            raise PydanticCustomError(
                "duplicate_id",
                "the account key '{key}' must not also be listed as an attribute",
                {"key": self.key},
            )
        if self.parent is not None and (self.parent == self.key or self.parent in self.attributes):
            raise PydanticCustomError(
                "duplicate_id",
                "the parent column '{parent}' must differ from the account key and from the "
                "attributes",
                {"parent": self.parent},
            )
        if (self.valid_from is None) != (self.valid_to is None):
            raise PydanticCustomError(
                "validity_invalid",
                "give valid_from and valid_to together (type-2 history), or snapshot alone",
                {})
        if self.snapshot is not None and self.valid_from is not None:
            raise PydanticCustomError(
                "validity_invalid",
                "give either valid_from/valid_to (type-2 history) or snapshot, not both", {})
        named = [c for c in (self.valid_from, self.valid_to, self.snapshot) if c is not None]
        for column in named:
            if column == self.key or column in self.attributes or named.count(column) > 1:
                raise PydanticCustomError(
                    "duplicate_id",
                    "the validity column '{column}' must not also be the key, an attribute or "
                    "another validity column", {"column": column})
        return self

    @property
    def validity(self) -> tuple[str, ...]:
        """The validity columns declared: ``(valid_from, valid_to)``, ``(snapshot,)`` or ``()``
        (one row per account, the same for every date)."""
        if self.valid_from is not None and self.valid_to is not None:
            return (self.valid_from, self.valid_to)
        if self.snapshot is not None:
            return (self.snapshot,)
        return ()


DEFAULT_SOURCE = "events"
"""The name of the one event source of a roadmap whose ``data.events`` declares its columns
directly (the form with no named sources)."""

_EVENT_FIELDS = frozenset(
    name for field, info in EventColumns.model_fields.items()
    for name in (field, info.alias) if name is not None)


def events_form(v: Any) -> str:
    """``columns`` (one source: the columns themselves) or ``sources`` (named sources)."""
    if isinstance(v, EventColumns):
        return "columns"
    if isinstance(v, dict):
        if v and not (set(v) & _EVENT_FIELDS) and all(
                isinstance(x, (dict, EventColumns)) for x in v.values()):
            return "sources"
    return "columns"


EventSources = Annotated[
    Annotated[EventColumns, Tag("columns")]
    | Annotated[
        Annotated[dict[Id, EventColumns], Field(min_length=1, max_length=32)], Tag("sources")],
    Discriminator(events_form),
]
"""``data.events``: the columns of the one events frame, or several named sources (a mapping
of source name to its columns; the first is the default source)."""


class DataContract(_Model):
    """What the event and account frames look like, so expressions can be checked up front.

    ``events`` declares the columns of the one events frame, or several named event sources
    (``{usage: {...}, tickets: {...}}``), each read from its own frame; an aggregate
    indicator names its ``source`` (default: the first).
    """

    events: EventSources = Field(
        default_factory=EventColumns,
        description="The columns of the events frame, or several named event sources "
        "(source name -> its columns; the first is the default source of indicators).",
    )
    accounts: AccountColumns = Field(default_factory=AccountColumns)

    @property
    def sources(self) -> dict[str, EventColumns]:
        """Every event source by name, the default first (one source named ``events`` when
        ``data.events`` declares the columns directly)."""
        if isinstance(self.events, EventColumns):
            return {DEFAULT_SOURCE: self.events}
        return dict(self.events)

    @property
    def named_sources(self) -> bool:
        """Whether ``data.events`` declares named sources (rather than one frame's columns)."""
        return not isinstance(self.events, EventColumns)

    @property
    def default_source(self) -> str:
        """The source an aggregate indicator without ``source:`` reads."""
        return next(iter(self.sources))

    @property
    def default_events(self) -> EventColumns:
        """The columns of the default source."""
        return next(iter(self.sources.values()))

    def source_path(self, source: str) -> str:
        """The YAML path of a source's columns (``data.events`` or ``data.events.<name>``)."""
        return f"data.events.{source}" if self.named_sources else "data.events"


# --------------------------------------------------------------------------- bands

_NUM = float | int


class Band(_Model):
    """One level of a banding: a name and a half-open or closed interval of values.

    Give at most one lower edge (``gt`` exclusive or ``ge`` inclusive) and at most one upper
    edge (``lt`` exclusive or ``le`` inclusive). ``score`` (0-100) is what a value in this band
    contributes to the health score; by default levels are spread evenly from worst (0) to
    best (100) following the bands' direction.
    """

    name: Id
    gt: _NUM | None = None
    ge: _NUM | None = None
    lt: _NUM | None = None
    le: _NUM | None = None
    score: float | None = Field(None, ge=0, le=100)
    description: str | None = None

    @field_validator("gt", "ge", "lt", "le")
    @classmethod
    def _exact_edge(cls, v: _NUM | None) -> _NUM | None:
        # edges compare as doubles (lower / upper): an int edge that is no double would be
        # read as another number (9007199254740993 as 9007199254740992.0)
        if isinstance(v, int) and not isinstance(v, bool):
            try:
                exact = float(v) == v
            except OverflowError:
                exact = False
            if not exact:
                raise PydanticCustomError(
                    "bands_invalid",
                    "band edge {value} is not exactly a double (edges compare as doubles; "
                    "integers are exact up to 2**53): write the double you mean",
                    {"value": str(v)})
        return v

    @model_validator(mode="after")
    def _one_edge_each_side(self) -> Band:
        if self.gt is not None and self.ge is not None:
            raise PydanticCustomError(
                "bands_invalid", "band '{name}' has both gt and ge; give one lower edge",
                {"name": self.name},
            )
        if self.lt is not None and self.le is not None:
            raise PydanticCustomError(
                "bands_invalid", "band '{name}' has both lt and le; give one upper edge",
                {"name": self.name},
            )
        lo, hi = self.lower, self.upper
        if lo is not None and hi is not None:
            empty = lo[0] > hi[0] or (lo[0] == hi[0] and not (lo[1] and hi[1]))
            if empty:
                raise PydanticCustomError(
                    "bands_invalid", "band '{name}' is empty: its lower edge is above its upper",
                    {"name": self.name},
                )
        return self

    @property
    def lower(self) -> tuple[float, bool] | None:
        """The lower edge as (value, inclusive), or None when unbounded below."""
        if self.ge is not None:
            return (float(self.ge), True)
        if self.gt is not None:
            return (float(self.gt), False)
        return None

    @property
    def upper(self) -> tuple[float, bool] | None:
        """The upper edge as (value, inclusive), or None when unbounded above."""
        if self.le is not None:
            return (float(self.le), True)
        if self.lt is not None:
            return (float(self.lt), False)
        return None

    def describe(self) -> str:
        """Render the interval, e.g. ``0.4 <= x < 0.7``."""
        lo, hi = self.lower, self.upper
        left = "" if lo is None else f"{number_text(lo[0])} {'<=' if lo[1] else '<'} "
        right = "" if hi is None else f" {'<=' if hi[1] else '<'} {number_text(hi[0])}"
        if not left and not right:
            return "any value"
        return f"{left}x{right}"


def number_text(v: float) -> str:
    """A cut point or a compared number as a message, a report or a chart shows it: a whole
    number as an int (``10``, not ``10.0``), any other as Python's shortest exact form
    (``0.3333333333333333``, never rounded to look shorter), and from 1e16 on as a float
    (``1e+308``, not a 309-digit integer)."""
    return str(int(v)) if float(v).is_integer() and abs(v) < 1e16 else repr(float(v))


class Bands(_Model):
    """Bands of an indicator or a score: levels listed from the lowest values to the highest.

    The levels must cover the whole number line with no gap and no overlap: the first has no
    lower edge, the last no upper edge, and each upper edge equals the next lower edge with
    exactly one of the two inclusive. ``direction`` says whether higher values are better.
    """

    direction: Literal["higher_is_better", "lower_is_better"] = "higher_is_better"
    levels: list[Band] = Field(min_length=2, max_length=12)

    @model_validator(mode="after")
    def _cover_the_line(self) -> Bands:
        names = [b.name for b in self.levels]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise PydanticCustomError(
                "duplicate_id",
                "band names must be unique; repeated: {dup}",
                {"dup": ", ".join(dup)},
            )
        first, last = self.levels[0], self.levels[-1]
        if first.lower is not None:
            raise PydanticCustomError(
                "bands_invalid",
                "the first band '{name}' must have no lower edge (list levels from low to high "
                "values, the first catching everything below the first cut point)",
                {"name": first.name},
            )
        if last.upper is not None:
            raise PydanticCustomError(
                "bands_invalid",
                "the last band '{name}' must have no upper edge",
                {"name": last.name},
            )
        for a, b in zip(self.levels, self.levels[1:], strict=False):
            up, lo = a.upper, b.lower
            if up is None or lo is None:
                raise PydanticCustomError(
                    "bands_invalid",
                    "bands '{a}' and '{b}' must meet at a cut point: give '{a}' an upper edge "
                    "(lt/le) and '{b}' a lower edge (ge/gt)",
                    {"a": a.name, "b": b.name},
                )
            if up[0] < lo[0]:
                raise PydanticCustomError(
                    "bands_invalid",
                    "gap between bands '{a}' and '{b}': values between {x} and {y} fall in no band",
                    {"a": a.name, "b": b.name, "x": number_text(up[0]), "y": number_text(lo[0])},
                )
            if up[0] > lo[0]:
                raise PydanticCustomError(
                    "bands_invalid",
                    "bands '{a}' and '{b}' overlap between {y} and {x}; cut points must be "
                    "listed in ascending order",
                    {"a": a.name, "b": b.name, "x": number_text(up[0]), "y": number_text(lo[0])},
                )
            if up[1] == lo[1]:
                what = "both include" if up[1] else "neither includes"
                raise PydanticCustomError(
                    "bands_invalid",
                    "at cut point {x}, bands '{a}' and '{b}' {what} the value: make exactly one "
                    "edge inclusive (lt with ge, or le with gt)",
                    {"a": a.name, "b": b.name, "x": number_text(up[0]), "what": what},
                )
        return self

    def ordered_worst_to_best(self) -> list[Band]:
        """Return the levels from the worst to the best, following ``direction``."""
        return list(self.levels if self.direction == "higher_is_better" else self.levels[::-1])

    def level_scores(self) -> dict[str, float]:
        """Return the 0-100 score of each level (explicit ``score`` or spread evenly)."""
        ordered = self.ordered_worst_to_best()
        n = len(ordered)
        return {
            b.name: (b.score if b.score is not None else 100.0 * i / (n - 1))
            for i, b in enumerate(ordered)
        }

    def cut_points(self) -> list[float]:
        """Return the cut points between adjacent levels, ascending."""
        return [b.lower[0] for b in self.levels[1:] if b.lower is not None]


# --------------------------------------------------------------------------- indicators

_DURATION = re.compile(r"^\s*(\d+)\s*([dw])\s*$")


def parse_days(value: Any) -> int:
    """Turn ``30``, ``"30d"`` or ``"4w"`` into a number of days."""
    if isinstance(value, bool):
        raise PydanticCustomError("window_invalid", "a duration must be like 30d or 4w", {})
    if isinstance(value, int):
        days = value
    elif isinstance(value, str) and (m := _DURATION.match(value)):
        days = int(m.group(1)) * (7 if m.group(2) == "w" else 1)
    else:
        raise PydanticCustomError(
            "window_invalid",
            "a duration must be a number of days or text like 30d or 4w, got '{value}'",
            {"value": value},
        )
    if not 1 <= days <= 36600:
        raise PydanticCustomError(
            "window_invalid", "a duration must be between 1 and 36600 days, got {days}",
            {"days": days},
        )
    return days


class Window(_Model):
    """Which events an aggregation sees, relative to ``as_of``.

    - trailing: ``{days: 30}`` (or the shorthand ``30d``): events in ``[end - 30 days, end)``;
    - anchored: ``{from: contract_start, days: 90}``: events in
      ``[contract_start, min(contract_start + 90 days, end))``; without ``days``, up to ``end``.
      ``from`` names a date/datetime attribute or an aggregate indicator whose value is a
      time (``first_time`` / ``last_time``), computed from the events first;
    - everything: ``all`` (the shorthand) or ``{}``: every event before ``end``.

    ``end`` is the instant of ``as_of`` (for a date, the midnight that ends that day).
    """

    days: int | None = None
    from_: Id | None = Field(
        None, alias="from",
        description="Where the window starts: a date/datetime account attribute, or an "
        "aggregate indicator whose value is a time (first_time, last_time).")

    @field_validator("days", mode="before", json_schema_input_type=int | str | None)
    @classmethod
    def _days(cls, v: Any) -> int | None:
        return None if v is None else parse_days(v)

    @property
    def kind(self) -> Literal["trailing", "anchored", "all"]:
        """``trailing``, ``anchored`` or ``all``."""
        if self.from_ is not None:
            return "anchored"
        return "trailing" if self.days is not None else "all"


def _window_before(v: Any) -> Any:
    if v == "all" or v is None:
        return {}
    if isinstance(v, (int, str)) and not isinstance(v, bool):
        return {"days": v}
    return v


class _IndicatorBase(_Model):
    id: Id
    title: str | None = None
    description: str | None = None
    family: Family
    unit: str | None = None
    bands: Bands | None = None
    missing: MissingPolicy | None = Field(
        None,
        description="When the indicator has no value, overrides score.missing for it: skip "
        "it (its weight is spread over the rest), count it as 50 (neutral) or as 0 (worst).",
    )


class AggregateIndicator(_IndicatorBase):
    """An indicator aggregated from usage events: ``aggregate`` over ``where`` in ``window``."""

    kind: Literal["events"] = "events"
    source: Id | None = Field(
        None, description="The event source to aggregate (a name declared under "
        "data.events); default: the first source.")
    aggregate: Aggregate
    of: str | None = Field(
        None,
        description="Column to aggregate: a value column for sum/mean/min/max, any event "
        "column for distinct (default: the user column).",
    )
    q: float | None = Field(
        None, ge=0, le=1,
        description=f"The percentile of `aggregate: percentile`, between 0 and 1 (0.9 is "
        f"p90), at most {Q_DECIMALS} decimals.",
    )
    where: ExprText | None = Field(None, description="Filter over event columns and attributes.")
    window: Annotated[Window, Field(description="Trailing, anchored or all.")] = Field(
        default_factory=Window
    )
    compare: Literal["none", "previous", "delta", "pct_change"] = Field(
        "none",
        description="Trend against the previous window of the same length: the previous "
        "value, the difference (current - previous) or the relative change.",
    )

    @field_validator(
        "window", mode="before", json_schema_input_type=int | str | Window | None
    )
    @classmethod
    def _window(cls, v: Any) -> Any:
        return _window_before(v)

    @field_validator("q", mode="before")
    @classmethod
    def _q_is_a_fraction(cls, v: Any) -> Any:
        if isinstance(v, (int, float)) and not isinstance(v, bool) and 1 < v <= 100:
            raise PydanticCustomError(
                "q_invalid", "q {q} is above 1: q is a fraction between 0 and 1 (write "
                "{fraction} for p{q})", {"q": f"{v:g}", "fraction": f"{v / 100:g}"})
        return v

    @model_validator(mode="after")
    def _consistent(self) -> AggregateIndicator:
        kind = AGGREGATE_KINDS[self.aggregate]
        if kind.of == "value" and self.of is None:
            raise PydanticCustomError(
                "missing_of",
                "aggregate '{agg}' needs `of:` naming a numeric value column",
                {"agg": self.aggregate},
            )
        if self.of is not None and kind.of == "refused":
            raise PydanticCustomError(
                "unexpected_of",
                "aggregate '{agg}' takes no `of:`",
                {"agg": self.aggregate},
            )
        if kind.q == "required" and self.q is None:
            raise PydanticCustomError(
                "missing_q",
                "aggregate '{agg}' needs `q:`, the percentile between 0 and 1 (0.9 for p90)",
                {"agg": self.aggregate},
            )
        if self.q is not None and kind.q != "required":
            raise PydanticCustomError(
                "unexpected_q",
                "aggregate '{agg}' takes no `q:`" + (
                    " (it is the percentile at 0.5)" if kind.q == "half" else
                    "; `q:` belongs to aggregate: percentile"),
                {"agg": self.aggregate},
            )
        if self.q is not None:
            try:
                q_units(self.q)
            except ValueError:
                raise PydanticCustomError(
                    "q_invalid", "q {q} has more than {n} decimals",
                    {"q": self.q, "n": Q_DECIMALS}) from None
        if self.compare != "none":
            if self.window.kind != "trailing":
                raise PydanticCustomError(
                    "window_invalid",
                    "compare: {compare} needs a trailing window (e.g. window: 30d), "
                    "so the previous window has the same length",
                    {"compare": self.compare},
                )
            if not kind.compare:
                raise PydanticCustomError(
                    "unexpected_compare",
                    "compare is not defined for '{agg}'",
                    {"agg": self.aggregate},
                )
        return self


class DerivedIndicator(_IndicatorBase):
    """An indicator computed by an expression over other indicators, attributes and ``as_of``.

    With ``compare``, the expression is also computed over the previous windows of the
    trailing aggregates it reads (all of the same length N, with ``as_of`` read N days
    earlier), and the indicator is that previous value, the difference or the relative change
    (docs/semantics.md, "Trends of derived indicators").
    """

    kind: Literal["derived"] = "derived"
    expr: ExprText
    compare: Literal["none", "previous", "delta", "pct_change"] = Field(
        "none",
        description="Trend against the previous window: the expression over the previous "
        "windows of the trailing aggregates it reads (all of one length), as the previous "
        "value, the difference (current - previous) or the relative change.",
    )


RollupAggregate = Literal[
    "sum", "mean", "weighted_mean", "min", "max", "count", "share", "worst_band"]
ROLLUP_AGGREGATES: tuple[RollupAggregate, ...] = (
    "sum", "mean", "weighted_mean", "min", "max", "count", "share", "worst_band")


class RollupIndicator(_IndicatorBase):
    """A parent-level indicator aggregated over the account's children (account hierarchies).

    ``of`` is evaluated on every child (an expression over the child's own indicators and
    attributes); ``aggregate`` combines the children's values: ``sum``, ``mean``,
    ``weighted_mean`` (by ``weight``), ``min``, ``max``, ``count`` / ``share`` (children whose
    ``of`` is true: their number, their fraction) or ``worst_band`` (``of`` names a banded
    indicator: the worst band among the children). Children are the rows whose parent column
    (``data.accounts.parent``) holds this account's key.
    """

    kind: Literal["rollup"]
    aggregate: RollupAggregate
    of: ExprText = Field(
        description="Expression evaluated on each child: a number (sum, mean, weighted_mean, "
        "min, max), a condition (count, share) or a banded indicator's id (worst_band).")
    weight: ExprText | None = Field(
        None, description="weighted_mean only: each child's weight (e.g. an attribute arr).")

    @model_validator(mode="after")
    def _weight_only_for_weighted_mean(self) -> RollupIndicator:
        if (self.aggregate == "weighted_mean") != (self.weight is not None):
            raise PydanticCustomError(
                "validation",
                "weighted_mean needs `weight:` (each child's weight); other aggregates take none"
                if self.aggregate == "weighted_mean" else
                "`weight:` is for aggregate: weighted_mean only",
                {},
            )
        if self.aggregate == "worst_band":
            if not re.match(ID_PATTERN, self.of.strip()):
                raise PydanticCustomError(
                    "validation",
                    "worst_band needs `of:` naming a banded indicator, got '{of}'",
                    {"of": self.of},
                )
            if self.bands is not None:
                raise PydanticCustomError(
                    "bands_invalid", "a worst_band roll-up is a band name; it takes no bands", {})
        return self


def _indicator_kind(v: Any) -> str:
    if isinstance(v, dict):
        if "kind" in v:
            return str(v["kind"])
        return "derived" if "expr" in v else "events"
    return str(getattr(v, "kind", "events"))


Indicator = Annotated[
    Annotated[AggregateIndicator, Tag("events")] | Annotated[DerivedIndicator, Tag("derived")]
    | Annotated[RollupIndicator, Tag("rollup")],
    Discriminator(_indicator_kind),
]


# --------------------------------------------------------------------------- stages and actions


class Task(_Model):
    """A task of a stage; ``done_when`` is an optional expression that says it is done."""

    text: str = Field(min_length=1)
    done_when: ExprText | None = None


def _task_before(v: Any) -> Any:
    if isinstance(v, str):
        return {"text": v}
    return v


class Tasks(_Model):
    """The three task lists of a stage: done together, by the customer, and by us."""

    joint: list[Annotated[Task, Field()]] = Field(default_factory=list)
    customer: list[Task] = Field(default_factory=list)
    ours: list[Task] = Field(default_factory=list)

    @field_validator(
        "joint", "customer", "ours", mode="before", json_schema_input_type=list[str | Task]
    )
    @classmethod
    def _strings(cls, v: Any) -> Any:
        if isinstance(v, list):
            return [_task_before(x) for x in v]
        return v


class Achievement(_Model):
    """The state that says a stage is done: text, and optionally an expression that checks it."""

    text: str = Field(min_length=1)
    when: ExprText | None = None


class Owner(_Model):
    """Who acts on an action: a role, and the named person read from an account attribute.

    ``owner: csm`` (a plain string) is the role alone. ``owner: {attribute: csm_email}``
    fills the actions frame's ``owner`` column per account with that attribute's value
    (``fallback`` when the account has none); ``role`` stays available as ``owner_role``.
    """

    role: str | None = Field(None, description="The role that acts: csm, sales, support, ...")
    attribute: Id | None = Field(
        None, description="An account attribute (declared in data.accounts.attributes) that "
        "holds the person who acts, e.g. csm_email.")
    fallback: str | None = Field(
        None, description="The owner when the account's attribute is empty (null).")

    @model_validator(mode="after")
    def _something(self) -> Owner:
        if self.role is None and self.attribute is None:
            raise PydanticCustomError(
                "owner_invalid", "an owner needs a role, an attribute, or both", {})
        if self.fallback is not None and self.attribute is None:
            raise PydanticCustomError(
                "owner_invalid", "fallback goes with attribute (the owner when the account's "
                "attribute is empty)", {})
        return self


_DUE_DURATION = re.compile(r"^\s*\d+\s*[A-Za-z]+\s*$")


class Action(_Model):
    """When ``when`` holds, do ``do``: a positive (opportunity) or challenge (risk) action."""

    id: Id
    kind: Literal["positive", "challenge"]
    title: str | None = None
    when: ExprText
    do: str = Field(
        min_length=1,
        description="Text of the action; {name} or {name:.1f} / {name:.0%} quote values.",
    )
    owner: Annotated[
        Annotated[str, Tag("str")] | Annotated[Owner, Tag("Owner")],
        Discriminator(lambda v: "str" if isinstance(v, str) else "Owner"),
    ] | None = Field(
        None, description="Role that acts (csm, sales, support, admin, ...), or "
        "{attribute: csm_email, role: csm} to name the person from an account attribute.")
    channel: str | None = Field(
        None, description="high-touch, low-touch, tech-touch, or free text (chosen by purpose)."
    )
    priority: Priority = "medium"
    resolved_when: ExprText | None = Field(
        None, description="Expression that closes the action; default: `when` no longer holds."
    )
    # ---- lifecycle across runs (history and the state store; docs/time.md)
    for_: int | None = Field(
        None, alias="for",
        description="Days the condition must keep holding before the action opens (pending "
        "until then), e.g. 7d.",
    )
    cooldown: int | None = Field(
        None, description="After the action resolves, it does not open again within this many "
        "days, e.g. 30d.",
    )
    hysteresis: Annotated[float, Field(ge=0)] | dict[Id, Annotated[float, Field(ge=0)]] | None = (
        Field(
            None,
            description="Margin a value must move back past a threshold of `when` before the "
            "action resolves, so a value hovering at the threshold does not flap: one number "
            "for every comparison with a number, or a margin per name.",
        )
    )
    escalate_after: int | None = Field(
        None, description="An action still open this many days after it opened (or after "
        "its due date, with escalate_from: due) is escalated (once), e.g. 14d.",
    )
    due: int | str | None = Field(
        None, description="When the action is due: a duration from the day it opens (3d, "
        "2w), or an expression giving a date (renewal_date). Shown as due_date.",
    )
    escalate_from: Literal["opened", "due"] = Field(
        "opened", description="What escalate_after counts from: the day the action opened, "
        "or its due date (default escalate_after then 1d: escalated once overdue).",
    )

    @field_validator(
        "for_", "cooldown", "escalate_after", mode="before",
        json_schema_input_type=int | str | None,
    )
    @classmethod
    def _lifecycle_days(cls, v: Any) -> int | None:
        return None if v is None else parse_days(v)

    @field_validator("due", mode="before")
    @classmethod
    def _due(cls, v: Any) -> Any:
        if v is None:
            return None
        if isinstance(v, bool):
            raise PydanticCustomError(
                "due_invalid", "due must be a duration like 3d or 2w, or an expression giving "
                "a date", {})
        if isinstance(v, int) or (isinstance(v, str) and _DUE_DURATION.match(v)):
            return parse_days(v)
        if isinstance(v, str) and v.strip():
            return v
        raise PydanticCustomError(
            "due_invalid", "due must be a duration like 3d or 2w, or an expression giving a "
            "date, got {value!r}", {"value": v})

    @property
    def due_days(self) -> int | None:
        """Days from the opening to the due date (``due: 3d``), or None."""
        return self.due if isinstance(self.due, int) else None

    @property
    def due_expr(self) -> str | None:
        """The expression giving the due date (``due: renewal_date``), or None."""
        return self.due if isinstance(self.due, str) else None

    @property
    def owner_role(self) -> str | None:
        """The role that acts (``owner: csm`` or ``owner.role``)."""
        return self.owner.role if isinstance(self.owner, Owner) else self.owner

    @property
    def owner_attribute(self) -> str | None:
        """The account attribute naming the person who acts, or None."""
        return self.owner.attribute if isinstance(self.owner, Owner) else None

    @property
    def escalate_days(self) -> int | None:
        """``escalate_after`` as it applies: 1 with ``escalate_from: due`` when not given."""
        if self.escalate_after is None and self.escalate_from == "due":
            return 1
        return self.escalate_after

    @model_validator(mode="after")
    def _one_way_to_resolve(self) -> Action:
        if self.escalate_from == "due" and self.due is None:
            raise PydanticCustomError(
                "due_invalid",
                "action '{id}' escalates from its due date but has no due: give due (e.g. 3d)",
                {"id": self.id})
        if self.hysteresis is not None and self.resolved_when is not None:
            raise PydanticCustomError(
                "unexpected_hysteresis",
                "action '{id}' has both resolved_when and hysteresis; give one (resolved_when "
                "already says when it closes)",
                {"id": self.id},
            )
        return self


class Stage(_Model):
    """One row of the success roadmap: a lifecycle stage and what happens in it."""

    id: Id
    title: str | None = None
    description: str | None = None
    entry: ExprText | None = Field(
        None, description="Entry criterion; the first stage whose entry holds is the account's."
    )
    achievement: Achievement | None = None
    tasks: Tasks = Field(default_factory=Tasks)
    actions: list[Action] = Field(default_factory=list)

    @field_validator(
        "achievement", mode="before", json_schema_input_type=str | Achievement | None
    )
    @classmethod
    def _achievement_text(cls, v: Any) -> Any:
        return {"text": v} if isinstance(v, str) else v


# --------------------------------------------------------------------------- score


MAX_WEIGHT_TOTAL = 1e300
"""The largest total of one set of score weights (indicators or families): 100 times it, the
largest weighted sum of band scores, is a finite double."""


class Weights(_Model):
    """Weights of indicators and/or families. Only ratios matter (3/2/1 works)."""

    indicators: dict[Id, Annotated[float, Field(ge=0)]] = Field(default_factory=dict)
    families: dict[Family, Annotated[float, Field(ge=0)]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _not_all_zero(self) -> Weights:
        for what, ws in (("indicators", self.indicators), ("families", self.families)):
            if ws and not any(w > 0 for w in ws.values()):
                raise PydanticCustomError(
                    "weights_invalid", "the {what} weights are all zero", {"what": what}
                )
            # the score's weighted sums (band scores up to 100 times the weights) must stay
            # finite: a total beyond this would make a score inf or NaN
            total = sum(ws.values())  # inf when it overflows: refused too
            if total > MAX_WEIGHT_TOTAL:
                raise PydanticCustomError(
                    "weights_invalid",
                    "the {what} weights add up to {total}: at most 1e300 (only their ratios "
                    "matter; larger ones would overflow the score's weighted sums)",
                    {"what": what, "total": f"{total:g}"})
        return self

    @property
    def empty(self) -> bool:
        """True when neither indicator nor family weights are given."""
        return not self.indicators and not self.families


class StageScore(_Model):
    """Per-stage override of the score weights (onboarding is scored differently)."""

    weights: Weights


class ScoreSegment(_Model):
    """A segment of the score: its own weights and band cut points for the accounts it applies to.

    The first segment whose ``applies_to`` holds scores the account. Weights are taken from
    the most specific set given: the segment's weights for the account's stage, then the
    segment's ``weights``, then the roadmap's weights for the stage, then the roadmap's.
    ``bands`` replaces the score's bands for the segment's accounts.
    """

    id: Id
    title: str | None = None
    applies_to: ExprText = Field(
        description="Which accounts this segment scores (attributes and indicators).")
    weights: Weights = Field(default_factory=Weights)
    stages: dict[Id, StageScore] = Field(
        default_factory=dict, description="Per-stage weights inside this segment.")
    bands: Bands | None = None


class ScoreSpec(_Model):
    """The health score: a 0-100 weighted mean of the scores of banded indicators.

    Each banded indicator scores its band's score (0-100). With family weights, each family's
    score is the indicator-weighted mean of its indicators, and the total the family-weighted
    mean of the families. Without family weights, the total is the indicator-weighted mean.
    """

    title: str | None = None
    weights: Weights = Field(default_factory=Weights)
    missing: MissingPolicy = Field(
        "skip",
        description="An indicator with no value: skip it and spread its weight over the rest "
        "(skip), count it as 50 (neutral), or as 0 (worst); an indicator's own `missing:` "
        "overrides this for it.",
    )
    bands: Bands | None = None
    stages: dict[Id, StageScore] = Field(default_factory=dict)
    segments: list[ScoreSegment] = Field(
        default_factory=list, max_length=32,
        description="Segments in order: the first whose applies_to holds scores the account "
        "with its weights and bands (see docs/semantics.md).")

    @model_validator(mode="after")
    def _unique_segments(self) -> ScoreSpec:
        names = [s.id for s in self.segments]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise PydanticCustomError(
                "duplicate_id", "segment ids must be unique; repeated: {dup}",
                {"dup": ", ".join(dup)})
        return self

    def segment(self, segment_id: str) -> ScoreSegment:
        """Return the segment with this id."""
        for seg in self.segments:
            if seg.id == segment_id:
                return seg
        raise KeyError(segment_id)

    def weights_for(self, segment: str | None, stage: str | None) -> Weights:
        """The weights that score an account of this segment (or None) in this stage."""
        if segment is not None:
            seg = self.segment(segment)
            if stage is not None and stage in seg.stages:
                return seg.stages[stage].weights
            if not seg.weights.empty:
                return seg.weights
        if stage is not None and stage in self.stages:
            return self.stages[stage].weights
        return self.weights

    def bands_for(self, segment: str | None) -> Bands | None:
        """The score bands of an account of this segment (or None)."""
        if segment is not None:
            seg = self.segment(segment)
            if seg.bands is not None:
                return seg.bands
        return self.bands


# --------------------------------------------------------------------------- roadmap


class Goal(_Model):
    """The customer's success (KGI), as text, optionally tied to an outcome indicator."""

    text: str = Field(min_length=1)
    perspective: Literal["financial", "customer", "internal_process", "learning_growth"] | None = (
        None
    )
    indicator: Id | None = None
    target: str | None = Field(None, description="Expression that says the goal is reached.")


class Import(_Model):
    """Indicators imported from a library file (path relative to the importing file)."""

    path: str = Field(min_length=1)
    indicators: list[Id] | None = Field(None, description="Only these (default: all).")


class LintSettings(_Model):
    """Per-file lint settings: check ids or names to switch off for this file."""

    disable: list[str] = Field(default_factory=list)


class Roadmap(_Model):
    """A success roadmap: goal, data contract, indicators, ordered stages, actions, score."""

    kind: Literal["roadmap"] = "roadmap"
    id: Id
    version: str = "1"
    title: str | None = None
    description: str | None = None
    goal: Goal
    applies_to: ExprText | None = Field(
        None, description="Which accounts this roadmap (track) applies to; default: all."
    )
    data: DataContract = Field(default_factory=DataContract)
    imports: list[Import] = Field(default_factory=list)
    indicators: list[Indicator] = Field(default_factory=list)
    stages: list[Stage] = Field(min_length=1)
    actions: list[Action] = Field(
        default_factory=list, description="Actions that apply in every stage."
    )
    score: ScoreSpec = Field(default_factory=ScoreSpec)
    lint: LintSettings = Field(
        default_factory=LintSettings,
        description="Lint checks switched off for this file (healthrules lint).",
    )

    @field_validator("goal", mode="before", json_schema_input_type=str | Goal)
    @classmethod
    def _goal_text(cls, v: Any) -> Any:
        return {"text": v} if isinstance(v, str) else v

    # filled by the loader: where the file came from (not part of the format)
    source: str | None = Field(None, exclude=True, description="(set by the loader)")

    def indicator(self, indicator_id: str) -> (
            AggregateIndicator | DerivedIndicator | RollupIndicator):
        """Return the indicator with this id."""
        for ind in self.indicators:
            if ind.id == indicator_id:
                return ind
        raise KeyError(indicator_id)

    def stage(self, stage_id: str) -> Stage:
        """Return the stage with this id."""
        for st in self.stages:
            if st.id == stage_id:
                return st
        raise KeyError(stage_id)

    def all_actions(self) -> list[tuple[Stage | None, Action]]:
        """Return every action with its stage (None for roadmap-wide actions), in order."""
        out: list[tuple[Stage | None, Action]] = []
        for st in self.stages:
            out.extend((st, a) for a in st.actions)
        out.extend((None, a) for a in self.actions)
        return out

    def _repr_html_(self) -> str:
        from healthrules._display import html

        return html(self)


class IndicatorLibrary(_Model):
    """A file of indicators shared by several roadmaps (``kind: library``)."""

    kind: Literal["library"]
    id: Id
    title: str | None = None
    description: str | None = None
    indicators: list[Indicator] = Field(min_length=1)


class Pack(_Model):
    """Several roadmaps (tracks); each account is routed to the first whose applies_to holds."""

    kind: Literal["pack"]
    id: Id
    title: str | None = None
    description: str | None = None
    roadmaps: list[str] = Field(min_length=1, description="Roadmap files, in routing order.")

    source: str | None = Field(None, exclude=True)
    loaded: list[Roadmap] = Field(default_factory=list, exclude=True)

    def _repr_html_(self) -> str:
        from healthrules._display import html

        return html(self)
