"""The state store: an embedded SQLite database that keeps the lifecycle between daily runs.

One file holds, for one roadmap (or pack):

- ``action_state``: each (account, action) that is pending, open, or resolved and cooling down;
- ``stage_state``: each account's stage and since when (for ``days_in_stage`` and ``stuck``);
- ``overrides``: values pinned by a CSM, with a reason and an expiry;
- ``holds``: single actions of single accounts snoozed or dismissed by a CSM, with a reason
  and an expiry (schema 3);
- ``changes``: what every run reported (opened, resolved, escalated);
- ``deliveries``: each change queued for a webhook URL, pending or delivered (schema 3);
- ``runs``: one row per run date; ``meta``: the schema version and the account key;
- ``run_scores``: what each run scored, per roadmap, stage and score band: accounts, the sum,
  minimum and maximum of their scores, and how many reached the goal (schema 4), so that score
  trends can be drawn from the runs kept, without evaluating the past again.

State rows are versioned by run date (``valid_from``, ``valid_to``): a run only closes the
rows that changed and inserts their new version. That is what makes a rerun of the same date
idempotent: the rerun first undoes its own earlier version (deletes the rows it inserted,
reopens the rows it closed) and then computes again from the state before that date.

Every run is one transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``) in WAL mode with full
synchronisation: a run that crashes or is killed leaves the previous state exactly as it
was, and concurrent readers never see half a run. A second writer waits up to
``busy_timeout`` seconds for the first.

Schema versions: :data:`SCHEMA_VERSION` is the version this release writes, and
:data:`MIGRATIONS` upgrades older files one version at a time, inside one transaction, when
they are opened. A file written by a newer release is refused with a clear error.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import polars as pl

from healthrules.errors import Code, HealthRulesError, Issue, Location

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "StateStore",
    "StoreCorruptError",
    "StoreError",
    "backup_store",
    "check_store",
    "restore_store",
    "score_summary",
]

SCHEMA_VERSION = 4
"""The schema version this release writes."""

REQUIRED_TABLES = ("meta", "runs", "action_state", "stage_state", "changes", "overrides")
"""The tables every store has; a store without one of them is corrupted."""
REQUIRED_TABLES_V3 = ("holds", "deliveries")
"""The tables a store of schema version 3 or later also has."""
REQUIRED_TABLES_V4 = ("run_scores",)
"""The tables a store of schema version 4 or later also has."""

_SCHEMA_V1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE runs (
    as_of TEXT PRIMARY KEY,
    started_at TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    plan_id TEXT NOT NULL,
    healthrules_version TEXT NOT NULL,
    accounts INTEGER NOT NULL,
    opened INTEGER NOT NULL,
    resolved INTEGER NOT NULL,
    escalated INTEGER NOT NULL
);
CREATE TABLE action_state (
    account NOT NULL,
    roadmap TEXT NOT NULL,
    action_id TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'open', 'resolved')),
    since TEXT,
    opened_at TEXT,
    resolved_at TEXT,
    escalated_at TEXT,
    stage TEXT,
    priority TEXT,
    text TEXT,
    valid_from TEXT NOT NULL,
    valid_to TEXT
);
CREATE INDEX action_state_current ON action_state (valid_to, account);
CREATE INDEX action_state_from ON action_state (valid_from);
CREATE TABLE stage_state (
    account NOT NULL,
    roadmap TEXT,
    stage TEXT NOT NULL,
    since TEXT NOT NULL,
    valid_from TEXT NOT NULL,
    valid_to TEXT
);
CREATE INDEX stage_state_current ON stage_state (valid_to, account);
CREATE INDEX stage_state_from ON stage_state (valid_from);
CREATE TABLE changes (
    as_of TEXT NOT NULL,
    account NOT NULL,
    roadmap TEXT NOT NULL,
    action_id TEXT NOT NULL,
    change TEXT NOT NULL,
    reason TEXT,
    stage TEXT,
    priority TEXT,
    kind TEXT,
    title TEXT,
    text TEXT,
    opened_at TEXT,
    days_open INTEGER
);
CREATE INDEX changes_as_of ON changes (as_of);
CREATE TABLE overrides (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account NOT NULL,
    target TEXT NOT NULL,
    value REAL NOT NULL,
    reason TEXT NOT NULL CHECK (length(trim(reason)) > 0),
    set_by TEXT,
    created_on TEXT NOT NULL,
    expires_on TEXT NOT NULL,
    removed_on TEXT,
    CHECK (expires_on > created_on)
);
CREATE INDEX overrides_account ON overrides (account);
"""

_V2_COLUMNS = (
    ("runs", "newest_event", "TEXT"),
    ("runs", "rules_hash", "TEXT"),
    ("runs", "rules", "TEXT"),
    ("runs", "rules_diff", "TEXT"),
    ("runs", "skipped", "INTEGER"),
    ("action_state", "rules_hash", "TEXT"),
    ("changes", "rules_hash", "TEXT"),
)


def _to_v2(conn: sqlite3.Connection) -> None:
    """Version 2: provenance (rules hash and files per run, per state row and per change), the
    newest event time of each run and the days it skipped."""
    for table, column, sqltype in _V2_COLUMNS:
        conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {sqltype}")


_V3_COLUMNS = (
    ("action_state", "due_date", "TEXT"),
    ("action_state", "owner", "TEXT"),
    ("changes", "due_date", "TEXT"),
    ("changes", "owner", "TEXT"),
    ("changes", "owner_role", "TEXT"),
    ("changes", "channel", "TEXT"),
)

_V3_TABLES = """
CREATE TABLE holds (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account NOT NULL,
    roadmap TEXT NOT NULL,
    action_id TEXT NOT NULL,
    hold TEXT NOT NULL CHECK (hold IN ('snooze', 'dismiss')),
    reason TEXT NOT NULL CHECK (length(trim(reason)) > 0),
    set_by TEXT,
    created_on TEXT NOT NULL,
    until TEXT NOT NULL,
    removed_on TEXT,
    CHECK (until > created_on)
);
CREATE INDEX holds_account ON holds (account);
CREATE TABLE deliveries (
    idempotency_key TEXT NOT NULL,
    url TEXT NOT NULL,
    as_of TEXT NOT NULL,
    seq INTEGER NOT NULL,
    account NOT NULL,
    roadmap TEXT NOT NULL,
    action_id TEXT NOT NULL,
    change TEXT NOT NULL,
    payload TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'delivered')),
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    last_attempt_at TEXT,
    delivered_at TEXT,
    PRIMARY KEY (idempotency_key, url)
);
CREATE INDEX deliveries_pending ON deliveries (url, status, as_of);
"""


def _to_v3(conn: sqlite3.Connection) -> None:
    """Version 3: routing. Due dates and owners on state rows and changes, the snoozes and
    dismissals of single actions (``holds``), and webhook deliveries (``deliveries``)."""
    for table, column, sqltype in _V3_COLUMNS:
        conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {sqltype}")
    for statement in _V3_TABLES.split(";"):
        if statement.strip():
            conn.execute(statement)


_V4_TABLES = """
CREATE TABLE run_scores (
    as_of TEXT NOT NULL,
    roadmap TEXT,
    stage TEXT,
    score_band TEXT,
    accounts INTEGER NOT NULL,
    scored INTEGER NOT NULL,
    score_sum REAL,
    score_min REAL,
    score_max REAL,
    goal_known INTEGER NOT NULL,
    goal_reached INTEGER NOT NULL
);
CREATE INDEX run_scores_as_of ON run_scores (as_of);
"""


def _to_v4(conn: sqlite3.Connection) -> None:
    """Version 4: the scores of each run, per roadmap, stage and score band (``run_scores``).
    Runs stored before it have none."""
    for statement in _V4_TABLES.split(";"):
        if statement.strip():
            conn.execute(statement)


MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {1: _to_v2, 2: _to_v3, 3: _to_v4}
"""``MIGRATIONS[n]`` upgrades a schema of version ``n`` to ``n + 1``. Each runs inside the
opening transaction; the version is bumped after it."""

# the columns of each frame as stored (dates as ISO text)
_ACTION_COLUMNS = ("roadmap", "action_id", "status", "since", "opened_at", "resolved_at",
                   "escalated_at", "stage", "priority", "text", "due_date", "owner")
_ACTION_DATES = ("since", "opened_at", "resolved_at", "escalated_at", "due_date")
_CHANGE_COLUMNS = ("roadmap", "action_id", "change", "reason", "stage", "priority", "kind",
                   "title", "text", "opened_at", "days_open", "rules_hash", "due_date",
                   "owner", "owner_role", "channel")
_RUN_COLUMNS: dict[str, pl.DataType] = {
    "as_of": pl.String(), "started_at": pl.String(), "finished_at": pl.String(),
    "plan_id": pl.String(), "healthrules_version": pl.String(), "accounts": pl.Int64(),
    "opened": pl.Int64(), "resolved": pl.Int64(), "escalated": pl.Int64(),
    "newest_event": pl.String(), "rules_hash": pl.String(), "skipped": pl.Int64()}
_SCORE_COLUMNS: dict[str, pl.DataType] = {
    "roadmap": pl.String(), "stage": pl.String(), "score_band": pl.String(),
    "accounts": pl.Int64(), "scored": pl.Int64(), "score_sum": pl.Float64(),
    "score_min": pl.Float64(), "score_max": pl.Float64(), "goal_known": pl.Int64(),
    "goal_reached": pl.Int64()}

PAUSE_ENV = "HEALTHRULES_TEST_PAUSE_IN_RUN"
"""Test hook: seconds to sleep inside a run's transaction, after its writes, before commit."""
PAUSE_MARKER_ENV = "HEALTHRULES_TEST_PAUSE_MARKER"
"""Test hook: a file created when the run reaches the pause (so a test knows when to kill)."""


class StoreError(HealthRulesError):
    """The state store cannot be used: newer schema, another roadmap, a locked file, ...

    Its issues have the code ``state_store``.
    """

    def __init__(self, message: str, *, path: str | os.PathLike[str] | None = None) -> None:
        location = Location(file=str(path)) if path is not None else Location()
        super().__init__([Issue(code=Code.STATE_STORE.value, message=message,
                                location=location)])


class StoreCorruptError(StoreError):
    """The file is not a valid healthrules store: damaged pages, missing tables, bad values.

    The message says what is wrong and what to do: restore the latest backup (``healthrules
    store backup`` makes one; ``healthrules store check`` tells what is wrong). The file is
    never reset: its history may still be recoverable.
    """

    def __init__(self, problem: str, *, path: str | os.PathLike[str]) -> None:
        super().__init__(
            f"the state store is corrupted: {problem}. It was not changed. Restore the latest "
            "backup (healthrules store restore BACKUP STATE), or move the file away to start "
            "a new store; `healthrules store check` lists the problems", path=path)
        self.problem = problem


class StateStore:
    """The lifecycle state of one roadmap between runs, in an SQLite file.

    Parameters
    ----------
    path
        The database file; created (with its folder) if missing.
    busy_timeout
        Seconds a run waits for another run holding the write lock.

    Raises
    ------
    StoreError
        If the file is not a healthrules store, or was written by a newer release.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "state.db"
    >>> with StateStore(path) as store:
    ...     store.schema_version, store.last_run()
    (4, None)
    """

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout: float = 30.0,
                 create: bool = True, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        if not self.path.exists():
            if not create or readonly:
                raise StoreError("no state store at this path", path=self.path)
            _create(self.path)
        self._check_file()
        self.conn = self._connect(busy_timeout)
        try:
            self._check()
            if not readonly:
                self._upgrade()
        except BaseException:
            self.conn.close()
            raise

    # ------------------------------------------------------------------ lifecycle of the file

    def _check_file(self) -> None:
        if self.path.is_dir():
            raise StoreError("is a folder, not a state store file", path=self.path)
        if self.path.stat().st_size == 0:
            raise StoreCorruptError("the file is empty (0 bytes), so its history is gone",
                                    path=self.path)
        if self.readonly:
            return
        folder = self.path.parent
        if not os.access(self.path, os.W_OK) or not os.access(folder, os.W_OK | os.X_OK):
            what = "file" if not os.access(self.path, os.W_OK) else f"folder {folder}"
            raise StoreError(f"the store's {what} is read-only; a run writes the store (and "
                             "its -wal and -shm files next to it): fix the permissions or "
                             "the owner", path=self.path)

    def _connect(self, busy_timeout: float) -> sqlite3.Connection:
        try:
            if self.readonly:
                uri = f"file:{quote(str(self.path.resolve()))}?mode=ro"
                conn = sqlite3.connect(uri, uri=True, isolation_level=None,
                                       timeout=busy_timeout, check_same_thread=False)
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
                return conn
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=busy_timeout,
                                   check_same_thread=False)
            try:
                mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()
                if mode is None or str(mode[0]).lower() != "wal":
                    raise StoreError("cannot switch the database to WAL mode", path=self.path)
                conn.execute("PRAGMA synchronous=FULL")
                conn.execute("PRAGMA foreign_keys=ON")
            except BaseException:
                conn.close()
                raise
            return conn
        except sqlite3.DatabaseError as exc:
            raise _store_error(exc, self.path) from exc

    def _check(self) -> None:
        """Refuse a damaged store: ``PRAGMA quick_check``, the tables, the schema version and
        the run dates (the other dates are checked when they are read)."""
        problems = _structure_problems(self.conn, quick=True)
        if problems:
            raise StoreCorruptError("; ".join(problems), path=self.path)
        if self.schema_version > SCHEMA_VERSION:
            raise StoreError(
                f"the store has schema version {self.schema_version}, written by a newer "
                f"healthrules; this release reads versions up to {SCHEMA_VERSION}. Upgrade "
                "healthrules to use it.", path=self.path)

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection (a run in progress is rolled back)."""
        self.conn.close()

    @property
    def schema_version(self) -> int:
        """The schema version of the file."""
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        return int(row[0])

    def _upgrade(self) -> None:
        with self.transaction():
            version = self.schema_version
            while version < SCHEMA_VERSION:
                migrate = MIGRATIONS.get(version)
                if migrate is None:
                    raise StoreError(f"no migration from schema version {version}",
                                     path=self.path)
                migrate(self.conn)
                version += 1
                self._set_meta("schema_version", str(version))
                self._set_meta(f"migrated_to_{version}", _version())

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE``): commit on success, else roll back.

        Raises
        ------
        StoreError
            If another process holds the write lock longer than ``busy_timeout``.
        """
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise _store_error(exc, self.path) from exc
            raise StoreError(f"cannot lock the store for writing ({exc}); is another run in "
                             "progress?", path=self.path) from exc
        try:
            yield self.conn
            self.conn.execute("COMMIT")
        except BaseException as exc:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.DatabaseError):
                raise _store_error(exc, self.path) from exc
            raise

    def _set_meta(self, key: str, value: str) -> None:
        self.conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) "
                          "DO UPDATE SET value = excluded.value", (key, value))

    def meta(self) -> dict[str, str]:
        """Every meta entry (schema version, the account key and its type, the plan)."""
        return dict(self.conn.execute("SELECT key, value FROM meta").fetchall())

    # ------------------------------------------------------------------ reading

    def runs(self) -> pl.DataFrame:
        """One row per stored run, oldest first.

        Columns: ``as_of``, ``started_at``, ``finished_at``, ``plan_id``,
        ``healthrules_version``, the counts, ``newest_event`` (the newest event time the run
        read), ``rules_hash`` (the content hash of its rule files) and ``skipped`` (days
        without a run before it).
        """
        rows = self.conn.execute(
            f"SELECT {', '.join(_RUN_COLUMNS)} FROM runs ORDER BY as_of").fetchall()
        return self._dates(_frame(rows, _RUN_COLUMNS, "runs", self.path), ("as_of",), "runs")

    def run_scores(self) -> pl.DataFrame:
        """What each stored run scored, oldest first: ``as_of``, ``roadmap``, ``stage``,
        ``score_band`` (null: no band) and, over the accounts of that group, ``accounts``,
        ``scored`` (with a score), ``score_sum``, ``score_min``, ``score_max``,
        ``goal_known`` (a roadmap with a goal target, and a known verdict) and
        ``goal_reached``. Runs stored before schema version 4 have no rows."""
        schema = {"as_of": pl.String(), **_SCORE_COLUMNS}
        rows = [] if self.schema_version < 4 else self.conn.execute(  # read-only, older file
            f"SELECT as_of, {', '.join(_SCORE_COLUMNS)} FROM run_scores ORDER BY as_of, "
            "rowid").fetchall()
        return self._dates(_frame(rows, schema, "run_scores", self.path), ("as_of",),
                           "run_scores")

    def run_info(self, as_of: dt.date | str) -> dict[str, Any] | None:
        """One stored run as a dict, with its ``rules`` (files and action conditions) and
        ``rules_diff`` (what changed since the run before), or None if there is none."""
        cols = [*_RUN_COLUMNS, "rules", "rules_diff"]
        row = self.conn.execute(f"SELECT {', '.join(cols)} FROM runs WHERE as_of = ?",
                                (_date(as_of).isoformat(),)).fetchone()
        if row is None:
            return None
        info = dict(zip(cols, row, strict=True))
        for name in ("rules", "rules_diff"):
            try:
                info[name] = json.loads(info[name]) if info[name] else None
            except ValueError as exc:
                raise StoreCorruptError(f"runs: {name} of {as_of} is not JSON",
                                        path=self.path) from exc
        return info

    def previous_run(self, as_of: dt.date) -> dt.date | None:
        """The latest run dated before ``as_of``, or None."""
        row = self.conn.execute("SELECT max(as_of) FROM runs WHERE as_of < ?",
                                (as_of.isoformat(),)).fetchone()
        return None if row is None or row[0] is None else dt.date.fromisoformat(row[0])

    def _select(self, table: str, cols: Sequence[str]) -> str:
        """The select list of ``cols``; a column an older schema lacks (a store opened
        read-only is not upgraded) reads as null."""
        have = {r[1] for r in self.conn.execute(f"PRAGMA table_info({table})")}
        return ", ".join(c if c in have else f"NULL AS {c}" for c in cols)

    def _dates(self, frame: pl.DataFrame, cols: Sequence[str], table: str) -> pl.DataFrame:
        """Parse ISO date columns read from ``table``; a value that is not a date means the
        file was damaged or edited by hand."""
        parsed = frame.with_columns(pl.col(c).str.to_date("%Y-%m-%d", strict=False)
                                    for c in cols)
        for c in cols:
            bad = frame.filter(pl.col(c).is_not_null() & parsed[c].is_null())
            if bad.height:
                raise StoreCorruptError(f"{table}: {c} {bad[c][0]!r} is not a date",
                                        path=self.path)
        return parsed

    def last_run(self) -> dt.date | None:
        """The date of the latest run, or None."""
        row = self.conn.execute("SELECT max(as_of) FROM runs").fetchone()
        if row is None or row[0] is None:
            return None
        try:
            return dt.date.fromisoformat(row[0])
        except (TypeError, ValueError) as exc:
            raise StoreCorruptError(f"runs: as_of {row[0]!r} is not a date",
                                    path=self.path) from exc

    def _key_dtype(self, default: pl.DataType | None = None) -> pl.DataType:
        name = self.meta().get("account_key_dtype")
        if name is None:
            return default or pl.String()
        return {"int": pl.Int64(), "str": pl.String()}.get(name, pl.String())

    def actions(self, *, key: str = "account_id", key_dtype: pl.DataType | None = None,
                statuses: Sequence[str] = ("pending", "open", "resolved"),
                provenance: bool = False) -> pl.DataFrame:
        """The current lifecycle state of every (account, action) (after the last run).

        With ``provenance``, also ``valid_from`` (the run that wrote the row) and
        ``rules_hash`` (the content hash of that run's rule files).
        """
        dtype = key_dtype or self._key_dtype()
        marks = ", ".join("?" for _ in statuses)
        extra = ", valid_from, rules_hash" if provenance else ""
        rows = self.conn.execute(
            f"SELECT account, {self._select('action_state', _ACTION_COLUMNS)}{extra} "
            "FROM action_state "
            f"WHERE valid_to IS NULL AND status IN ({marks}) ORDER BY account, roadmap, "
            "action_id", tuple(statuses)).fetchall()
        from healthrules.history.lifecycle import STATE_SCHEMA

        schema = {key: dtype, **{c: (pl.String() if c in _ACTION_DATES else STATE_SCHEMA[c])
                                 for c in _ACTION_COLUMNS}}
        dates: tuple[str, ...] = _ACTION_DATES
        if provenance:
            schema.update(valid_from=pl.String(), rules_hash=pl.String())
            dates = (*dates, "valid_from")
        return self._dates(_frame(rows, schema, "action_state", self.path), dates,
                           "action_state")

    def stages(self, *, key: str = "account_id",
               key_dtype: pl.DataType | None = None) -> pl.DataFrame:
        """Every account's current roadmap, stage and the date it entered it."""
        dtype = key_dtype or self._key_dtype()
        rows = self.conn.execute(
            "SELECT account, roadmap, stage, since FROM stage_state WHERE valid_to IS NULL "
            "ORDER BY account").fetchall()
        schema = {key: dtype, "roadmap": pl.String(), "stage": pl.String(), "since": pl.String()}
        return self._dates(_frame(rows, schema, "stage_state", self.path), ("since",),
                           "stage_state")

    def changes(self, as_of: dt.date | str | None = None, *, key: str = "account_id",
                key_dtype: pl.DataType | None = None) -> pl.DataFrame:
        """What runs reported (one run's, or all), in run order."""
        dtype = key_dtype or self._key_dtype()
        cols = self._select("changes", _CHANGE_COLUMNS)
        if as_of is None:
            rows = self.conn.execute(f"SELECT as_of, account, {cols} FROM changes "
                                     "ORDER BY rowid").fetchall()
        else:
            rows = self.conn.execute(f"SELECT as_of, account, {cols} FROM changes WHERE "
                                     "as_of = ? ORDER BY rowid", (str(as_of),)).fetchall()
        schema: dict[str, pl.DataType] = {"as_of": pl.String(), key: dtype,
                                          **{c: pl.String() for c in _CHANGE_COLUMNS}}
        schema["days_open"] = pl.Int64()
        return self._dates(_frame(rows, schema, "changes", self.path),
                           ("as_of", "opened_at", "due_date"), "changes")

    # ------------------------------------------------------------------ overrides

    def pin(self, account: Any, target: str, value: float, *, reason: str,
            expires: dt.date | str, on: dt.date | str | None = None,
            set_by: str | None = None) -> int:
        """Pin an indicator (or ``"score"``) of an account to a value until ``expires``.

        The pin applies to runs dated from ``on`` (default: today) up to the day before
        ``expires``; a later pin of the same account and target takes precedence.

        Parameters
        ----------
        account
            The account key.
        target
            An indicator id, or ``"score"``.
        value
            The pinned value (numbers only).
        reason
            Why (required: it is shown with every evaluation that uses the pin).
        expires
            The first date the pin no longer applies.
        on
            The first date it applies (default: today).
        set_by
            Who set it.

        Returns
        -------
        int
            The override id (for :meth:`unpin`).

        Raises
        ------
        StoreError
            Without a reason, with an expiry not after ``on``, or a value that is not a
            number.
        """
        with self.transaction():
            return self.add_pin(account, target, value, reason=reason, expires=expires,
                                on=on, set_by=set_by)

    def add_pin(self, account: Any, target: str, value: float, *, reason: str,
                expires: dt.date | str, on: dt.date | str | None = None,
                set_by: str | None = None) -> int:
        """:meth:`pin` inside a transaction the caller holds (a daily run pins in its own).

        Idempotent: the same pin (account, target, value, reason, dates, who) already in the
        store is not stored twice; its id is returned.
        """
        start = _date(on) if on is not None else dt.date.today()
        end = _date(expires)
        if not isinstance(reason, str) or not reason.strip():
            raise StoreError("an override needs a reason")
        if end <= start:
            raise StoreError(f"an override must expire after it starts ({start}); got {end}")
        if (isinstance(value, bool) or not isinstance(value, (int, float))
                or not math.isfinite(value)):
            raise StoreError(f"an override pins a finite number; got {value!r}")
        if not isinstance(target, str) or not target:
            raise StoreError("an override needs a target: an indicator id or 'score'")
        fields = (account, target, float(value), reason.strip(), set_by, start.isoformat(),
                  end.isoformat())
        row = self.conn.execute(
            "SELECT id FROM overrides WHERE account = ? AND target = ? AND value = ? AND "
            "reason = ? AND set_by IS ? AND created_on = ? AND expires_on = ? AND "
            "removed_on IS NULL ORDER BY id LIMIT 1", fields).fetchone()
        if row is not None:
            return int(row[0])
        cur = self.conn.execute(
            "INSERT INTO overrides (account, target, value, reason, set_by, created_on, "
            "expires_on) VALUES (?, ?, ?, ?, ?, ?, ?)", fields)
        return int(cur.lastrowid or 0)

    def unpin(self, override_id: int, *, on: dt.date | str | None = None) -> None:
        """End an override from ``on`` (default: today) on.

        Raises
        ------
        StoreError
            If there is no such override.
        """
        with self.transaction():
            self.end_pin(override_id, on=on)

    def end_pin(self, override_id: int, *, on: dt.date | str | None = None) -> None:
        """:meth:`unpin` inside a transaction the caller holds (idempotent)."""
        day = _date(on) if on is not None else dt.date.today()
        cur = self.conn.execute("UPDATE overrides SET removed_on = ? WHERE id = ?",
                                (day.isoformat(), override_id))
        if cur.rowcount == 0:
            raise StoreError(f"no override with id {override_id}", path=self.path)

    def overrides(self, *, active_on: dt.date | str | None = None, key: str = "account_id",
                  key_dtype: pl.DataType | None = None) -> pl.DataFrame:
        """Overrides (all, or those in force on a date), newest first."""
        dtype = key_dtype or self._key_dtype()
        sql = ("SELECT id, account, target, value, reason, set_by, created_on, expires_on, "
               "removed_on FROM overrides")
        args: tuple[Any, ...] = ()
        if active_on is not None:
            d = _date(active_on).isoformat()
            sql += (" WHERE created_on <= ? AND ? < expires_on AND (removed_on IS NULL OR "
                    "? < removed_on)")
            args = (d, d, d)
        rows = self.conn.execute(sql + " ORDER BY id DESC", args).fetchall()
        schema: dict[str, pl.DataType] = {
            "id": pl.Int64(), key: dtype, "target": pl.String(), "value": pl.Float64(),
            "reason": pl.String(), "set_by": pl.String(), "created_on": pl.String(),
            "expires_on": pl.String(), "removed_on": pl.String()}
        return self._dates(_frame(rows, schema, "overrides", self.path),
                           ("created_on", "expires_on", "removed_on"), "overrides")

    # ------------------------------------------------------------------ snoozes, dismissals

    def add_hold(self, account: Any, roadmap: str, action_id: str, hold: str, *,
                 reason: str, until: dt.date | str, on: dt.date | str | None = None,
                 set_by: str | None = None) -> int:
        """Snooze or dismiss one action of one account from ``on`` (default: today) up to
        the day before ``until``, inside a transaction the caller holds (a daily run holds
        in its own; see :data:`healthrules.history.lifecycle.HOLD_KINDS`).

        Idempotent: the same hold already in the store is not stored twice; its id is
        returned.

        Raises
        ------
        StoreError
            Without a reason, with ``until`` not after ``on``, or an unknown kind.
        """
        start = _date(on) if on is not None else dt.date.today()
        end = _date(until)
        if hold not in ("snooze", "dismiss"):
            raise StoreError(f"a hold is 'snooze' or 'dismiss', not {hold!r}")
        if not isinstance(reason, str) or not reason.strip():
            raise StoreError(f"a {hold} needs a reason")
        if end <= start:
            raise StoreError(f"a {hold} must last past the day it starts ({start}); got "
                             f"--until {end}")
        fields = (account, roadmap, action_id, hold, reason.strip(), set_by,
                  start.isoformat(), end.isoformat())
        row = self.conn.execute(
            "SELECT id FROM holds WHERE account = ? AND roadmap = ? AND action_id = ? AND "
            "hold = ? AND reason = ? AND set_by IS ? AND created_on = ? AND until = ? AND "
            "removed_on IS NULL ORDER BY id LIMIT 1", fields).fetchone()
        if row is not None:
            return int(row[0])
        cur = self.conn.execute(
            "INSERT INTO holds (account, roadmap, action_id, hold, reason, set_by, "
            "created_on, until) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", fields)
        return int(cur.lastrowid or 0)

    def end_hold(self, hold_id: int, *, on: dt.date | str | None = None) -> None:
        """End a snooze or dismissal from ``on`` (default: today), inside a transaction the
        caller holds.

        Raises
        ------
        StoreError
            If there is no such hold.
        """
        day = _date(on) if on is not None else dt.date.today()
        cur = self.conn.execute("UPDATE holds SET removed_on = ? WHERE id = ?",
                                (day.isoformat(), hold_id))
        if cur.rowcount == 0:
            raise StoreError(f"no snooze or dismissal with id {hold_id}", path=self.path)

    def holds(self, *, key: str = "account_id",
              key_dtype: pl.DataType | None = None) -> pl.DataFrame:
        """Every snooze and dismissal, newest first: ``id``, key, ``roadmap``,
        ``action_id``, ``hold``, ``reason``, ``set_by``, ``created_on``, ``until``,
        ``removed_on`` (:func:`healthrules.history.lifecycle.holds_on` picks those in
        force on a date)."""
        dtype = key_dtype or self._key_dtype()
        rows = [] if self.schema_version < 3 else self.conn.execute(  # read-only, older file
            "SELECT id, account, roadmap, action_id, hold, reason, set_by, created_on, until, "
            "removed_on FROM holds ORDER BY id DESC").fetchall()
        schema: dict[str, pl.DataType] = {
            "id": pl.Int64(), key: dtype, "roadmap": pl.String(), "action_id": pl.String(),
            "hold": pl.String(), "reason": pl.String(), "set_by": pl.String(),
            "created_on": pl.String(), "until": pl.String(), "removed_on": pl.String()}
        return self._dates(_frame(rows, schema, "holds", self.path),
                           ("created_on", "until", "removed_on"), "holds")

    # ------------------------------------------------------------------ webhook deliveries

    def enqueue_deliveries(self, url: str, as_of: dt.date, rows: Sequence[
            tuple[str, Any, str, str, str, str]]) -> int:
        """Queue changes for delivery to ``url`` inside the run's transaction: rows of
        (idempotency key, account, roadmap, action_id, change, JSON payload), in order.
        A change already queued or delivered (same key and URL) is not queued again.
        Returns how many were queued."""
        iso = as_of.isoformat()
        before = self.conn.total_changes
        self.conn.executemany(
            "INSERT OR IGNORE INTO deliveries (idempotency_key, url, as_of, seq, account, "
            "roadmap, action_id, change, payload, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, "
            "'pending')", [(k, url, iso, i, acc, rm, aid, ch, payload)
                           for i, (k, acc, rm, aid, ch, payload) in enumerate(rows)])
        return self.conn.total_changes - before

    def pending_deliveries(self, url: str) -> list[tuple[str, str]]:
        """(idempotency key, payload) of every change not yet delivered to ``url``, oldest
        run first, in each run's order."""
        rows = self.conn.execute(
            "SELECT idempotency_key, payload FROM deliveries WHERE url = ? AND status = "
            "'pending' ORDER BY as_of, seq", (url,)).fetchall()
        return [(str(k), str(p)) for k, p in rows]

    def record_attempt(self, key: str, url: str, *, delivered: bool,
                       error: str | None = None) -> None:
        """Record one delivery attempt (its own small transaction)."""
        now = _now()
        with self.transaction():
            self.conn.execute(
                "UPDATE deliveries SET attempts = attempts + 1, last_attempt_at = ?, "
                "last_error = ?, status = CASE WHEN ? THEN 'delivered' ELSE status END, "
                "delivered_at = CASE WHEN ? THEN ? ELSE delivered_at END "
                "WHERE idempotency_key = ? AND url = ?",
                (now, error, delivered, delivered, now, key, url))

    def deliveries(self, *, key: str = "account_id",
                   key_dtype: pl.DataType | None = None) -> pl.DataFrame:
        """Every queued webhook delivery, oldest first: ``idempotency_key``, ``url``,
        ``as_of``, key, ``roadmap``, ``action_id``, ``change``, ``status`` (``pending`` or
        ``delivered``), ``attempts``, ``last_error``, ``last_attempt_at``,
        ``delivered_at``."""
        dtype = key_dtype or self._key_dtype()
        rows = [] if self.schema_version < 3 else self.conn.execute(  # read-only, older file
            "SELECT idempotency_key, url, as_of, account, roadmap, action_id, change, status, "
            "attempts, last_error, last_attempt_at, delivered_at FROM deliveries "
            "ORDER BY as_of, seq, url").fetchall()
        schema: dict[str, pl.DataType] = {
            "idempotency_key": pl.String(), "url": pl.String(), "as_of": pl.String(),
            key: dtype, "roadmap": pl.String(), "action_id": pl.String(),
            "change": pl.String(), "status": pl.String(), "attempts": pl.Int64(),
            "last_error": pl.String(), "last_attempt_at": pl.String(),
            "delivered_at": pl.String()}
        return self._dates(_frame(rows, schema, "deliveries", self.path), ("as_of",),
                           "deliveries")

    # ------------------------------------------------------------------ one run

    def check_plan(self, plan_id: str, key: str, key_dtype: pl.DataType,
                   keys: pl.Series | None = None) -> None:
        """Remember (first run) or check (later runs) the plan id and the account key.

        ``keys``: the run's account keys; an integer key beyond the 64-bit signed range
        SQLite keeps (a ``UInt64`` key of 2**63 or more) is refused.

        Raises
        ------
        StoreError
            If the store belongs to another roadmap or another account key, or cannot keep
            one of ``keys``.
        """
        if keys is not None and keys.dtype == pl.UInt64:
            beyond = keys.filter(keys > 2**63 - 1)
            if beyond.len():
                more = f" and {beyond.len() - 1:,} more" if beyond.len() > 1 else ""
                raise StoreError(
                    f"account key {beyond[0]} of column {key!r} (UInt64){more}: beyond the "
                    "64-bit signed integers a state store keeps (up to 2**63 - 1); nothing "
                    "was stored", path=self.path)
        meta = self.meta()
        kind = "int" if key_dtype.is_integer() else "str"
        if "plan_id" not in meta:
            self._set_meta("plan_id", plan_id)
            self._set_meta("account_key", key)
            self._set_meta("account_key_dtype", kind)
            return
        if meta["plan_id"] != plan_id:
            raise StoreError(f"the store keeps the state of roadmap {meta['plan_id']!r}, not "
                             f"{plan_id!r}; use one store per roadmap or pack", path=self.path)
        if meta.get("account_key") != key or meta.get("account_key_dtype") != kind:
            raise StoreError(f"the store keys accounts by {meta.get('account_key')!r} "
                             f"({meta.get('account_key_dtype')}), not {key!r} ({kind})",
                             path=self.path)

    def undo_from(self, as_of: dt.date) -> list[dt.date]:
        """Undo the runs dated ``as_of`` or later (newest first); return their dates.

        Call inside :meth:`transaction`.
        """
        dates = [dt.date.fromisoformat(r[0]) for r in self.conn.execute(
            "SELECT as_of FROM runs WHERE as_of >= ? ORDER BY as_of DESC",
            (as_of.isoformat(),)).fetchall()]
        for d in dates:
            iso = d.isoformat()
            for table in ("action_state", "stage_state"):
                self.conn.execute(f"DELETE FROM {table} WHERE valid_from = ?", (iso,))
                self.conn.execute(f"UPDATE {table} SET valid_to = NULL WHERE valid_to = ?",
                                  (iso,))
            self.conn.execute("DELETE FROM changes WHERE as_of = ?", (iso,))
            if self.schema_version >= 4:
                self.conn.execute("DELETE FROM run_scores WHERE as_of = ?", (iso,))
            # a delivered change stays (its key keeps a rerun from sending it again)
            self.conn.execute("DELETE FROM deliveries WHERE as_of = ? AND status = 'pending'",
                              (iso,))
            self.conn.execute("DELETE FROM runs WHERE as_of = ?", (iso,))
        return dates

    def write_run(self, as_of: dt.date, *, key: str, old_actions: pl.DataFrame,
                  new_actions: pl.DataFrame, old_stages: pl.DataFrame,
                  new_stages: pl.DataFrame, changes: pl.DataFrame, plan_id: str,
                  accounts: int, started_at: str, newest_event: str | None = None,
                  rules_hash: str | None = None, rules: dict[str, Any] | None = None,
                  rules_diff: dict[str, Any] | None = None, skipped: int = 0,
                  scores: pl.DataFrame | None = None) -> None:
        """Store one run: close changed state rows, insert their new versions, log changes.

        ``scores`` is the run's :func:`score_summary` (kept in ``run_scores`` for the score
        trends of the report).

        The provenance (``rules_hash``, ``rules``: the rule files and action conditions of
        the run) is kept in the run log, on every state row the run writes and on every
        change; ``rules_diff`` is what changed in the rules since the previous run.

        Call inside :meth:`transaction`, after :meth:`undo_from`.
        """
        iso = as_of.isoformat()
        on = [key, "roadmap", "action_id"]
        gone, added = _diff(old_actions, new_actions, on)
        self._close("action_state", gone, on, iso)
        self._insert("action_state", added.select(
            pl.col(key).alias("account"), *_ACTION_COLUMNS,
            pl.lit(rules_hash, pl.String).alias("rules_hash")), iso, dates=_ACTION_DATES)
        s_on = [key]
        s_gone, s_added = _diff(old_stages.select(key, "roadmap", "stage", "since"),
                                new_stages.select(key, "roadmap", "stage", "since"), s_on)
        self._close("stage_state", s_gone, s_on, iso)
        self._insert("stage_state", s_added.select(
            pl.col(key).alias("account"), "roadmap", "stage", "since"), iso, dates=("since",))
        if "rules_hash" not in changes.columns:
            changes = changes.with_columns(pl.lit(rules_hash, pl.String).alias("rules_hash"))
        ch = changes.select(pl.lit(iso).alias("as_of"), pl.col(key).alias("account"),
                            *_CHANGE_COLUMNS)
        ch = ch.with_columns(pl.col("opened_at").cast(pl.String),
                             pl.col("due_date").cast(pl.String))
        self._executemany(f"INSERT INTO changes (as_of, account, {', '.join(_CHANGE_COLUMNS)}) "
                          f"VALUES ({', '.join('?' for _ in ch.columns)})", ch)
        counts = {c: int((changes["change"] == c).sum()) for c in
                  ("opened", "resolved", "escalated")}
        _pause_for_tests()
        self.conn.execute(
            "INSERT INTO runs (as_of, started_at, finished_at, plan_id, healthrules_version, "
            "accounts, opened, resolved, escalated, newest_event, rules_hash, rules, "
            "rules_diff, skipped) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (iso, started_at, _now(), plan_id, _version(), accounts, counts["opened"],
             counts["resolved"], counts["escalated"], newest_event, rules_hash,
             json.dumps(rules, sort_keys=True) if rules is not None else None,
             json.dumps(rules_diff, sort_keys=True) if rules_diff is not None else None,
             skipped))
        if scores is not None and self.schema_version >= 4:
            self._executemany(
                f"INSERT INTO run_scores (as_of, {', '.join(_SCORE_COLUMNS)}) VALUES "
                f"({', '.join('?' for _ in range(len(_SCORE_COLUMNS) + 1))})",
                scores.select(pl.lit(iso).alias("as_of"), *_SCORE_COLUMNS))

    def _close(self, table: str, gone: pl.DataFrame, on: list[str], iso: str) -> None:
        if gone.height == 0:
            return
        cols = ["account", *on[1:]]
        where = " AND ".join(f"{c} = ?" for c in cols)
        self._executemany(f"UPDATE {table} SET valid_to = ? WHERE valid_to IS NULL AND {where}",
                          gone.select(pl.lit(iso).alias("__to"), *on))

    def _insert(self, table: str, frame: pl.DataFrame, iso: str, *,
                dates: Sequence[str]) -> None:
        if frame.height == 0:
            return
        frame = frame.with_columns(pl.col(c).cast(pl.String) for c in dates).with_columns(
            pl.lit(iso).alias("valid_from"))
        cols = ", ".join(frame.columns)
        self._executemany(f"INSERT INTO {table} ({cols}) VALUES "
                          f"({', '.join('?' for _ in frame.columns)})", frame)

    def _executemany(self, sql: str, frame: pl.DataFrame) -> None:
        if frame.height:
            # rows are handed to SQLite in bulk; no Python work per row beyond the driver's
            self.conn.executemany(sql, frame.rows())


def score_summary(stages: pl.DataFrame, scores: pl.DataFrame, key: str) -> pl.DataFrame:
    """What one evaluation scored, per roadmap, stage and score band (``run_scores``).

    ``stages`` and ``scores`` are an evaluation's frames; the result has one row per group
    with ``accounts``, ``scored``, ``score_sum``, ``score_min``, ``score_max``,
    ``goal_known`` and ``goal_reached`` (one aggregation; a few rows per run).
    """
    goal = (pl.col("goal_reached") if "goal_reached" in scores.columns
            else pl.lit(None, pl.Boolean))
    frame = stages.select(key, "roadmap", "stage").join(
        scores.select(key, "roadmap", "score", "score_band", goal.alias("goal_reached")),
        on=[key, "roadmap"], how="left", nulls_equal=True)
    return frame.group_by("roadmap", "stage", pl.col("score_band").cast(pl.String)).agg(
        pl.len().cast(pl.Int64).alias("accounts"),
        pl.col("score").count().cast(pl.Int64).alias("scored"),
        pl.col("score").sum().cast(pl.Float64).alias("score_sum"),
        pl.col("score").min().cast(pl.Float64).alias("score_min"),
        pl.col("score").max().cast(pl.Float64).alias("score_max"),
        pl.col("goal_reached").count().cast(pl.Int64).alias("goal_known"),
        pl.col("goal_reached").sum().cast(pl.Int64).alias("goal_reached"),
    ).sort("roadmap", "stage", "score_band", nulls_last=True)


# ---------------------------------------------------------------------- checks, backups


def _create(path: Path) -> None:
    """Create a new, empty store at ``path`` atomically.

    The schema is written to a temporary file in the same folder, which is then linked into
    place only if ``path`` still does not exist: a crash leaves no half-made store, and two
    processes creating the same store at once end with one of them.
    """
    from healthrules.output import umask

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".new", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~umask())
        os.close(fd)
        conn = sqlite3.connect(tmp, isolation_level=None)
        try:
            conn.execute("BEGIN")
            for statement in _SCHEMA_V1.split(";"):
                if statement.strip():
                    conn.execute(statement)
            for _table, column_sql in _v2_columns():
                conn.execute(column_sql)
            _to_v3(conn)
            _to_v4(conn)
            conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", [
                ("schema_version", str(SCHEMA_VERSION)), ("created_with", _version())])
            conn.execute("COMMIT")
            conn.execute("PRAGMA journal_mode=WAL")
        finally:
            conn.close()
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process created it first: use that one
    finally:
        Path(tmp).unlink(missing_ok=True)


def _v2_columns() -> list[tuple[str, str]]:
    return [(t, f"ALTER TABLE {t} ADD COLUMN {c} {k}") for t, c, k in _V2_COLUMNS]


def _store_error(exc: sqlite3.DatabaseError, path: Path) -> StoreError:
    """An SQLite error as a store error: read-only, full or locked file, or corruption."""
    text = str(exc)
    low = text.lower()
    if "readonly" in low or "read-only" in low:
        return StoreError(f"the store is read-only ({text}); a run writes it: fix the "
                          "permissions of the file and its folder", path=path)
    if "locked" in low or "busy" in low:
        return StoreError(f"the store is locked ({text}); is another run in progress?",
                          path=path)
    if "disk i/o" in low or "full" in low or "unable to open" in low:
        return StoreError(f"cannot use the store file ({text})", path=path)
    return StoreCorruptError(text, path=path)


def _structure_problems(conn: sqlite3.Connection, *, quick: bool) -> list[str]:
    """What is wrong with the file as a store (empty: nothing found)."""
    try:
        pragma = "quick_check" if quick else "integrity_check"
        rows = [str(r[0]) for r in conn.execute(f"PRAGMA {pragma}").fetchall()]
        if rows != ["ok"]:
            return [f"SQLite {pragma}: " + "; ".join(rows[:5])
                    + (f" (and {len(rows) - 5} more)" if len(rows) > 5 else "")]
        tables = {r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")}
        if not tables:
            return ["the database has no tables: not a healthrules state store"]
        if "meta" not in tables:
            return ["not a healthrules state store (no meta table)"]
        problems: list[str] = []
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        required = list(REQUIRED_TABLES)
        if row is not None and str(row[0]).isdigit() and int(row[0]) >= 3:
            required += REQUIRED_TABLES_V3
        if row is not None and str(row[0]).isdigit() and int(row[0]) >= 4:
            required += REQUIRED_TABLES_V4
        missing = [t for t in required if t not in tables]
        if missing:
            problems.append(f"table(s) missing: {', '.join(missing)}")
        if row is None:
            problems.append("the meta table has no schema_version")
        elif not str(row[0]).isdigit() or int(row[0]) < 1:
            problems.append(f"schema_version is {row[0]!r}, not a version number")
        if "runs" in tables:
            problems += _bad_dates(conn, "runs", "as_of", null_ok=False)
        return problems
    except sqlite3.DatabaseError as exc:
        return [str(exc)]


_DATE_COLUMNS = {
    "action_state": ("since", "opened_at", "resolved_at", "escalated_at", "valid_from",
                     "valid_to"),
    "stage_state": ("since", "valid_from", "valid_to"),
    "changes": ("as_of", "opened_at"),
    "overrides": ("created_on", "expires_on", "removed_on"),
}
_DATE_COLUMNS_V3 = {
    "action_state": ("due_date",),
    "changes": ("due_date",),
    "holds": ("created_on", "until", "removed_on"),
    "deliveries": ("as_of",),
}
_DATE_COLUMNS_V4 = {"run_scores": ("as_of",)}


def _bad_dates(conn: sqlite3.Connection, table: str, col: str, *,
               null_ok: bool = True) -> list[str]:
    """A problem if a date column holds a value that is not a YYYY-MM-DD date (a few distinct
    values per column: one per run date)."""
    bad = []
    for (value,) in conn.execute(f"SELECT DISTINCT {col} FROM {table}"):
        if value is None and null_ok:
            continue
        try:
            ok = isinstance(value, str) and dt.date.fromisoformat(value).isoformat() == value
        except ValueError:
            ok = False
        if not ok:
            bad.append(repr(value))
            if len(bad) == 3:
                break
    return [f"{table}: {col} {', '.join(bad)} is not a date"] if bad else []


def check_store(path: str | os.PathLike[str]) -> list[str]:
    """Check a store file thoroughly, without changing it; return its problems (none: ok).

    Runs ``PRAGMA integrity_check`` (every page and index), checks the tables, the schema
    version and every stored date. This is ``healthrules store check``.

    Raises
    ------
    StoreError
        If there is no file at ``path``.
    """
    p = Path(path)
    if not p.is_file():
        raise StoreError("no state store file at this path", path=p)
    if p.stat().st_size == 0:
        return ["the file is empty (0 bytes)"]
    try:
        conn = sqlite3.connect(f"file:{quote(str(p.resolve()))}?mode=ro", uri=True)
    except sqlite3.DatabaseError as exc:
        return [str(exc)]
    try:
        problems = _structure_problems(conn, quick=False)
        if problems:
            return problems
        version = int(conn.execute(
            "SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0])
        dated = list(_DATE_COLUMNS.items())
        if version >= 3:
            dated += list(_DATE_COLUMNS_V3.items())
        if version >= 4:
            dated += list(_DATE_COLUMNS_V4.items())
        for table, cols in dated:
            for col in cols:
                problems += _bad_dates(conn, table, col)
        if version > SCHEMA_VERSION:
            problems.append(f"schema version {version} is newer than this release reads "
                            f"({SCHEMA_VERSION}); upgrade healthrules")
        return problems
    except sqlite3.DatabaseError as exc:
        return [str(exc)]
    finally:
        conn.close()


def backup_store(path: str | os.PathLike[str], dest: str | os.PathLike[str]) -> Path:
    """Copy a store to ``dest`` with SQLite's online backup, safely while runs go on.

    The source is checked first (a corrupted store never overwrites a good backup), the copy
    is made in a temporary file next to ``dest``, checked, made a single self-contained file
    (no ``-wal``), flushed, and renamed into place. This is ``healthrules store backup``.

    Raises
    ------
    StoreCorruptError
        If the source store is damaged.
    """
    with StateStore(path, readonly=True, create=False) as source:
        return _copy(source.conn, Path(dest), source.path)


def restore_store(backup: str | os.PathLike[str], path: str | os.PathLike[str]) -> Path:
    """Replace the store at ``path`` (damaged or not) by a copy of the store ``backup``.

    The backup is checked first; the copy is made next to ``path`` and renamed over it, and
    the old file's ``-wal`` and ``-shm`` are removed (they belong to the replaced file). No
    run may be in progress: run it under the same lock as the daily job. This is ``healthrules
    store restore``.

    Raises
    ------
    StoreCorruptError
        If the backup is damaged.
    StoreError
        If a run holds the store's write lock.
    """
    target = Path(path)
    if target.is_file() and target.stat().st_size:
        try:
            probe = sqlite3.connect(target, timeout=0.1, isolation_level=None)
        except sqlite3.DatabaseError:
            probe = None
        if probe is not None:
            try:
                probe.execute("BEGIN IMMEDIATE")
                probe.execute("ROLLBACK")
            except sqlite3.OperationalError as exc:
                if "locked" in str(exc) or "busy" in str(exc):
                    raise StoreError("a run holds the store's write lock; restore when it "
                                     "has finished", path=target) from exc
            except sqlite3.DatabaseError:
                pass  # damaged: that is why it is being restored
            finally:
                probe.close()
    with StateStore(backup, readonly=True, create=False) as source:
        copy = _copy(source.conn, target.with_name(f".{target.name}.restore"), source.path)
    for suffix in ("-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    os.replace(copy, target)
    return target


def _copy(source: sqlite3.Connection, dest: Path, origin: Path) -> Path:
    from healthrules.output import umask

    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    try:
        os.fchmod(fd, 0o666 & ~umask())
        os.close(fd)
        target = sqlite3.connect(tmp, isolation_level=None)
        try:
            source.backup(target)
            target.execute("PRAGMA journal_mode=DELETE")
            ok = target.execute("PRAGMA quick_check").fetchone()
        finally:
            target.close()
        if ok != ("ok",):
            raise StoreCorruptError(f"the copy failed its check ({ok})", path=origin)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dest


# ---------------------------------------------------------------------- helpers


def _diff(old: pl.DataFrame, new: pl.DataFrame, on: list[str],
          ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Keys of ``old`` rows that are gone or changed, and ``new`` rows that are new or changed."""
    cols = [c for c in new.columns if c not in on]
    o = old.select(new.columns).with_columns(pl.lit(True).alias("__in_old"))
    n = new.with_columns(pl.lit(True).alias("__in_new"))
    j = o.join(n, on=on, how="full", coalesce=True, suffix="__new")
    in_old = pl.col("__in_old").fill_null(False)
    in_new = pl.col("__in_new").fill_null(False)
    same = in_old & in_new & pl.all_horizontal(
        [pl.col(c).eq_missing(pl.col(f"{c}__new")) for c in cols] or [pl.lit(True)])
    gone = j.filter(in_old & ~same).select(on)
    added = new.join(j.filter(in_new & ~same).select(on), on=on, how="semi")
    return gone, added


def _frame(rows: list[Any], schema: dict[str, pl.DataType], table: str,
           path: Path) -> pl.DataFrame:
    """Rows read from SQLite as a frame of the given schema (a value of another type means
    the file was damaged or edited by hand)."""
    try:
        return pl.DataFrame(rows, schema=schema, orient="row")
    except (TypeError, ValueError, OverflowError, pl.exceptions.PolarsError) as exc:
        raise StoreCorruptError(f"{table} holds a value of the wrong type ({exc})",
                                path=path) from exc


def _date(value: dt.date | str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _version() -> str:
    from healthrules import __version__

    return str(__version__)


def _pause_for_tests() -> None:
    """Sleep inside the transaction when the test hook asks (see :data:`PAUSE_ENV`)."""
    seconds = os.environ.get(PAUSE_ENV)
    if not seconds:
        return
    marker = os.environ.get(PAUSE_MARKER_ENV)
    if marker:
        Path(marker).write_text("paused\n")
    time.sleep(float(seconds))
