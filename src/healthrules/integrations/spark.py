"""Evaluate a roadmap over Spark DataFrames: the same compiled plan, run by polars per partition.

:func:`evaluate` takes Spark DataFrames of events and accounts and returns Spark DataFrames with
the columns and types of :func:`healthrules.evaluate`'s frames. How it works:

1. **On the driver**, the roadmap is compiled once to a :class:`~healthrules.Plan`. The frames'
   schemas are checked against the plan's data contract (the same checks and messages as the
   polars engine), and the time range the plan reads (:func:`healthrules.engine.read_range`)
   is applied to the events as a Spark filter, so Spark's own scan pushdown and partition
   pruning see it and no event outside it is shuffled.
2. The events (the declared columns only) and the accounts (key and declared attributes) are
   put in one DataFrame, a tagged union with a ``__tag`` column, and repartitioned by the
   account key: every event of an account lands in the partition of that account's row,
   accounts without events included. With an account hierarchy (``data.accounts.parent``)
   the key is that of the account's root (:class:`_Roots`), so every tree lands whole in
   one partition and its roll-ups read all its children.
3. **In the executors**, ``mapInArrow`` hands each partition to one Python call as Arrow record
   batches. The call builds the polars events and accounts frames from them (no per-row
   Python), runs :func:`healthrules.evaluate` with the plan, and yields the result frames as
   Arrow batches of one tagged union schema (``__frame`` says which frame a row belongs to).
   The plan travels pickled inside the task closure (one ``bytes`` value, sent once per task
   and unpickled once per Python worker): nothing is parsed or compiled per partition.
4. The tagged result is persisted (evaluated once) and split into the ``indicators``,
   ``stages``, ``scores`` and ``actions`` DataFrames. ``conditions`` and ``diagnostics`` are
   per-partition counts, summed by a small ``groupBy``.

Because an evaluation is a pure function of each account's rows (``docs/semantics.md``), the
union of the partitions' results equals the polars result row for row; the test suite checks
it (``tests/test_spark.py``). See ``docs/scale.md`` for the cluster recipe.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import functools
import hashlib
import json
import os
import pickle
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa  # type: ignore[import-untyped]

from healthrules.compiler import Plan, compile
from healthrules.engine import evaluate as _evaluate_polars
from healthrules.engine import read_range
from healthrules.engine.aggregate import read_source
from healthrules.errors import EvaluationError, InputDataError, Issue, Location, Severity
from healthrules.inputs import (
    account_validity,
    accounts_at,
    check_accounts,
    clock_for,
    hierarchy_issues,
    is_dated,
    zoned_wall_time,
)
from healthrules.integrations._optional import import_optional
from healthrules.query_flags import OPTIMISED
from healthrules.roadmap import AggregateIndicator, Pack, Roadmap

import_optional("pyspark.sql", extra="spark", purpose="healthrules.integrations.spark")
# mapInArrow goes through pyspark's pandas UDF machinery, which refuses to start without pandas
import_optional("pandas", extra="spark", purpose="Spark's mapInArrow")

from pyspark import StorageLevel  # noqa: E402
from pyspark.sql import DataFrame  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402
from pyspark.sql import types as T  # noqa: E402

__all__ = ["FRAMES", "SparkEvaluation", "evaluate", "input_errors", "spark_schema"]

FRAMES = ("indicators", "stages", "scores", "actions")
"""The per-account result frames, in the order of :attr:`healthrules.Evaluation.frames`."""

_COUNTED = ("conditions", "diagnostics")
_TAG = "__tag"
_KEY = "__key"
_FRAME = "__frame"
_ACCOUNT, _EVENT = 0, 1  # the events of source j (in plan order) are tagged _EVENT + j


# ---------------------------------------------------------------------- public API


@dataclass(frozen=True)
class SparkEvaluation:
    """The result of :func:`evaluate`: Spark DataFrames with the polars result's columns.

    Attributes
    ----------
    indicators, stages, scores, actions
        The per-account frames, with the columns and types of the frames of the same names of
        :class:`healthrules.Evaluation` (unordered: Spark DataFrames have no row order).
    conditions
        Per roadmap and action: ``considered``, ``fired`` and ``unknown``, summed over the
        partitions.
    diagnostics
        ``name`` and ``value``: the counts of :attr:`healthrules.Evaluation.diagnostics`
        (dropped events, unknown accounts, ...), summed over the partitions.
    as_of
        The evaluation date.
    account_key
        The account key column.
    tagged
        The persisted tagged union every frame above is selected from; :meth:`unpersist`
        releases it.
    """

    indicators: DataFrame
    stages: DataFrame
    scores: DataFrame
    actions: DataFrame
    conditions: DataFrame
    diagnostics: DataFrame
    as_of: dt.date
    account_key: str
    tagged: DataFrame
    time_zone: str | None = None
    columns: dict[str, list[str]] = field(default_factory=dict, repr=False)
    skeleton: pl.DataFrame = field(default_factory=pl.DataFrame, repr=False)

    @property
    def frames(self) -> dict[str, DataFrame]:
        """The output frames by name, as :attr:`healthrules.Evaluation.frames`."""
        return {"indicators": self.indicators, "stages": self.stages, "scores": self.scores,
                "actions": self.actions, "conditions": self.conditions}

    def diagnostics_dict(self) -> dict[str, int]:
        """Collect the diagnostics (a few rows per partition) as ``{name: count}``."""
        with input_errors():
            rows = _from_arrow(self.tagged.where(F.col(_FRAME) == "diagnostics").select(
                F.col("diagnostics__name").alias("name"),
                F.col("diagnostics__value").alias("value")).toArrow())
        totals = dict(rows.group_by("name").agg(pl.col("value").sum()).iter_rows())
        return {name: int(totals.get(name, 0)) for name in self.columns["diagnostic_names"]}

    def to_polars(self) -> dict[str, pl.DataFrame]:
        """Collect every frame to the driver as polars, sorted as the polars engine sorts.

        Only for results that fit on the driver (tests, small runs): write large results with
        :meth:`write` instead. Timestamps come back in the events' time zone.

        Returns
        -------
        dict[str, polars.DataFrame]
            ``indicators``, ``stages``, ``scores``, ``actions``, ``conditions`` and
            ``diagnostics`` (``name``, ``value``), from one Spark job.

        Raises
        ------
        InputDataError
            When a partition refused its rows (see :func:`input_errors`).
        EvaluationError
            When a partition could not evaluate the plan (see :func:`input_errors`).
        """
        key = self.account_key
        # one job: collect the tagged union, then split (and sum the counts) with polars
        with input_errors():
            rows = _to_zone(_from_arrow(self.tagged.toArrow()), self.time_zone)
        out: dict[str, pl.DataFrame] = {}
        for name in (*FRAMES, "conditions"):
            df = rows.filter(pl.col(_FRAME) == name).select(
                [pl.col(f"{name}__{c}").alias(c) for c in self.columns[name]])
            if name == "conditions":
                counts = ["considered", "fired", "unknown"]
                df = pl.concat([self.skeleton, df]).group_by(
                    "roadmap", "stage", "action_id").agg(pl.col(counts).sum()).select(
                    self.columns[name]).sort("roadmap", "stage", "action_id", nulls_last=True)
            elif name == "actions":
                df = df.sort(key, "roadmap", "action_id", nulls_last=True)
            else:
                df = df.sort(key, "roadmap", nulls_last=True)
            out[name] = df
        diag = rows.filter(pl.col(_FRAME) == "diagnostics").group_by("diagnostics__name").agg(
            pl.col("diagnostics__value").sum())
        totals = dict(diag.iter_rows())
        names = self.columns["diagnostic_names"]
        out["diagnostics"] = pl.DataFrame(
            {"name": names, "value": [int(totals.get(n, 0)) for n in names]},
            schema={"name": pl.String, "value": pl.Int64})
        return out

    def write(self, path: str | Path, *, mode: str = "errorifexists",
              format: str = "parquet") -> list[str]:
        """Write each frame (and ``diagnostics``) to ``<path>/<frame>`` with Spark's writer.

        Each frame is one Spark write job; Spark's output committer makes each folder appear
        whole (with a ``_SUCCESS`` marker) or not at all.

        Parameters
        ----------
        path
            A folder any executor can write to (``dbfs:/...``, ``s3://...``, a local path in
            local mode).
        mode
            Spark's save mode: ``errorifexists`` (the default), ``overwrite``, ...
        format
            Any format Spark writes: ``parquet`` (the default), ``delta``, ``json``, ...

        Returns
        -------
        list[str]
            The folders written.

        Raises
        ------
        InputDataError
            When a partition refused its rows (see :func:`input_errors`).
        EvaluationError
            When a partition could not evaluate the plan (see :func:`input_errors`).
        """
        base = str(path).rstrip("/")
        written = []
        for name, frame in {**self.frames, "diagnostics": self.diagnostics}.items():
            target = f"{base}/{name}"
            with input_errors():
                frame.write.mode(mode).format(format).save(target)
            written.append(target)
        return written

    def unpersist(self) -> None:
        """Release the cached evaluation (the frames are recomputed if used again)."""
        self.tagged.unpersist()


def evaluate(
    source: Roadmap | Pack | Plan | str | os.PathLike[str],
    events: DataFrame | Mapping[str, DataFrame],
    accounts: DataFrame,
    as_of: dt.date | dt.datetime | str,
    *,
    partitions: int | None = None,
    partition_column: str | Mapping[str, str] | None = None,
    persist: bool = True,
) -> SparkEvaluation:
    """Evaluate a roadmap (or pack) over Spark DataFrames, partition by partition, with polars.

    Parameters
    ----------
    source
        A roadmap or pack file path, a loaded :class:`~healthrules.Roadmap` or
        :class:`~healthrules.Pack`, or a compiled :class:`~healthrules.Plan`. It is compiled
        once, on the driver.
    events
        Usage events with the columns of the roadmap's ``data.events``. A ``TimestampType``
        timestamp is read in the declared ``data.events.timezone`` (when the roadmap declares
        none, as the wall time of the session time zone that Spark shows: Spark casts it to
        ``TimestampNTZ``, as ``datetime`` attributes); a ``TimestampNTZType`` one is read as
        wall time in the declared zone. When ``data.events`` declares named event
        sources, a dict of one DataFrame per source (a single DataFrame is the default
        source); each source's read range is applied to it, and its events travel to the
        partition of their account with the others.
    accounts
        One row per account: the key and the declared attributes. With validity columns
        declared (``data.accounts.valid_from``/``valid_to`` or ``snapshot``), one row per
        account and version, as for :func:`healthrules.evaluate`: every row of an account
        goes to that account's partition, which evaluates the row valid at ``as_of``.
    as_of
        As in :func:`healthrules.evaluate`.
    partitions
        Number of partitions to hash the accounts into (default: Spark's
        ``spark.sql.shuffle.partitions``). One partition's events are held in one executor's
        memory while it is evaluated: choose enough partitions to keep each small.
    partition_column
        A ``DateType`` (or ISO date string) column of the events by which the event store is
        partitioned; the read range is applied to it too, so Spark prunes the folders outside
        it (as :func:`healthrules.evaluate`'s option of the same name; with several
        sources, a name applies to every source, a dict to the sources it names).
    persist
        Cache the evaluation (memory and disk) so that using several result frames evaluates
        once. Release it with :meth:`SparkEvaluation.unpersist`.

    Returns
    -------
    SparkEvaluation
        Spark DataFrames ``indicators``, ``stages``, ``scores``, ``actions``, ``conditions``
        and ``diagnostics``.

    Raises
    ------
    InputDataError
        If the frames' columns or types do not match the data contract (checked on the
        driver, before any job). Problems of the rows (null or duplicate keys, overlapping
        dated rows, an account's summed values out of the exact range) are found inside the
        executors, when a job runs: :meth:`SparkEvaluation.to_polars`, ``write`` and
        ``diagnostics_dict`` then raise the polars engine's ``InputDataError`` (wrap your
        own actions in :func:`input_errors` for the same). With an
        account hierarchy, parents that are not accounts and cycles of parents are found on
        the driver (small jobs over the accounts, before the events are read) and raised
        with the polars engine's message.
    RoadmapError
        If the roadmap does not compile.
    """
    if isinstance(source, (str, os.PathLike)):
        from healthrules import load

        source = load(Path(source))
    plan = compile(source)
    given = _source_frames(plan, events)
    spark = given[plan.default_source].sparkSession
    ev_cols = {name: _event_columns(plan, name) for name in plan.sources}
    validity = list(account_validity(plan))
    acc_cols = [plan.account_key, *plan.attributes, *plan.parent_columns, *validity]
    parts: dict[str, str | None] = {
        name: (partition_column.get(name) if isinstance(partition_column, Mapping)
               else partition_column) for name in plan.sources}
    for name, sdf in given.items():
        what = "events" if not plan.named_sources else f"events of source {name!r}"
        _require(sdf, ev_cols[name], what)
        part = parts[name]
        if part is not None:
            _require(sdf, [part], what)

    _require(accounts, acc_cols, "accounts")
    # an instant (TimestampType) read by a clock without a zone is the wall time of the
    # session zone: Spark's own conversion makes it (Java's zone rules, any zone form Spark
    # accepts), so the partitions read the wall times Spark shows, and polars never reads
    # the session zone's rules (docs/semantics.md, "Time", Spark)
    given = {name: _session_wall_times(sdf, [plan.sources[name].timestamp]
                                       if plan.sources[name].timezone is None else [])
             for name, sdf in given.items()}
    if plan.events.timezone is None:
        accounts = _session_wall_times(accounts, list(_timestamp_columns(plan)))
    session_zone = _readable_zone(spark.conf.get("spark.sql.session.timeZone") or "UTC")
    conv = _Conversion(ts_columns=_timestamp_columns(plan), zone=plan.events.timezone)
    convs = {name: _Conversion(ts_columns=(plan.sources[name].timestamp,),
                               zone=plan.sources[name].timezone)
             for name in plan.sources}

    # driver-side check of the contract and the read range, on the schemas (no job) and,
    # with anchored windows, the smallest anchor of the accounts (all read_range needs)
    empty_events = {name: convs[name].apply(_empty(given[name].select(ev_cols[name]),
                                                   session_zone))
                    for name in plan.sources}
    acc_min = acc_contract = conv.apply(_empty(accounts.select(acc_cols), session_zone))
    read_range(plan, empty_events, acc_min, as_of)  # the contract check, before any job
    # (a window that starts at an indicator's time is computed inside the partition, from
    # the account's own events, which the partition holds)
    anchors = sorted({ind.window.from_ for cr in plan.roadmaps for ind in cr.roadmap.indicators
                      if isinstance(ind, AggregateIndicator) and ind.window.from_ is not None
                      and ind.window.from_ in plan.attributes})
    if anchors:
        minima = accounts.select([F.min(F.col(c)).alias(c) for c in acc_cols])
        acc_min = conv.apply(_from_arrow(minima.toArrow())).filter(
            pl.col(plan.account_key).is_not_null())
        if plan.parent is not None:  # the one row has no parent (the smallest key and the
            # smallest parent may be the same account: a row that names itself)
            acc_min = acc_min.with_columns(
                pl.lit(None, acc_min.schema[plan.parent]).alias(plan.parent))
        if validity:  # over every dated row: the one row stands for all, valid at any date
            acc_min = acc_min.with_columns(
                pl.lit(dt.date.min, acc_min.schema[validity[0]]).alias(validity[0]),
                *[pl.lit(None, acc_min.schema[c]).alias(c) for c in validity[1:]])
    empty = _evaluate_polars(plan, empty_events, acc_min.clear(), as_of)

    # the events each source reads, tagged and unioned with the accounts, partitioned by key
    # (with a hierarchy: by the key of the account's root, so that every tree is whole)
    key_type = given[plan.default_source].schema[plan.events.account].dataType
    roots: _Roots | None = None
    if plan.parent is not None:
        roots = _Roots.of(plan, accounts, key_type, conversion=conv,
                          contract=acc_contract,
                          events_schema=empty_events[plan.default_source].schema, as_of=as_of)
    tagged_parts: list[DataFrame] = []
    ranges: dict[str, tuple[dt.datetime | None, dt.datetime]] = {}
    for j, name in enumerate(plan.sources):
        sdf, cols = given[name], plan.sources[name]
        start, end = read_range(plan, empty_events, acc_min, as_of, event_source=name)
        # the exact range (naive wall times of the evaluation clock), for the event counts
        ranges[name] = (None if start is None else start.replace(tzinfo=None),
                        end.replace(tzinfo=None))
        if start is not None and plan.sources[name].timezone != plan.events.timezone:
            start = start.astimezone(_zone(plan.sources[name].timezone))
        if plan.sources[name].timezone != plan.events.timezone:
            end = end.astimezone(_zone(plan.sources[name].timezone))
        ts = F.col(cols.timestamp)
        ntz = isinstance(sdf.schema[cols.timestamp].dataType, T.TimestampNTZType)
        if isinstance(sdf.schema[cols.timestamp].dataType, T.DateType):
            day = F.col(cols.timestamp)
            keep = day < F.lit((end.date() + dt.timedelta(days=1)).isoformat()).cast("date")
            if start is not None:
                keep = keep & (day >= F.lit(
                    (start.date() - dt.timedelta(days=1)).isoformat()).cast("date"))
        else:  # no zone rules of Spark's (Java's) cut (_spark_bound): the exact instants,
            # or, where a wall time is read, a range wider by _MARGIN that the engine cuts
            margin = _MARGIN if ntz or end.tzinfo is None else dt.timedelta(0)
            keep = F.lit(True)
            high = _spark_bound(end, ntz, margin)
            if high is not None:
                keep = ts < high
            low = None if start is None else _spark_bound(start, ntz, -margin)
            if low is not None:
                keep = keep & (ts >= low)
        picked = sdf.where(keep | ts.isNull())
        part = parts[name]
        if part is not None:
            picked = picked.where(_spark_partition_filter(picked, part, start, end))
        picked = picked.select(
            F.lit(_EVENT + j).cast("tinyint").alias(_TAG),
            F.col(cols.account).cast(key_type).alias(_KEY),
            *[F.col(c).alias(f"__e{j}_{i}") for i, c in enumerate(ev_cols[name])],
        )
        tagged_parts.append(picked if roots is None else roots.rekey(picked))
    acc_part = accounts.select(
        F.lit(_ACCOUNT).cast("tinyint").alias(_TAG),
        F.col(plan.account_key).cast(key_type).alias(_KEY),
        *[F.col(c).alias(f"__a{i}") for i, c in enumerate(acc_cols)],
    )
    if roots is not None:
        acc_part = roots.rekey(acc_part)
    ev_part = tagged_parts[0]
    for other in tagged_parts[1:]:
        ev_part = ev_part.unionByName(other, allowMissingColumns=True)
    union = ev_part.unionByName(acc_part, allowMissingColumns=True)
    union = union.repartition(partitions, _KEY) if partitions else union.repartition(_KEY)

    # one tagged output schema for every result frame
    columns = {name: list(empty.frames[name].columns) for name in FRAMES}
    columns["conditions"] = list(empty.conditions.columns)
    columns["diagnostics"] = ["name", "value"]
    out_fields = [T.StructField(_FRAME, T.StringType(), False)]
    for name in (*FRAMES, "conditions"):
        frame = empty.frames[name]
        out_fields += [T.StructField(f"{name}__{c}", spark_type(frame.schema[c]), True)
                       for c in frame.columns]
    out_fields += [T.StructField("diagnostics__name", T.StringType(), True),
                   T.StructField("diagnostics__value", T.LongType(), True)]
    out_schema = T.StructType(out_fields)

    job = _Job(plan=plan, as_of=as_of,
               events=tuple((name, tuple(ev_cols[name])) for name in plan.sources),
               accounts=tuple(acc_cols), conversion=conv,
               source_conversions=tuple(convs[name] for name in plan.sources),
               columns=columns, arrow_schema=_arrow_schema(out_schema),
               ranges=tuple(ranges[name] for name in plan.sources))
    payload = pickle.dumps(job, protocol=pickle.HIGHEST_PROTOCOL)
    tagged = union.mapInArrow(functools.partial(_run_partition, payload), out_schema)
    if persist:
        tagged = tagged.persist(StorageLevel.MEMORY_AND_DISK)

    def pick(name: str) -> DataFrame:
        return tagged.where(F.col(_FRAME) == name).select(
            [F.col(f"{name}__{c}").alias(c) for c in columns[name]])

    cond_keys = ["roadmap", "stage", "action_id"]
    skeleton_c = spark.createDataFrame(empty.conditions.rows(), spark_schema(empty.conditions))
    conditions = pick("conditions").unionByName(skeleton_c).groupBy(cond_keys).agg(
        *[F.sum(c).cast("bigint").alias(c) for c in ("considered", "fired", "unknown")])
    skeleton_d = spark.createDataFrame(
        [(k, 0) for k in empty.diagnostics], T.StructType([
            T.StructField("name", T.StringType(), False),
            T.StructField("value", T.LongType(), False)]))
    diagnostics = pick("diagnostics").unionByName(skeleton_d).groupBy("name").agg(
        F.sum("value").cast("bigint").alias("value"))
    return SparkEvaluation(
        indicators=pick("indicators"), stages=pick("stages"), scores=pick("scores"),
        actions=pick("actions"), conditions=conditions, diagnostics=diagnostics,
        as_of=empty.as_of, account_key=plan.account_key, tagged=tagged,
        time_zone=plan.events.timezone,
        columns={**columns, "diagnostic_names": list(empty.diagnostics)},
        skeleton=empty.conditions,
    )


def spark_type(dtype: pl.DataType) -> T.DataType:
    """The Spark type of a polars dtype of a result frame.

    Parameters
    ----------
    dtype
        A polars dtype: strings, integers, floats, booleans, dates, datetimes, lists and
        structs of them.

    Returns
    -------
    pyspark.sql.types.DataType

    Raises
    ------
    TypeError
        For a dtype without a Spark counterpart here.

    Examples
    --------
    >>> import polars as pl
    >>> spark_type(pl.List(pl.Struct({"name": pl.String, "done": pl.Boolean}))).simpleString()
    'array<struct<name:string,done:boolean>>'
    """
    simple: dict[Any, T.DataType] = {
        pl.String: T.StringType(), pl.Categorical: T.StringType(), pl.Enum: T.StringType(),
        pl.Null: T.StringType(), pl.Boolean: T.BooleanType(), pl.Int8: T.ByteType(),
        pl.Int16: T.ShortType(), pl.Int32: T.IntegerType(), pl.Int64: T.LongType(),
        pl.UInt8: T.ShortType(), pl.UInt16: T.IntegerType(), pl.UInt32: T.LongType(),
        pl.Float32: T.FloatType(), pl.Float64: T.DoubleType(), pl.Date: T.DateType(),
    }
    base = dtype.base_type()
    if base in simple:
        return simple[base]
    if isinstance(dtype, pl.Datetime):
        return T.TimestampType() if dtype.time_zone else T.TimestampNTZType()
    if isinstance(dtype, pl.List):
        return T.ArrayType(spark_type(_instance(dtype.inner)), True)
    if isinstance(dtype, pl.Struct):
        return T.StructType([T.StructField(f.name, spark_type(_instance(f.dtype)), True)
                             for f in dtype.fields])
    raise TypeError(f"no Spark type for the polars dtype {dtype}")


def _instance(dtype: Any) -> pl.DataType:
    result: pl.DataType = dtype() if isinstance(dtype, type) else dtype
    return result


def spark_schema(frame: pl.DataFrame) -> T.StructType:
    """The Spark schema of a polars frame (see :func:`spark_type`)."""
    return T.StructType([T.StructField(c, spark_type(frame.schema[c]), True)
                         for c in frame.columns])


# ---------------------------------------------------------------------- input problems

# A partition that refuses its rows (an account's summed values out of the exact range, a
# null or duplicate key, overlapping dated rows) fails its Spark task; the driver only sees
# the task's Python traceback as text, inside pyspark's exception. The task's exception
# therefore carries the issues as one line of base64 JSON between these marks, which
# input_errors() finds and turns back into the InputDataError the polars engine raises.
_MARK_OPEN, _MARK_CLOSE = "[healthrules-issues:", ":healthrules-issues]"
_MARKED = re.compile(re.escape(_MARK_OPEN) + r"([A-Za-z0-9_=-]+)" + re.escape(_MARK_CLOSE))


def _location_record(loc: Location | None) -> dict[str, Any] | None:
    if loc is None:
        return None
    return {"file": loc.file, "line": loc.line, "column": loc.column, "path": loc.path}


def _location_of(record: dict[str, Any] | None) -> Location | None:
    if record is None:
        return None
    return Location(file=record["file"], line=record["line"], column=record["column"],
                    path=record["path"])


_REFUSALS: dict[str, type[InputDataError | EvaluationError]] = {
    "InputDataError": InputDataError, "EvaluationError": EvaluationError}
"""The errors a task's evaluation raises that the driver rebuilds (:func:`input_errors`), by
name: the rows are refused (``InputDataError``), or the executor cannot evaluate the plan
(``EvaluationError``: ``no_timezone_database``, where the executors have no time-zone
database and the driver has one)."""


def _encode_issues(issues: list[Issue], error: str = "InputDataError") -> str:
    """The issues (of an error of class ``error``, a name of :data:`_REFUSALS`) as one line
    of text, between the marks (see :func:`_decode_issues`)."""
    records = []
    for issue in issues:
        try:  # the context travels when it is plain JSON (it is informative only)
            ctx = json.loads(json.dumps(issue.ctx))
        except (TypeError, ValueError):
            ctx = {}
        records.append({"code": issue.code, "message": issue.message,
                        "severity": issue.severity.value, "hint": issue.hint,
                        "location": _location_record(issue.location),
                        "related": _location_record(issue.related), "ctx": ctx})
    body: Any = records if error == "InputDataError" else {"error": error, "issues": records}
    text = base64.urlsafe_b64encode(json.dumps(body).encode()).decode("ascii")
    return f"{_MARK_OPEN}{text}{_MARK_CLOSE}"


def _decode_issues(text: str) -> list[Issue] | None:
    """The issues a refused task carried in ``text`` (a pyspark error's text), or None."""
    got = _decode_refusal(text)
    return None if got is None else got[1]


def _decode_refusal(text: str,
                    ) -> tuple[type[InputDataError | EvaluationError], list[Issue]] | None:
    """The class of the error a refused task carried in ``text`` (a pyspark error's text)
    and its issues, in their order, or None."""
    found = _MARKED.search(text)
    if found is None:
        return None
    try:
        body = json.loads(base64.urlsafe_b64decode(found[1]))
        if isinstance(body, dict):
            error, records = _REFUSALS[body["error"]], body["issues"]
        else:
            error, records = InputDataError, body
        return error, [Issue(code=r["code"], message=r["message"], severity=Severity(r["severity"]),
                      hint=r["hint"], location=_location_of(r["location"]) or Location(),
                      related=_location_of(r["related"]), ctx=r["ctx"]) for r in records]
    except (ValueError, KeyError, TypeError):  # a mangled line: keep Spark's own error
        return None


class _TaskRefused(Exception):
    """Raised in a task whose partition the polars engine refused (or could not evaluate):
    the readable problems, then the same error in a form the driver rebuilds
    (:func:`input_errors`)."""

    def __init__(self, error: InputDataError | EvaluationError) -> None:
        super().__init__(f"{error}\n{_encode_issues(error.issues, type(error).__name__)}")


@contextlib.contextmanager
def input_errors() -> Iterator[None]:
    """Turn a Spark job that failed on refused input rows back into :class:`InputDataError`.

    Some problems of the rows are found inside the Spark tasks, where each partition is
    evaluated: an account whose summed values leave the exact range
    (``values_out_of_range``), a null or duplicate account key, overlapping dated rows.
    The task fails and pyspark raises its own exception around the task's traceback. Inside
    this context, such an exception becomes the :class:`InputDataError` that
    :func:`healthrules.evaluate` raises on the same rows (same codes, locations, messages
    and hints), and a task that cannot evaluate the plan at all (an executor without a
    time-zone database, for a roadmap with a zone: ``no_timezone_database``) the
    :class:`~healthrules.errors.EvaluationError` :func:`healthrules.evaluate` raises there;
    any other exception passes through unchanged.
    :meth:`SparkEvaluation.to_polars`, :meth:`~SparkEvaluation.write` and
    :meth:`~SparkEvaluation.diagnostics_dict` run their jobs inside it already; wrap your
    own actions on the result's DataFrames (``collect``, ``write``, ...) in it.

    Raises
    ------
    InputDataError
        When a task refused its partition's rows.
    EvaluationError
        When a task could not evaluate the plan (``no_timezone_database``).

    Examples
    --------
    >>> from healthrules.spark import input_errors  # doctest: +SKIP
    >>> with input_errors():  # doctest: +SKIP
    ...     result.scores.write.parquet("s3://bucket/scores")
    """
    try:
        yield
    except (InputDataError, EvaluationError):
        raise
    except Exception as exc:
        refused = _decode_refusal(_error_text(exc))
        if refused is None:
            raise
        error, issues = refused
        raise error(issues) from None


def _error_text(exc: BaseException) -> str:
    """Everything an exception (and the ones it was raised from) says, pyspark's and
    py4j's Java-side text included."""
    parts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        parts.append(str(current))
        java = getattr(current, "java_exception", None)
        if java is not None:
            with contextlib.suppress(Exception):
                parts.append(str(java.toString()))
        current = current.__cause__ or current.__context__
    return "\n".join(parts)


# ---------------------------------------------------------------------- driver helpers


def _source_frames(plan: Plan, events: DataFrame | Mapping[str, DataFrame],
                   ) -> dict[str, DataFrame]:
    """One Spark DataFrame per event source (a single DataFrame: the default source)."""
    from healthrules.errors import Code, Issue, Location
    from healthrules.expressions import did_you_mean

    given = dict(events) if isinstance(events, Mapping) else {plan.default_source: events}
    issues = [Issue(code=Code.UNKNOWN_SOURCE.value, location=Location(file="<events>",
                                                                     path=str(name)),
                    message=f"unknown event source {name!r}; the roadmap declares "
                    f"{', '.join(map(repr, plan.sources))}",
                    hint=did_you_mean(str(name), list(plan.sources)))
              for name in given if name not in plan.sources]
    issues += [Issue(code=Code.UNKNOWN_SOURCE.value,
                     location=Location(file=f"<events:{name}>"),
                     message=f"no events DataFrame for source {name!r}",
                     hint="pass a dict of DataFrames, one per source: "
                     + ", ".join(plan.sources))
               for name in plan.sources if name not in given]
    if issues:
        raise InputDataError(issues)
    return given


def _zone(name: str | None) -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(name) if name is not None else None


def _event_columns(plan: Plan, source: str | None = None) -> list[str]:
    ev = plan.sources[plan.default_source if source is None else source]
    cols = [c for c in (ev.account, ev.event, ev.timestamp) if c is not None]
    if ev.user is not None:
        cols.append(ev.user)
    cols += list(ev.values)
    return list(dict.fromkeys(cols))


def _timestamp_columns(plan: Plan) -> tuple[str, ...]:
    """The datetime attributes of the accounts and a Datetime validity column (each source
    converts its own timestamp)."""
    return (*[a for a, typ in plan.attributes.items() if typ == "datetime"],
            *account_validity(plan))


def _require(frame: DataFrame, columns: list[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputDataError(
            f"{what} DataFrame has no column(s) {', '.join(repr(c) for c in missing)} "
            f"(it has {', '.join(frame.columns)})")


_MARGIN = dt.timedelta(days=2)
"""How much wider than the read range Spark's filter of timestamps is, on each side: more
than any difference of offsets (they lie within -12 and +14 hours, local mean times within
16 hours of UTC)."""


def _spark_bound(value: dt.datetime, ntz: bool, shift: dt.timedelta) -> Any | None:
    """``value + shift`` as a Spark literal for a timestamp column, read with no zone rules
    of Spark's (docs/semantics.md, "Time", Spark); None beyond the representable datetimes.

    Java's time-zone database, which Spark's own conversions read, can give a zone other
    offsets than the engine's rules (polars', and zoneinfo's for its literals): past 2099,
    around a rule change one database holds and another not. So the bound is: for a
    ``TimestampNTZ`` column, the wall time; for an instant column, the instant itself (an
    aware value as UTC: the instant of the engine's own bound, which zoneinfo places); a
    clock without a zone reads no instant column (:func:`_session_wall_times` makes them
    wall times first), but a bound without a zone is still read as UTC. Where a wall time
    is read, the caller shifts the bound by :data:`_MARGIN`, which covers any difference of
    offsets and of wall times in a repeated hour, and the engine, in each partition, keeps
    the exact range.
    """
    try:
        moved = value + shift
        utc = moved.astimezone(dt.UTC) if moved.tzinfo is not None else moved
    except OverflowError:
        return None
    if ntz:
        return F.to_timestamp_ntz(F.lit(moved.replace(tzinfo=None).isoformat(sep=" ")))
    return F.lit(utc.replace(tzinfo=None).isoformat(sep=" ") + "+00:00").cast("timestamp")


def _spark_partition_filter(frame: DataFrame, column: str, start: dt.datetime | None,
                            end: dt.datetime) -> Any:
    """The engine's partition filter (``engine.aggregate._partition_filter``) as Spark's: a
    text partition is a day only where it reads ``YYYY-MM-DD`` as a real date, any other
    kept like a null one."""
    margin = dt.timedelta(days=1)
    part = F.col(column)
    if isinstance(frame.schema[column].dataType, T.StringType):
        part = F.when(part.rlike(r"^\d{4}-\d{2}-\d{2}$"),
                      F.try_to_timestamp(part, F.lit("yyyy-MM-dd")).cast("date"))

    def lit(d: dt.date) -> Any:
        return F.lit(d.isoformat()).cast("date")

    cond = part <= lit((end + margin).date())
    if start is not None:
        cond = cond & (part >= lit((start - margin).date()))
    return cond | part.isNull()


_A, _R = "__h_account", "__h_root"


@dataclass(frozen=True)
class _Roots:
    """The root (the ancestor without a parent) of every account that has a parent.

    The accounts' key, parent and validity columns are collected to the driver in one job
    and checked by the polars engine's own checks (:func:`healthrules.inputs.check_accounts`:
    null and duplicate keys, overlapping dated rows, parents that are not accounts, cycles;
    same order and messages as :func:`healthrules.evaluate`). The parent links are then
    resolved by pointer doubling with polars joins: each account starts at its parent and
    jumps, each round, to the ancestor its ancestor has reached, so a hierarchy of depth
    ``d`` takes ``ceil(log2(d)) + 1`` rounds, no loop over accounts. The (account, root) pairs
    of the accounts that have a parent go back to the cluster as a DataFrame, joined onto
    the events and the accounts to key the shuffle.

    Why on the driver: the same rounds as Spark joins repeat each round's plan inside the
    next (and a cached round keeps its plan), so without a reliable checkpoint directory,
    which a library cannot assume, the query plan and its analysis double per round: on a
    depth-12 hierarchy the rounds took 5, 8, 12, ... 69 s and a 1 GB driver ran out of
    memory on plan strings. A few columns per account row is what the driver holds instead.

    ``mapping`` (``__h_account``, ``__h_root``) is ``None`` when no account has a parent.
    """

    mapping: DataFrame | None
    rounds: int

    @classmethod
    def of(cls, plan: Plan, accounts: DataFrame, key_type: T.DataType, *,
           conversion: _Conversion, contract: pl.DataFrame, events_schema: pl.Schema,
           as_of: Any) -> _Roots:
        """Check the accounts and resolve the roots (see the class text).

        ``contract`` is an empty frame with the converted dtypes of the account columns;
        the attributes are not collected (their dtypes were checked on the schema), they
        enter the check as typed nulls.
        """
        key, parent = plan.account_key, plan.parent
        assert parent is not None
        read = [key, parent, *account_validity(plan)]
        rows = conversion.apply(_from_arrow(accounts.select(read).toArrow()))
        frame = rows.with_columns(pl.lit(None, contract.schema[c]).alias(c)
                                  for c in contract.columns if c not in read)
        clock = clock_for(plan, events_schema, as_of)
        checked, issues = check_accounts(plan, frame.lazy(), events_schema, clock)
        if issues:
            raise InputDataError(issues)
        links = accounts_at(checked, clock, key).frame
        if is_dated(checked):  # as healthrules.evaluate: the links of the rows valid at as_of
            on_day = links.with_columns(pl.lit(clock.as_of, pl.Date).alias("as_of"))
            issues = hierarchy_issues(on_day, key, parent, by="as_of", plan=plan)
            if issues:
                raise InputDataError(issues)
        up = links.filter(pl.col(parent).is_not_null()).select(
            pl.col(key).alias(_A), pl.col(parent).alias(_R))
        if up.height == 0:
            return cls(mapping=None, rounds=0)
        # after round k an account has climbed min(2**k, its depth) levels (the checks
        # above refused cycles, so every account reaches its root; 64 rounds climb 2**64)
        rounds = 0
        while rounds < 64:
            ahead = up.select(pl.col(_A).alias(_R), pl.col(_R).alias("__h_next"))
            nxt = up.join(ahead, on=_R, how="left", maintain_order="left")
            rounds += 1
            if nxt["__h_next"].null_count() == nxt.height:
                break
            up = nxt.select(_A, pl.coalesce("__h_next", _R).alias(_R))
        spark = accounts.sparkSession
        mapping = spark.createDataFrame(up.to_arrow(compat_level=pl.CompatLevel.oldest()))
        mapping = mapping.select(F.col(_A).cast(key_type).alias(_A),
                                 F.col(_R).cast(key_type).alias(_R))
        return cls(mapping=mapping, rounds=rounds)

    def rekey(self, frame: DataFrame) -> DataFrame:
        """Replace ``__key`` by the key of the account's root (itself for an account without
        a parent, and for keys that are no account)."""
        if self.mapping is None:
            return frame
        return (frame.join(self.mapping.withColumnRenamed(_A, _KEY), _KEY, "left")
                .withColumn(_KEY, F.coalesce(F.col(_R), F.col(_KEY))).drop(_R))


def _empty(frame: DataFrame, zone: str) -> pl.DataFrame:
    """An empty polars frame with the dtypes a Spark frame's rows arrive with in Arrow."""
    from pyspark.sql.pandas.types import to_arrow_schema

    return _from_arrow(to_arrow_schema(frame.schema, timezone=zone).empty_table())


def _arrow_schema(schema: T.StructType) -> pa.Schema:
    from pyspark.sql.pandas.types import to_arrow_schema

    result: pa.Schema = to_arrow_schema(schema, timezone="UTC")
    return result


# ---------------------------------------------------------------------- executor side


@dataclass(frozen=True)
class _Conversion:
    """How Arrow data from Spark becomes the polars dtypes the plan expects."""

    ts_columns: tuple[str, ...]
    zone: str | None

    def apply(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Bring timestamp columns to the events' zone (or naive), as the plan declares.

        An instant column arrives only for a zone: :func:`evaluate` has Spark cast those a
        clock without a zone reads to wall times of the session zone
        (:func:`_session_wall_times`)."""
        exprs: list[pl.Expr] = []
        for name in self.ts_columns:
            if name not in frame.columns:
                continue
            dtype = frame.schema[name]
            if not isinstance(dtype, pl.Datetime):
                continue  # a wrong dtype: the contract check reports it
            col = pl.col(name).dt.cast_time_unit("us")
            if dtype.time_zone is None:  # TimestampNTZ: wall time in the declared zone
                col = zoned_wall_time(col, self.zone)
            elif self.zone is not None:
                col = col.dt.convert_time_zone(self.zone)
            else:  # not reached from evaluate() (see above): refuse to guess a zone
                raise AssertionError(f"instants of column {name!r} for a clock without a zone")
            exprs.append(col.alias(name))
        return frame.with_columns(exprs) if exprs else frame


@dataclass(frozen=True)
class _Job:
    """Everything a partition needs, pickled once on the driver."""

    plan: Plan
    as_of: Any
    events: tuple[tuple[str, tuple[str, ...]], ...]  # (source, its columns), tag order
    accounts: tuple[str, ...]
    conversion: _Conversion
    source_conversions: tuple[_Conversion, ...]
    columns: dict[str, list[str]]
    arrow_schema: pa.Schema
    # each source's read range of the whole run ([start, end): naive wall times of the
    # evaluation clock), in tag order: Spark's filter is wider, the counts are of this range
    ranges: tuple[tuple[dt.datetime | None, dt.datetime], ...] = ()


_JOBS: dict[str, _Job] = {}  # per Python worker: payload digest -> unpickled job


def _job(payload: bytes) -> _Job:
    digest = hashlib.sha256(payload).hexdigest()
    job = _JOBS.get(digest)
    if job is None:
        job = pickle.loads(payload)  # our own payload, pickled by evaluate()
        _JOBS.clear()
        _JOBS[digest] = job
    return job


def _from_arrow(table: pa.Table) -> pl.DataFrame:
    """A polars frame of Arrow data from Spark. Spark labels instants with the session
    zone as its setting spells it; a form polars cannot read (``GMT+08:00``, ``CST``,
    ``+05:30``) is relabelled UTC: the same instants, and the plan's conversion brings them
    to the roadmap's zone (a clock without a zone reads no instants: see
    :func:`_session_wall_times`)."""
    fields = list(table.schema)
    if any(pa.types.is_timestamp(f.type) and f.type.tz is not None
           and _readable_zone(f.type.tz) != f.type.tz for f in fields):
        table = table.cast(pa.schema([
            f.with_type(pa.timestamp(f.type.unit, _readable_zone(f.type.tz)))
            if pa.types.is_timestamp(f.type) and f.type.tz is not None else f
            for f in fields], metadata=table.schema.metadata))
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame


@functools.lru_cache(maxsize=64)
def _readable_zone(name: str) -> str:
    """``name`` when polars reads it as a time zone, else ``UTC``: a label of instants only
    (see :func:`_from_arrow`)."""
    try:
        pl.select(pl.lit(0).cast(pl.Datetime("us", "UTC")).dt.convert_time_zone(name))
    except pl.exceptions.PolarsError:
        return "UTC"
    return name


def _session_wall_times(frame: DataFrame, columns: list[str]) -> DataFrame:
    """``frame`` with its instant (``TimestampType``) columns among ``columns`` cast by
    Spark to ``TimestampNTZ``: the wall times of the session zone, by Spark's own rules
    (Java's time-zone database), as Spark shows them. A clock without a zone reads them
    as such (docs/semantics.md, "Time", Spark)."""
    cast = {c: F.col(c).cast(T.TimestampNTZType()) for c in columns
            if c in frame.columns and isinstance(frame.schema[c].dataType, T.TimestampType)}
    return frame.withColumns(cast) if cast else frame


def _to_zone(frame: pl.DataFrame, zone: str | None) -> pl.DataFrame:
    exprs = []
    for name, dtype in frame.schema.items():
        if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None and zone is not None:
            exprs.append(pl.col(name).dt.convert_time_zone(zone))
    return frame.with_columns(exprs) if exprs else frame


def _event_counts(job: _Job, events: dict[str, pl.DataFrame],
                  accounts: pl.DataFrame) -> dict[str, int]:
    """The event diagnostics of one partition, over the read range of the whole run.

    ``healthrules.evaluate`` inside a partition computes the read range from that partition's
    accounts (an anchored window starts at the partition's earliest anchor), so its event
    counts can be smaller than the whole run's. The driver kept the events of the run's
    range and a margin (:func:`_spark_bound`); the events of the range itself, cut here as
    the engine cuts (:func:`healthrules.engine.aggregate.read_source`), give the counts the
    polars engine reports (totals, and per source under ``<source>:<name>`` when the roadmap
    declares named sources).
    """
    plan = job.plan
    out: dict[str, int] = {}
    clock = clock_for(plan, events[plan.default_source].schema, job.as_of)
    for (name, _), (start, end) in zip(job.events, job.ranges, strict=True):
        cols = plan.sources[name]
        frame = read_source(events[name].lazy(), plan, name, clock, events[name].schema,
                            (cols.account, cols.timestamp), start, end).collect(
                                optimizations=OPTIMISED)
        keys = frame.get_column(cols.account)
        known = accounts.get_column(plan.account_key).cast(keys.dtype)
        unknown = keys.drop_nulls().filter(~keys.drop_nulls().is_in(known.implode()))
        counts = {
            "events_read": frame.height,
            "events_null_account": keys.null_count(),
            "events_null_timestamp": frame.get_column(cols.timestamp).null_count(),
            "events_unknown_account": unknown.len(),
            "unknown_accounts": unknown.n_unique(),
        }
        for k, v in counts.items():
            out[k] = out.get(k, 0) + v
            if plan.named_sources:
                out[f"{name}:{k}"] = v
    return out


def _partition_frames(job: _Job, received: list[pa.RecordBatch]) -> dict[str, pl.DataFrame]:
    """The result frames of one partition's rows (``diagnostics`` as ``name``, ``value``);
    ``received`` is emptied once read."""
    rows = _from_arrow(pa.Table.from_batches(received))
    received.clear()
    tag = pl.col(_TAG)
    events = {
        name: conv.apply(rows.filter(tag == _EVENT + j).select(
            [pl.col(f"__e{j}_{i}").alias(c) for i, c in enumerate(cols)]))
        for j, ((name, cols), conv) in enumerate(
            zip(job.events, job.source_conversions, strict=True))}
    accounts = job.conversion.apply(rows.filter(tag == _ACCOUNT).select(
        [pl.col(f"__a{i}").alias(c) for i, c in enumerate(job.accounts)]))
    del rows
    result = _evaluate_polars(job.plan, events, accounts, job.as_of)
    parts = {name: getattr(result, name) for name in (*FRAMES, "conditions")}
    # events of accounts that exist (at as_of, when the accounts are dated) are known
    known = result.attributes if account_validity(job.plan) else accounts
    diagnostics = {**result.diagnostics, **_event_counts(job, events, known)}
    parts["diagnostics"] = pl.DataFrame(
        {"name": list(diagnostics), "value": list(diagnostics.values())},
        schema={"name": pl.String, "value": pl.Int64})
    return parts


def _run_partition(payload: bytes, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """Evaluate one partition: Arrow batches in, tagged Arrow batches of every frame out."""
    job = _job(payload)
    received = list(batches)
    if not received or not any(b.num_rows for b in received):
        return
    try:
        parts = _partition_frames(job, received)
    except (InputDataError, EvaluationError) as exc:  # rebuilt on the driver by input_errors()
        raise _TaskRefused(exc) from None
    for name, frame in parts.items():
        if frame.height == 0:
            continue
        tagged = frame.select(
            pl.lit(name).alias(_FRAME),
            *[pl.col(c).alias(f"{name}__{c}") for c in job.columns[name]])
        table = tagged.to_arrow(compat_level=pl.CompatLevel.oldest())
        # every column of the union schema: this frame's, then nulls for the others
        arrays = [table.column(f.name).cast(f.type) if f.name in table.column_names
                  else pa.nulls(table.num_rows, f.type) for f in job.arrow_schema]
        yield from pa.Table.from_arrays(arrays, schema=job.arrow_schema).to_batches()
