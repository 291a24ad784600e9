"""The state store: an embedded SQLite database that keeps the lifecycle between daily runs.

One file holds, for one roadmap (or pack):

- ``action_state``: each (account, action) that is pending, open, or resolved and cooling down;
- ``stage_state``: each account's stage and since when (for ``days_in_stage`` and ``stuck``);
- ``overrides``: values pinned by a CSM, with a reason and an expiry;
- ``changes``: what every run reported (opened, resolved, escalated);
- ``runs``: one row per run date; ``meta``: the schema version and the account key.

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
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import polars as pl

from healthrules.errors import Code, HealthRulesError, Issue, Location

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "StateStore",
    "StoreError",
]

SCHEMA_VERSION = 1
"""The schema version this release writes."""

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

MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {}
"""``MIGRATIONS[n]`` upgrades a schema of version ``n`` to ``n + 1`` (none yet: version 1 is
the first). Each runs inside the opening transaction; the version is bumped after it."""

# the columns of each frame as stored (dates as ISO text)
_ACTION_COLUMNS = ("roadmap", "action_id", "status", "since", "opened_at", "resolved_at",
                   "escalated_at", "stage", "priority", "text")
_ACTION_DATES = ("since", "opened_at", "resolved_at", "escalated_at")
_CHANGE_COLUMNS = ("roadmap", "action_id", "change", "reason", "stage", "priority", "kind",
                   "title", "text", "opened_at", "days_open")

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
    (1, None)
    """

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout: float = 30.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.conn = sqlite3.connect(self.path, isolation_level=None,
                                        timeout=busy_timeout, check_same_thread=False)
            mode = self.conn.execute("PRAGMA journal_mode=WAL").fetchone()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"not an SQLite database ({exc})", path=self.path) from exc
        if mode is None or str(mode[0]).lower() != "wal":
            raise StoreError("cannot switch the database to WAL mode", path=self.path)
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.execute("PRAGMA foreign_keys=ON")
        self._upgrade()

    # ------------------------------------------------------------------ lifecycle of the file

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
            tables = {r[0] for r in self.conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
            if not tables:
                # one statement at a time: executescript() would commit the transaction
                for statement in _SCHEMA_V1.split(";"):
                    if statement.strip():
                        self.conn.execute(statement)
                self._set_meta("schema_version", "1")
                self._set_meta("created_with", _version())
            elif "meta" not in tables:
                raise StoreError("not a healthrules state store (no meta table)", path=self.path)
            version = self.schema_version
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"the store has schema version {version}, written by a newer healthrules; "
                    f"this release reads versions up to {SCHEMA_VERSION}. Upgrade healthrules "
                    "to use it.", path=self.path)
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
            raise StoreError(f"cannot lock the store for writing ({exc}); is another run in "
                             "progress?", path=self.path) from exc
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def _set_meta(self, key: str, value: str) -> None:
        self.conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) "
                          "DO UPDATE SET value = excluded.value", (key, value))

    def meta(self) -> dict[str, str]:
        """Every meta entry (schema version, the account key and its type, the plan)."""
        return dict(self.conn.execute("SELECT key, value FROM meta").fetchall())

    # ------------------------------------------------------------------ reading

    def runs(self) -> pl.DataFrame:
        """One row per stored run, oldest first."""
        rows = self.conn.execute(
            "SELECT as_of, started_at, finished_at, plan_id, healthrules_version, accounts, "
            "opened, resolved, escalated FROM runs ORDER BY as_of").fetchall()
        return pl.DataFrame(rows, schema={
            "as_of": pl.String, "started_at": pl.String, "finished_at": pl.String,
            "plan_id": pl.String, "healthrules_version": pl.String, "accounts": pl.Int64,
            "opened": pl.Int64, "resolved": pl.Int64, "escalated": pl.Int64}, orient="row"
        ).with_columns(pl.col("as_of").str.to_date())

    def last_run(self) -> dt.date | None:
        """The date of the latest run, or None."""
        row = self.conn.execute("SELECT max(as_of) FROM runs").fetchone()
        return None if row is None or row[0] is None else dt.date.fromisoformat(row[0])

    def _key_dtype(self, default: pl.DataType | None = None) -> pl.DataType:
        name = self.meta().get("account_key_dtype")
        if name is None:
            return default or pl.String()
        return {"int": pl.Int64(), "str": pl.String()}.get(name, pl.String())

    def actions(self, *, key: str = "account_id", key_dtype: pl.DataType | None = None,
                statuses: Sequence[str] = ("pending", "open", "resolved")) -> pl.DataFrame:
        """The current lifecycle state of every (account, action) (after the last run)."""
        dtype = key_dtype or self._key_dtype()
        marks = ", ".join("?" for _ in statuses)
        rows = self.conn.execute(
            f"SELECT account, {', '.join(_ACTION_COLUMNS)} FROM action_state "
            f"WHERE valid_to IS NULL AND status IN ({marks}) ORDER BY account, roadmap, "
            "action_id", tuple(statuses)).fetchall()
        from healthrules.history.lifecycle import STATE_SCHEMA

        schema = {key: dtype, **{c: (pl.String() if c in _ACTION_DATES else STATE_SCHEMA[c])
                                 for c in _ACTION_COLUMNS}}
        return _frame(rows, schema).with_columns(pl.col(c).str.to_date() for c in _ACTION_DATES)

    def stages(self, *, key: str = "account_id",
               key_dtype: pl.DataType | None = None) -> pl.DataFrame:
        """Every account's current roadmap, stage and the date it entered it."""
        dtype = key_dtype or self._key_dtype()
        rows = self.conn.execute(
            "SELECT account, roadmap, stage, since FROM stage_state WHERE valid_to IS NULL "
            "ORDER BY account").fetchall()
        schema = {key: dtype, "roadmap": pl.String(), "stage": pl.String(), "since": pl.String()}
        return _frame(rows, schema).with_columns(pl.col("since").str.to_date())

    def changes(self, as_of: dt.date | str | None = None, *, key: str = "account_id",
                key_dtype: pl.DataType | None = None) -> pl.DataFrame:
        """What runs reported (one run's, or all), in run order."""
        dtype = key_dtype or self._key_dtype()
        cols = ", ".join(_CHANGE_COLUMNS)
        if as_of is None:
            rows = self.conn.execute(f"SELECT as_of, account, {cols} FROM changes "
                                     "ORDER BY rowid").fetchall()
        else:
            rows = self.conn.execute(f"SELECT as_of, account, {cols} FROM changes WHERE "
                                     "as_of = ? ORDER BY rowid", (str(as_of),)).fetchall()
        schema: dict[str, pl.DataType] = {"as_of": pl.String(), key: dtype,
                                          **{c: pl.String() for c in _CHANGE_COLUMNS}}
        schema["days_open"] = pl.Int64()
        return _frame(rows, schema).with_columns(
            pl.col("as_of").str.to_date(), pl.col("opened_at").str.to_date())

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
        start = _date(on) if on is not None else dt.date.today()
        end = _date(expires)
        if not isinstance(reason, str) or not reason.strip():
            raise StoreError("an override needs a reason")
        if end <= start:
            raise StoreError(f"an override must expire after it starts ({start}); got {end}")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise StoreError(f"an override pins a number; got {value!r}")
        if not isinstance(target, str) or not target:
            raise StoreError("an override needs a target: an indicator id or 'score'")
        with self.transaction() as conn:
            cur = conn.execute(
                "INSERT INTO overrides (account, target, value, reason, set_by, created_on, "
                "expires_on) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (account, target, float(value), reason.strip(), set_by, start.isoformat(),
                 end.isoformat()))
            return int(cur.lastrowid or 0)

    def unpin(self, override_id: int, *, on: dt.date | str | None = None) -> None:
        """End an override from ``on`` (default: today) on.

        Raises
        ------
        StoreError
            If there is no such override.
        """
        day = _date(on) if on is not None else dt.date.today()
        with self.transaction() as conn:
            cur = conn.execute("UPDATE overrides SET removed_on = ? WHERE id = ?",
                               (day.isoformat(), override_id))
            if cur.rowcount == 0:
                raise StoreError(f"no override with id {override_id}")

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
        return _frame(rows, schema).with_columns(
            pl.col("created_on", "expires_on", "removed_on").str.to_date())

    # ------------------------------------------------------------------ one run

    def check_plan(self, plan_id: str, key: str, key_dtype: pl.DataType) -> None:
        """Remember (first run) or check (later runs) the plan id and the account key.

        Raises
        ------
        StoreError
            If the store belongs to another roadmap or another account key.
        """
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
            self.conn.execute("DELETE FROM runs WHERE as_of = ?", (iso,))
        return dates

    def write_run(self, as_of: dt.date, *, key: str, old_actions: pl.DataFrame,
                  new_actions: pl.DataFrame, old_stages: pl.DataFrame,
                  new_stages: pl.DataFrame, changes: pl.DataFrame, plan_id: str,
                  accounts: int, started_at: str) -> None:
        """Store one run: close changed state rows, insert their new versions, log changes.

        Call inside :meth:`transaction`, after :meth:`undo_from`.
        """
        iso = as_of.isoformat()
        on = [key, "roadmap", "action_id"]
        gone, added = _diff(old_actions, new_actions, on)
        self._close("action_state", gone, on, iso)
        self._insert("action_state", added.select(
            pl.col(key).alias("account"), *_ACTION_COLUMNS), iso, dates=_ACTION_DATES)
        s_on = [key]
        s_gone, s_added = _diff(old_stages.select(key, "roadmap", "stage", "since"),
                                new_stages.select(key, "roadmap", "stage", "since"), s_on)
        self._close("stage_state", s_gone, s_on, iso)
        self._insert("stage_state", s_added.select(
            pl.col(key).alias("account"), "roadmap", "stage", "since"), iso, dates=("since",))
        ch = changes.select(pl.lit(iso).alias("as_of"), pl.col(key).alias("account"),
                            *_CHANGE_COLUMNS)
        ch = ch.with_columns(pl.col("opened_at").cast(pl.String))
        self._executemany(f"INSERT INTO changes (as_of, account, {', '.join(_CHANGE_COLUMNS)}) "
                          f"VALUES ({', '.join('?' for _ in ch.columns)})", ch)
        counts = {c: int((changes["change"] == c).sum()) for c in
                  ("opened", "resolved", "escalated")}
        _pause_for_tests()
        self.conn.execute(
            "INSERT INTO runs (as_of, started_at, finished_at, plan_id, healthrules_version, "
            "accounts, opened, resolved, escalated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (iso, started_at, _now(), plan_id, _version(), accounts, counts["opened"],
             counts["resolved"], counts["escalated"]))

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


def _frame(rows: list[Any], schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """Rows read from SQLite as a frame of the given schema."""
    return pl.DataFrame(rows, schema=schema, orient="row")


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
