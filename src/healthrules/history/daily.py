"""The daily job: evaluate as of a date, move the lifecycle on, and report only what changed.

:func:`run` is what ``healthrules run ROADMAP --state FILE ...`` calls. In one transaction of
the state store it undoes any earlier run of the same date (so a rerun is idempotent), reads
the state left by the previous run, evaluates the roadmap as of the date with the overrides in
force and the stage history (so ``days_in_stage`` and ``stuck`` work; ``prev`` and ``change``
are evaluated from the events at the earlier dates), moves every (account, action) through the
lifecycle (:func:`healthrules.history.lifecycle.step`) and writes the new state. What changed
(opened, resolved, escalated) is returned as a frame and can be written as NDJSON.

A run also records the CSMs' snoozes and dismissals of single actions
(:mod:`healthrules.history.holds`) and honours those in force, queues its changes for a
webhook in the same transaction and delivers them once it is committed
(:mod:`healthrules.history.webhooks`), and writes the open actions for a CRM import
(:func:`export_open`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from healthrules.compiler import Plan
from healthrules.engine import Events
from healthrules.errors import InputDataError, Issue, Location
from healthrules.evaluation import Evaluation
from healthrules.history import holds as _holds
from healthrules.history import overrides as _overrides
from healthrules.history.holds import Hold
from healthrules.history.lifecycle import _rules_with_flags, holds_on, signals_for, step
from healthrules.history.overrides import OverrideError, Pin
from healthrules.history.snapshots import (
    AS_OF,
    _as_date,
    evaluate_dates,
    prepare_inputs,
    time_needs,
    time_values,
    valid_rows,
)
from healthrules.history.store import (
    StateStore,
    StoreError,
    _now,
    _version,
    score_summary,
)
from healthrules.history.webhooks import DeliveryReport, Webhook, deliver, payloads
from healthrules.query_flags import OPTIMISED
from healthrules.roadmap import Pack, Roadmap, parse_days
from healthrules.sources import FrameInput

__all__ = [
    "EXPORT_COLUMNS",
    "STALE_DATA",
    "Provenance",
    "RunResult",
    "StaleDataError",
    "StoredRun",
    "check_pin",
    "export_open",
    "newest_event",
    "provenance",
    "replay",
    "rules_diff",
    "run",
]

STALE_DATA = "stale_data"
"""The issue code of :class:`StaleDataError`."""


class StaleDataError(InputDataError):
    """The newest event is older than the staleness limit allows: the run is refused."""


# ---------------------------------------------------------------------- provenance


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Provenance:
    """Which rules a run used: a SHA-256 of every rule file and the conditions of every action.

    Attributes
    ----------
    files
        Each rule file (roadmap, imported libraries, pack and its roadmaps) and the SHA-256
        of its bytes; a roadmap built in Python appears as ``<roadmap ID>`` with the hash
        of its JSON form.
    actions
        ``roadmap/action`` to ``{"when": condition, "settings": hash of the whole action}``.
    version
        The healthrules version.
    """

    files: dict[str, str]
    actions: dict[str, dict[str, str]]
    version: str = field(default_factory=_version)

    @property
    def hash(self) -> str:
        """One SHA-256 over the contents of every rule file (names and folders left out,
        so the same rules read from another path hash the same)."""
        return _sha256("\n".join(sorted(self.files.values())).encode())

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (in manifests and the run log)."""
        return {"rules_hash": self.hash, "healthrules_version": self.version,
                "files": dict(self.files), "actions": {k: dict(v) for k, v in
                                                       self.actions.items()}}


def provenance(source: Roadmap | Pack | Plan) -> Provenance:
    """The :class:`Provenance` of a loaded roadmap, pack or compiled plan.

    A pack lists its own file and its roadmaps' files; every roadmap also lists the libraries
    it imports (paths relative to the importing file, as the loader reads them).
    """
    files: dict[str, str] = {}
    if isinstance(source, Plan):
        roadmaps = [cr.roadmap for cr in source.roadmaps]
    elif isinstance(source, Pack):
        if source.source:
            files[source.source] = _file_hash(source.source)
        roadmaps = list(source.loaded)
    else:
        roadmaps = [source]
    actions: dict[str, dict[str, str]] = {}
    for rm in roadmaps:
        if rm.source:
            files[rm.source] = _file_hash(rm.source)
            base = Path(rm.source).parent
            for imp in rm.imports:
                lib = base / imp.path
                files[str(lib)] = _file_hash(lib)
        else:
            files[f"<roadmap {rm.id}>"] = _sha256(rm.model_dump_json(by_alias=True).encode())
        for _stage, action in rm.all_actions():
            actions[f"{rm.id}/{action.id}"] = {
                "when": action.when,
                "settings": _sha256(action.model_dump_json(by_alias=True).encode())}
    return Provenance(files=files, actions=actions)


def _file_hash(path: str | os.PathLike[str]) -> str:
    return _sha256(Path(path).read_bytes())


def rules_diff(before: dict[str, Any] | None, now: Provenance) -> dict[str, Any] | None:
    """What changed in the rules since a run (``before``: its stored provenance), or None.

    Returns
    -------
    dict or None
        None when the rules hash is the same (or the earlier run recorded no rules);
        otherwise ``previous_rules_hash``, ``rules_hash``, ``files`` (the files whose
        content changed, appeared or went), ``actions_added``, ``actions_removed``,
        ``conditions_changed`` (``when`` differs) and ``settings_changed`` (same ``when``,
        other keys differ: priority, ``for``, text ...).
    """
    if not before or before.get("rules_hash") in (None, now.hash):
        return None
    old_files: dict[str, str] = before.get("files") or {}
    old_by_name = {Path(k).name: v for k, v in old_files.items()}
    new_by_name = {Path(k).name: v for k, v in now.files.items()}
    files = sorted(n for n in old_by_name.keys() | new_by_name.keys()
                   if old_by_name.get(n) != new_by_name.get(n))
    old_actions: dict[str, dict[str, str]] = before.get("actions") or {}
    both = old_actions.keys() & now.actions.keys()
    return {
        "previous_rules_hash": before.get("rules_hash"),
        "rules_hash": now.hash,
        "files": files,
        "actions_added": sorted(now.actions.keys() - old_actions.keys()),
        "actions_removed": sorted(old_actions.keys() - now.actions.keys()),
        "conditions_changed": sorted(a for a in both
                                     if old_actions[a].get("when") != now.actions[a]["when"]),
        "settings_changed": sorted(
            a for a in both if old_actions[a].get("when") == now.actions[a]["when"]
            and old_actions[a].get("settings") != now.actions[a]["settings"]),
    }


# ---------------------------------------------------------------------- fresh data


def newest_event(plan: Plan, events: pl.LazyFrame, as_of: dt.date,
                 source: str | None = None) -> dt.datetime | None:
    """The newest event time of one source (default: the default source) that a run dated
    ``as_of`` reads (events after it are not read).

    One small lazy query (the timestamp column only, with the filter pushed into the scan);
    timestamps with a time zone are given as local wall-clock time in the evaluation's zone
    (the default source's), as the evaluation reads them.
    """
    ts = plan.sources[plan.default_source if source is None else source].timestamp
    dtype = events.collect_schema().get(ts)
    end = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time())
    col = pl.col(ts)
    zone = plan.events.timezone  # the evaluation clock's zone
    if isinstance(dtype, pl.Date):
        col = col.cast(pl.Datetime("us"))
    elif isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
        col = pl.col(ts).dt.convert_time_zone(zone or dtype.time_zone).dt.replace_time_zone(
            None)
    elif not isinstance(dtype, pl.Datetime):
        return None  # the contract check reports a timestamp column of another type
    value = events.select(col.alias("__ts")).filter(pl.col("__ts") < end).select(
        pl.col("__ts").max()).collect(optimizations=OPTIMISED).item()
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None)
    return None


def _staleness_limit(plan: Plan, max_staleness: int | str | dt.timedelta | None,
                     source: str | None = None) -> tuple[dt.timedelta | None, str]:
    if isinstance(max_staleness, dt.timedelta):
        return max_staleness, "max_staleness"
    if max_staleness is not None:
        return dt.timedelta(days=parse_days(max_staleness)), "max_staleness"
    name = plan.default_source if source is None else source
    limits: list[tuple[int, str, str]] = []
    for cr in plan.roadmaps:
        cols = cr.roadmap.data.sources.get(name)
        if cols is not None and cols.max_staleness is not None:
            limits.append((parse_days(cols.max_staleness), cr.roadmap.id,
                           cr.roadmap.data.source_path(name)))
    if not limits:
        return None, ""
    days, rid, path = min(limits)
    return dt.timedelta(days=days), f"{path}.max_staleness of roadmap {rid!r}"


def _age_text(age: dt.timedelta) -> str:
    hours = age.total_seconds() / 3600
    if hours < 48:
        return f"{hours:.0f} hour{'' if round(hours) == 1 else 's'}"
    return f"{age.days} days"


def _check_fresh(plan: Plan, newest: dt.datetime | None, day: dt.date,
                 max_staleness: int | str | dt.timedelta | None,
                 source: str | None = None) -> dt.timedelta | None:
    """The age of one source's data at the end of ``day``; refuse it past the limit."""
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time())
    age = None if newest is None else max(end - newest, dt.timedelta(0))
    limit, where = _staleness_limit(plan, max_staleness, source)
    if limit is None:
        return age
    of = f" of source {source!r}" if plan.named_sources and source is not None else ""
    if newest is None:
        message = (f"no event{of} at or before {day}: the events hold nothing to judge the "
                   f"run by (limit {limit.days}d, from {where})")
    elif age is not None and age > limit:
        message = (f"the newest event{of} ({newest.isoformat(sep=' ', timespec='minutes')}) is "
                   f"{_age_text(age)} old at the end of the run date {day}; the limit is "
                   f"{limit.days}d (from {where}). Load the missing events and run again, "
                   "or raise the limit (--max-staleness) if the feed is known to lag")
    else:
        return age
    raise StaleDataError([Issue(code=STALE_DATA, message=message, location=Location(),
                                hint="every action judged on stale data would be wrong "
                                "(e.g. usage dropping to zero)")])


def _feed(as_of: dt.date, changes: pl.DataFrame, diff: dict[str, Any] | None) -> str:
    """The change feed as NDJSON: a ``rules_changed`` record first when the rules changed,
    then one object per change (dates as ISO text)."""
    head = ""
    if diff is not None:
        head = json.dumps({"as_of": as_of.isoformat(), "change": "rules_changed", **diff}) + "\n"
    if changes.height == 0:
        return head
    frame = changes.select(pl.lit(as_of.isoformat()).alias("as_of"), pl.all())
    return head + frame.write_ndjson()


def _gap_text(previous: dt.date | None, skipped: Sequence[dt.date]) -> str | None:
    if not skipped:
        return None
    n = len(skipped)
    days = (f"{skipped[0]}" if n == 1 else f"{skipped[0]}..{skipped[-1]}")
    return (f"gap: no run on {days} ({n} day{'' if n == 1 else 's'} since the run of "
            f"{previous}); conditions are judged at run dates only, so a condition that "
            "changed on a missed day was not seen, and for, cooldown and escalate_after "
            "(counted in calendar days) took effect at this run instead")


def _rules_text(diff: dict[str, Any] | None) -> str | None:
    if diff is None:
        return None
    parts = [f"{len(diff[k])} {label} ({', '.join(diff[k])})" for k, label in (
        ("actions_added", "action(s) added"), ("actions_removed", "action(s) removed"),
        ("conditions_changed", "condition(s) changed"),
        ("settings_changed", "action(s) with other settings changed")) if diff[k]]
    files = ", ".join(diff["files"]) or "none by name"
    return (f"rules changed since the previous run (files: {files}): "
            + ("; ".join(parts) if parts else "no action added, removed or changed"))


@dataclass(frozen=True)
class RunResult:
    """What one daily run did.

    Attributes
    ----------
    as_of
        The run date.
    evaluation
        The evaluation as of the date (with the overrides applied).
    changes
        Only what changed: one row per opened, resolved or escalated action, with its
        ``reason`` (resolved), ``stage``, ``priority``, ``kind``, ``title``, ``text``,
        ``opened_at``, ``days_open`` and ``rules_hash`` (the rules that produced it).
    open
        Every action open after the run (the CSM's worklist), with ``opened_at``.
    overrides
        The overrides in force on the date, with the pinned and the computed value.
    expired_overrides
        Overrides whose expiry (or removal) fell since the previous run.
    undone
        Dates of earlier runs this run replaced (itself on a rerun; later ones on a rewind).
    previous
        The date of the run before this one (None for the first).
    skipped
        The dates without a run between ``previous`` and ``as_of``.
    newest_event
        The newest event time the run read (None: no event).
    data_age
        How old that event was at the end of the run date.
    rules
        The :class:`Provenance` of the rules.
    rules_diff
        What changed in the rules since the previous run (:func:`rules_diff`), or None.
    pinned
        The ids of the overrides the run's ``pins`` created or found.
    holds
        The snoozes and dismissals in force on the date (:func:`healthrules.history.holds.report`).
    expired_holds
        Holds whose expiry (or removal) fell since the previous run.
    held
        The ids of the holds the run's ``holds`` created or found.
    deliveries
        What the webhook delivery did (None: no webhook).
    """

    as_of: dt.date
    evaluation: Evaluation
    changes: pl.DataFrame
    open: pl.DataFrame
    overrides: pl.DataFrame
    expired_overrides: pl.DataFrame
    undone: tuple[dt.date, ...] = ()
    previous: dt.date | None = None
    skipped: tuple[dt.date, ...] = ()
    newest_event: dt.datetime | None = None
    data_age: dt.timedelta | None = None
    rules: Provenance | None = None
    rules_diff: dict[str, Any] | None = None
    pinned: tuple[int, ...] = ()
    holds: pl.DataFrame | None = None
    expired_holds: pl.DataFrame | None = None
    held: tuple[int, ...] = ()
    deliveries: DeliveryReport | None = None

    def counts(self) -> dict[str, int]:
        """How many actions opened, resolved and escalated, and how many are open."""
        out = {c: int((self.changes["change"] == c).sum())
               for c in ("opened", "resolved", "escalated")}
        out["open"] = self.open.height
        return out

    def to_ndjson(self) -> str:
        """The change feed as NDJSON: one object per change (dates as ISO text), after a
        ``rules_changed`` object when the rules changed since the previous run."""
        return _feed(self.as_of, self.changes, self.rules_diff)

    def write_ndjson(self, path: str | os.PathLike[str]) -> Path:
        """Write the change feed as NDJSON atomically (a temporary file, then a rename)."""
        from healthrules.output import atomic_write_text

        target = Path(path)
        atomic_write_text(target, self.to_ndjson())
        return target

    def manifest(self) -> dict[str, Any]:
        """What the run's output manifest records: date, data freshness, rules, gap."""
        return {
            "as_of": self.as_of.isoformat(),
            "previous_run": self.previous.isoformat() if self.previous else None,
            "skipped_days": [d.isoformat() for d in self.skipped],
            "newest_event": self.newest_event.isoformat() if self.newest_event else None,
            "data_age_hours": (round(self.data_age.total_seconds() / 3600, 2)
                               if self.data_age is not None else None),
            "rules": self.rules.to_dict() if self.rules else None,
            "rules_diff": self.rules_diff,
            "counts": self.counts(),
            "webhook": None if self.deliveries is None else {
                "url": self.deliveries.url, "delivered": self.deliveries.delivered,
                "pending": self.deliveries.pending},
        }

    def export_open(self, path: str | os.PathLike[str], *, format: str | None = None,
                    ) -> Path:
        """Write the open actions for a CRM import, atomically (see :func:`export_open`)."""
        return export_open(self, path, format=format)

    def summary(self) -> str:
        """The counts and the data's age on one line; then a gap and a rules change, if any."""
        c = self.counts()
        head = (f"as of {self.as_of}: {c['opened']} opened, {c['resolved']} resolved, "
                f"{c['escalated']} escalated; {c['open']} open")
        if self.undone:
            head += f" (replaced the run(s) of {', '.join(str(d) for d in self.undone)})"
        extra = []
        if self.overrides.height:
            extra.append(f"{self.overrides.height} override(s) in force")
        if self.expired_overrides.height:
            extra.append(f"{self.expired_overrides.height} expired since the previous run")
        if self.holds is not None and self.holds.height:
            extra.append(f"{self.holds.height} snooze(s)/dismissal(s) in force")
        if self.expired_holds is not None and self.expired_holds.height:
            extra.append(f"{self.expired_holds.height} hold(s) ended since the previous run")
        head += "; " + ", ".join(extra) if extra else ""
        head += "; " + _freshness(self.newest_event, self.data_age)
        notes = [t for t in (_gap_text(self.previous, self.skipped),
                             _rules_text(self.rules_diff),
                             self.deliveries.summary() if self.deliveries else None) if t]
        return "\n".join([head, *(f"  {t}" for t in notes)])

    def __repr__(self) -> str:
        return f"RunResult({self.summary().splitlines()[0]})"


def _freshness(newest: dt.datetime | None, age: dt.timedelta | None) -> str:
    if newest is None:
        return "no events"
    text = f"newest event {newest.isoformat(sep=' ', timespec='minutes')}"
    return text + (f" ({_age_text(age)} old)" if age is not None else "")


@dataclass(frozen=True)
class StoredRun:
    """A run as the store keeps it: what :func:`replay` returns.

    Attributes
    ----------
    as_of, changes, counts, newest_event, rules_hash, rules_diff
        As the run reported them (``counts`` without ``open``).
    """

    as_of: dt.date
    changes: pl.DataFrame
    counts: dict[str, int]
    newest_event: str | None
    rules_hash: str | None
    rules_diff: dict[str, Any] | None

    def to_ndjson(self) -> str:
        """The change feed, as the run wrote it."""
        return _feed(self.as_of, self.changes, self.rules_diff)

    def write_ndjson(self, path: str | os.PathLike[str]) -> Path:
        """Write the change feed as NDJSON atomically."""
        from healthrules.output import atomic_write_text

        target = Path(path)
        atomic_write_text(target, self.to_ndjson())
        return target

    def summary(self) -> str:
        """One line, like the run's, marked as a replay."""
        c = self.counts
        return (f"as of {self.as_of} (replayed from the store): {c['opened']} opened, "
                f"{c['resolved']} resolved, {c['escalated']} escalated; newest event "
                f"{self.newest_event or 'not recorded'}")


def replay(state: StateStore | str | os.PathLike[str], as_of: dt.date | str) -> StoredRun:
    """The changes of a stored run, to emit its feed again without running it again.

    A run commits before it writes its outputs; if writing them failed (a full disk, a
    missing folder), this gives the same feed back.

    Raises
    ------
    StoreError
        If the store has no run dated ``as_of``.
    """
    day = _as_date(as_of, "as_of")
    store = state if isinstance(state, StateStore) else StateStore(state, create=False)
    try:
        info = store.run_info(day)
        if info is None:
            raise StoreError(f"the store has no run dated {day} to replay", path=store.path)
        key = store.meta().get("account_key", "account_id")
        changes = store.changes(day, key=key).drop("as_of")
        if info.get("rules_hash") is None:
            changes = changes.drop("rules_hash")
    finally:
        if not isinstance(state, StateStore):
            store.close()
    return StoredRun(as_of=day, changes=changes,
                     counts={k: int(info[k]) for k in ("opened", "resolved", "escalated")},
                     newest_event=info.get("newest_event"), rules_hash=info.get("rules_hash"),
                     rules_diff=info.get("rules_diff"))


def run(
    roadmap: Roadmap | Pack | Plan,
    state: StateStore | str | os.PathLike[str],
    events: Events,
    accounts: FrameInput,
    as_of: dt.date | str,
    *,
    rewind: bool = False,
    pins: Sequence[Pin] = (),
    unpins: Sequence[int] = (),
    max_staleness: int | str | dt.timedelta | None = None,
    rules: Provenance | None = None,
    holds: Sequence[Hold] = (),
    unholds: Sequence[int] = (),
    webhook: str | Webhook | None = None,
) -> RunResult:
    """Run the daily job for one date against a state store.

    Parameters
    ----------
    roadmap
        A roadmap, pack or plan (one store per roadmap or pack).
    state
        A :class:`~healthrules.history.store.StateStore` or the path of its file (created on
        the first run when the path does not exist).
    events, accounts
        As for :func:`healthrules.evaluate`.
    as_of
        The run date. Running the same date again replaces that run (idempotent).
    rewind
        Allow a date earlier than the latest run: the later runs are undone first.
    pins
        Overrides to record with this run, in its transaction (a pin already stored is not
        stored twice; a run that fails stores none).
    unpins
        Override ids to end from ``as_of`` on, in the same transaction.
    max_staleness
        Refuse the run when the newest event is older than this at the end of ``as_of``
        (days, ``"2d"`` or a timedelta); default: the roadmap's
        ``data.events.max_staleness``, else no limit. With several event sources this
        limit is the default source's; every other source is judged by its own
        ``data.events.<name>.max_staleness`` (no limit without one), and a refusal names
        the source.
    rules
        The provenance to record (default: :func:`provenance` of ``roadmap``; pass the
        loaded pack's when ``roadmap`` is a plan compiled from a pack, so the pack file is
        hashed too).
    holds
        Snoozes and dismissals to record with this run, in its transaction
        (:class:`~healthrules.history.holds.Hold`; one already stored is not stored twice).
    unholds
        Hold ids to end from ``as_of`` on, in the same transaction.
    webhook
        A URL (or :class:`~healthrules.history.webhooks.Webhook`): every change of the run
        is queued in the store with the run, and once it is committed every pending change
        of that URL is POSTed (:mod:`healthrules.history.webhooks`).

    Returns
    -------
    RunResult

    Raises
    ------
    StoreError
        If the store belongs to another roadmap, is locked or damaged, or has runs after
        ``as_of`` (without ``rewind``).
    StaleDataError
        If the data is older than ``max_staleness``.
    OverrideError
        If a pin names an unknown account or target, or a value it cannot take.
    InputDataError, RoadmapError
        As for :func:`healthrules.evaluate`.
    """
    day = _as_date(as_of, "as_of")
    plan, ev_lf, acc_df = prepare_inputs(roadmap, events, accounts, day)
    key = plan.account_key
    key_dtype = acc_df.schema[key]
    checked = [check_pin(plan, acc_df, p) for p in pins]
    checked_holds = [_holds.check_hold(plan, acc_df, h) for h in holds]
    hook = Webhook(webhook) if isinstance(webhook, str) else webhook
    newest = newest_event(plan, ev_lf[plan.default_source], day)
    age = _check_fresh(plan, newest, day, max_staleness, plan.default_source)
    for name in list(plan.sources)[1:]:
        # another source (tickets, surveys: sparse by nature) is judged by its own
        # data.events.<name>.max_staleness only, not by the run's limit
        _check_fresh(plan, newest_event(plan, ev_lf[name], day, name), day, None, name)
    prov = rules if rules is not None else provenance(
        roadmap if isinstance(roadmap, (Roadmap, Pack)) else plan)
    store = state if isinstance(state, StateStore) else StateStore(state)
    started = _now()
    try:
        with store.transaction():
            store.check_plan(plan.id, key, key_dtype, acc_df[key])
            later = [d for d in store.runs()["as_of"].to_list() if d > day]
            if later and not rewind:
                raise StoreError(
                    f"the store has runs after {day} (latest {max(later)}); run a later "
                    "date, or pass rewind=True (--rewind) to undo them first", path=store.path)
            undone = store.undo_from(day)
            previous = store.last_run()
            pinned = tuple(store.add_pin(p.account, p.target, p.value, reason=p.reason,
                                         expires=p.expires, on=day, set_by=p.set_by)
                           for p in checked)
            for oid in unpins:
                store.end_pin(oid, on=day)
            held = tuple(store.add_hold(h.account, h.roadmap or "", h.action, h.hold,
                                        reason=h.reason, until=h.until, on=day,
                                        set_by=h.set_by) for h in checked_holds)
            for hid in unholds:
                store.end_hold(hid, on=day)
            all_holds = store.holds(key=key, key_dtype=key_dtype)
            today_holds = holds_on(all_holds, day, key)
            before = store.run_info(previous) if previous is not None else None
            diff = rules_diff((before or {}).get("rules"), prov)
            skipped = _skipped(previous, day)
            old_actions = store.actions(key=key, key_dtype=key_dtype)
            old_stages = store.stages(key=key, key_dtype=key_dtype)
            all_pins = store.overrides(key=key, key_dtype=key_dtype)
            result, evaluation, computed = _evaluate(plan, ev_lf, acc_df, day, old_stages,
                                                     all_pins)
            rules_table = _rules_with_flags(plan)
            signals = result["signals"]
            if signals is None:
                signals = pl.DataFrame(schema={key: key_dtype, "roadmap": pl.String,
                                               "action_id": pl.String, "holds": pl.Boolean,
                                               "clear": pl.Boolean})
            else:
                signals = signals.drop("as_of")
            new_actions, changes = step(old_actions, signals, day, rules_table, key=key,
                                        stages=evaluation.stages, fired=evaluation.actions,
                                        holds=today_holds)
            changes = changes.with_columns(pl.lit(prov.hash, pl.String).alias("rules_hash"))
            new_stages = _stage_state(evaluation.stages, old_stages, key, day)
            store.write_run(day, key=key, old_actions=old_actions, new_actions=new_actions,
                            old_stages=old_stages, new_stages=new_stages, changes=changes,
                            plan_id=plan.id, accounts=evaluation.stages.height, started_at=started,
                            newest_event=newest.isoformat() if newest else None,
                            rules_hash=prov.hash, rules=prov.to_dict(), rules_diff=diff,
                            skipped=len(skipped),
                            scores=score_summary(evaluation.stages, evaluation.scores, key))
            if hook is not None:
                store.enqueue_deliveries(hook.url, day, payloads(
                    changes, evaluation.actions, key=key, as_of=day, plan_id=plan.id))
        report = deliver(store, hook) if hook is not None else None
    finally:
        if not isinstance(state, StateStore):
            store.close()
    snoozed = today_holds.filter(pl.col("hold") == "snooze").select(
        key, "roadmap", "action_id", pl.col("until").alias("snoozed_until"))
    open_now = new_actions.filter(pl.col("status") == "open").drop("status", "resolved_at").join(
        snoozed, on=[key, "roadmap", "action_id"], how="left", maintain_order="left")
    return RunResult(
        as_of=day, evaluation=evaluation, changes=changes, open=open_now,
        overrides=_overrides.report(plan, all_pins, day, key, computed),
        expired_overrides=_expired(all_pins, previous, day),
        undone=tuple(sorted(undone)), previous=previous, skipped=skipped,
        newest_event=newest, data_age=age, rules=prov, rules_diff=diff, pinned=pinned,
        holds=_holds.report(all_holds, day, key),
        expired_holds=_holds.expired(all_holds, previous, day), held=held,
        deliveries=report)


def check_pin(plan: Plan, accounts: pl.DataFrame, pin: Pin) -> Pin:
    """Check one pin against the plan and the accounts; return it with a typed account.

    Raises
    ------
    OverrideError
        With the reason (:func:`healthrules.history.overrides.pin_problem`).
    """
    key = plan.account_key
    dtype = accounts.schema[key]
    account: Any = pin.account
    if dtype.is_integer() and isinstance(account, str):
        try:
            account = int(account)
        except ValueError:
            pass
    problem = _overrides.pin_problem(plan, pin.target, pin.value)
    if problem is None and not _has(accounts[key], account):
        problem = f"no account {pin.account!r} in the accounts frame"
    if problem is not None:
        raise OverrideError(problem)
    return Pin(account=account, target=pin.target, value=float(pin.value), reason=pin.reason,
               expires=pin.expires, set_by=pin.set_by)


def _has(keys: pl.Series, account: Any) -> bool:
    try:
        return bool((keys == pl.Series([account], dtype=keys.dtype)[0]).any())
    except (TypeError, ValueError, pl.exceptions.PolarsError):
        return False


def _skipped(previous: dt.date | None, day: dt.date) -> tuple[dt.date, ...]:
    if previous is None or (day - previous).days <= 1:
        return ()
    return tuple(previous + dt.timedelta(days=k) for k in range(1, (day - previous).days))


def _evaluate(plan: Plan, events: dict[str, pl.LazyFrame], accounts: pl.DataFrame,
              day: dt.date,
              old_stages: pl.DataFrame, all_pins: pl.DataFrame,
              ) -> tuple[dict[str, Any], Evaluation, pl.DataFrame | None]:
    key = plan.account_key
    before = old_stages.select(
        key, pl.lit(day, pl.Date).alias(AS_OF), pl.col("roadmap").alias("__roadmap_before"),
        pl.col("stage").alias("__stage_before"), pl.col("since").alias("__stage_since"))

    def pin_overlay(dates: Sequence[dt.date]) -> pl.DataFrame | None:
        return _overrides.overlay(plan, all_pins, dates, key)

    engine, result = evaluate_dates(plan, events, accounts, [day], overlay=pin_overlay,
                                    signals=signals_for(plan), stage_before=before)

    def pick(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.filter(pl.col("as_of") == day).drop("as_of")

    stages = pick(result["stages"])
    diagnostics = dict(engine.diagnostics)
    diagnostics["accounts"] = stages.height
    diagnostics["accounts_unrouted"] = result["unrouted"].get(day, 0)
    attributes = engine.accounts
    if engine.dated:  # the rows of the run date, and who did not exist then
        diagnostics["accounts_not_started"], diagnostics["accounts_ended"] = (
            engine.absent.get(day, (0, 0)))
        attributes = valid_rows(attributes, day)
    evaluation = Evaluation(
        plan=plan, as_of=day, account_key=key, indicators=pick(result["indicators"]),
        stages=stages, scores=pick(result["scores"]), actions=pick(result["actions"].render()),
        conditions=pick(result["conditions"]), diagnostics=diagnostics,
        attributes=attributes, time_values=(
            time_values(time_needs(plan), key, result["stages"], result["time_overlay"])
            .drop("as_of") if "time_overlay" in result else None))
    extras = result["extras"]
    computed = pick(extras) if extras is not None else None
    return result, evaluation, computed


def _stage_state(stages: pl.DataFrame, old: pl.DataFrame, key: str,
                 day: dt.date) -> pl.DataFrame:
    """Each account's stage after the run; ``since`` carries over while it stays put."""
    now = stages.select(key, "roadmap", "stage")
    joined = now.join(old.select(key, pl.col("roadmap").alias("__r"),
                                 pl.col("stage").alias("__s"), "since"), on=key, how="left")
    same = pl.col("roadmap").eq_missing(pl.col("__r")) & (pl.col("stage") == pl.col("__s"))
    return joined.select(key, "roadmap", "stage",
                         pl.when(same.fill_null(False)).then(pl.col("since")).otherwise(
                             pl.lit(day, pl.Date)).alias("since"))


def _expired(all_pins: pl.DataFrame, previous: dt.date | None, day: dt.date) -> pl.DataFrame:
    """Overrides that stopped applying after the previous run and on or before ``day``."""
    lo = pl.lit(previous, pl.Date) if previous is not None else pl.lit(dt.date.min, pl.Date)
    hi = pl.lit(day, pl.Date)
    ended = pl.min_horizontal("expires_on", "removed_on")
    return all_pins.filter((ended > lo) & (ended <= hi)).with_columns(
        ended.alias("ended_on")).sort("ended_on", "id")


def changes_json(result: RunResult) -> list[dict[str, Any]]:
    """The changes as JSON-ready dicts (what ``--format json`` prints)."""
    text = result.to_ndjson()
    return [json.loads(line) for line in text.splitlines() if line]


EXPORT_COLUMNS = (
    "external_id", "account", "account_key", "roadmap", "rules_hash", "stage", "action_id",
    "kind", "title", "owner", "owner_role", "channel", "priority", "opened_at", "due_date",
    "escalated_at", "snoozed_until", "text", "evidence",
)
"""The columns of the CRM-import export, in order (docs/operations.md#crm-import). They are
stable: a new column is only ever added at the end."""


def export_frame(result: RunResult) -> pl.DataFrame:
    """The open actions after a run, one row per (account, action), for a CRM import.

    ``external_id`` (``roadmap/action_id/account/opened_at``) identifies one opening of an
    action, so an import can upsert on it; ``evidence`` is what made the condition true on
    the run date (empty for an action that stays open without firing, by hysteresis or
    ``resolved_when``). Ordered by priority, due date, account.
    """
    from healthrules.engine.frames import PRIORITY_RANK

    ev = result.evaluation
    key = ev.account_key
    on = [key, "roadmap", "action_id"]
    rules = _rules_with_flags(ev.plan).select("roadmap", "action_id", "kind", "title",
                                              "owner_role", "channel")
    evidence = ev.actions.select(*on, "evidence").unique(on, keep="first",
                                                         maintain_order=True)
    rules_hash = result.rules.hash if result.rules is not None else None
    frame = result.open.join(rules, on=["roadmap", "action_id"], how="left").join(
        evidence, on=on, how="left").with_columns(
        pl.col("evidence").fill_null(pl.lit([], dtype=ev.actions.schema["evidence"])))
    return frame.select(
        pl.concat_str([pl.col("roadmap"), pl.col("action_id"), pl.col(key).cast(pl.String),
                       pl.col("opened_at").cast(pl.String)], separator="/").alias(
            "external_id"),
        pl.col(key).alias("account"), pl.lit(key).alias("account_key"), "roadmap",
        pl.lit(rules_hash, pl.String).alias("rules_hash"), "stage", "action_id", "kind",
        "title", "owner", "owner_role", "channel", "priority", "opened_at", "due_date",
        "escalated_at", "snoozed_until", "text", "evidence",
        pl.col("priority").replace_strict(PRIORITY_RANK, default=9, return_dtype=pl.Int64)
        .alias("__rank"),
    ).sort("__rank", "due_date", "account", "roadmap", "action_id",
           nulls_last=True).drop("__rank")


def export_open(result: RunResult, path: str | os.PathLike[str], *,
                format: str | None = None) -> Path:
    """Write the open actions after a run (:func:`export_frame`) as CSV or NDJSON, atomically.

    ``format`` is ``csv`` or ``ndjson`` (default: from the file's suffix, ``.csv`` or
    ``.ndjson``/``.jsonl``). In CSV, dates are ``YYYY-MM-DD``, empty cells are nulls and
    ``evidence`` is a JSON array in one cell; in NDJSON it is an array of objects.

    Raises
    ------
    ValueError
        For another format or suffix.
    """
    from healthrules.output import atomic_write_text

    target = Path(path)
    fmt = format or {".csv": "csv", ".ndjson": "ndjson", ".jsonl": "ndjson"}.get(
        target.suffix.lower())
    if fmt not in ("csv", "ndjson"):
        raise ValueError(f"export format is csv or ndjson, got {format or target.suffix!r}")
    frame = export_frame(result)
    if fmt == "csv":
        # each list of evidence structs as one JSON array, a whole column at a time
        as_json = pl.struct(pl.col("evidence").alias("e")).struct.json_encode().str.strip_prefix(
            '{"e":').str.strip_suffix("}")
        text = frame.with_columns(as_json.alias("evidence")).write_csv()
    else:
        text = frame.write_ndjson()
    atomic_write_text(target, text)
    return target

