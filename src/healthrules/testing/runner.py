"""Run rule-pack test files: build each case's frames, evaluate, compare, and report.

The runner only uses the public pipeline (:func:`healthrules.load`,
:func:`healthrules.compile`, :func:`healthrules.evaluate`): there is no second evaluator.
For each case it builds the account and event frames from the test file (inline notation
and/or files), evaluates the roadmap at every ``as_of`` of the case, compares every expected
account (all mismatches, not the first), and records what was reached for coverage.

Examples
--------
>>> from healthrules.testing import run
>>> report = run(["rules/examples"])  # doctest: +SKIP
>>> report.summary()  # doctest: +SKIP
'24 passed, 0 failed'
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import polars as pl

import healthrules
from healthrules.compiler import Plan
from healthrules.errors import HealthRulesError, InputDataError, Issue, Location, Severity
from healthrules.evaluation import Evaluation
from healthrules.inputs import zoned_wall_time
from healthrules.query_flags import OPTIMISED
from healthrules.roadmap import Pack, Roadmap
from healthrules.testing.asserts import AccountView, Mismatch, compare_account
from healthrules.testing.coverage import CoverageReport, CoverageTracker
from healthrules.testing.diff import render_mismatches
from healthrules.testing.notation import Anchor, EventLine, expand, resolve_problem
from healthrules.testing.spec import (
    Case,
    Expectations,
    RoadmapIndex,
    TestCode,
    TestSource,
    check_test_file,
    is_test_file,
    parse_time,
    read_test_file,
)

__all__ = [
    "AccountFailure",
    "CaseResult",
    "FileResult",
    "RoadmapCache",
    "RunReport",
    "Status",
    "case_frames",
    "discover",
    "run",
    "run_file",
]

Status = Literal["passed", "failed", "error", "skipped"]


@dataclass(frozen=True)
class AccountFailure:
    """The mismatches of one account at one ``as_of`` of a case."""

    account: str
    as_of: str
    check: str
    mismatches: tuple[Mismatch, ...]

    def to_record(self) -> dict[str, Any]:
        """A JSON-friendly dict."""
        return {"account": self.account, "as_of": self.as_of, "check": self.check,
                "mismatches": [m.to_record() for m in self.mismatches]}


@dataclass
class CaseResult:
    """The outcome of one case: passed, failed (mismatches), error (could not run) or skipped."""

    file: str
    name: str
    line: int | None
    status: Status
    failures: list[AccountFailure] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)
    reason: str | None = None
    duration: float = 0.0
    index: int | None = None

    @property
    def location(self) -> str:
        """``file:line`` of the case."""
        return f"{self.file}:{self.line}" if self.line else self.file

    def render(self) -> str:
        """The readable failure text: the case, then per account and as_of an aligned diff."""
        head = f"{self.status.upper()} {self.location} case {self.name!r}"
        lines = [head]
        for issue in self.issues:
            lines.extend("  " + part for part in str(issue).split("\n"))
        for f in self.failures:
            check = "" if f.check == "expect" else f" ({f.check})"
            lines.append(f"  account {f.account}, as_of {f.as_of}{check}")
            lines.append(render_mismatches(f.mismatches, indent="    "))
        if self.status == "skipped" and self.reason:
            lines.append(f"  skipped: {self.reason}")
        return "\n".join(lines)

    def to_record(self) -> dict[str, Any]:
        """A JSON-friendly dict."""
        return {"file": self.file, "case": self.name, "line": self.line, "status": self.status,
                "duration": round(self.duration, 4), "reason": self.reason,
                "failures": [f.to_record() for f in self.failures],
                "errors": [i.to_record() for i in self.issues]}


@dataclass
class FileResult:
    """The outcome of one test file: its cases, and problems of the file itself."""

    path: str
    roadmap: str | None
    cases: list[CaseResult] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)

    @property
    def warnings(self) -> list[Issue]:
        """Problems that do not fail the file (e.g. an event name no indicator reads)."""
        return [i for i in self.issues if i.severity is not Severity.ERROR]


@dataclass
class RunReport:
    """Every file's results, the counts, and coverage when it was asked for."""

    files: list[FileResult] = field(default_factory=list)
    coverage: CoverageReport | None = None

    @property
    def cases(self) -> list[CaseResult]:
        """Every case of every file, in order."""
        return [c for f in self.files for c in f.cases]

    def count(self, *statuses: Status) -> int:
        """How many cases have one of these statuses."""
        return sum(c.status in statuses for c in self.cases)

    @property
    def passed(self) -> int:
        """Cases that passed."""
        return self.count("passed")

    @property
    def failed(self) -> int:
        """Cases that failed or could not run (errors count as failures)."""
        return self.count("failed", "error")

    @property
    def ok(self) -> bool:
        """True when no case failed."""
        return self.failed == 0

    def summary(self) -> str:
        """The summary line: ``N passed, N failed`` (plus skipped ones, when there are)."""
        text = f"{self.passed} passed, {self.failed} failed"
        skipped = self.count("skipped")
        return text + (f", {skipped} skipped" if skipped else "")

    def render(self, *, verbose: bool = False, warnings: bool = True) -> str:
        """The readable report: warnings, every failure with its diff, then the summary.

        Parameters
        ----------
        verbose
            Also list the cases that passed or were skipped.
        warnings
            Include the warnings (the CLI prints them to stderr instead).
        """
        out: list[str] = []
        for f in self.files:
            if warnings:
                out.extend(str(w) for w in f.warnings)
            for c in f.cases:
                if c.status in ("failed", "error"):
                    out.append(c.render())
                elif verbose:
                    tail = f" ({c.reason})" if c.reason else ""
                    out.append(f"{c.status.upper()} {c.location} case {c.name!r}{tail}")
        if self.coverage is not None:
            out.append(self.coverage.render())
        out.append(self.summary())
        return "\n".join(out)

    def to_records(self) -> dict[str, Any]:
        """The whole report as JSON-friendly data (what ``--format json`` prints)."""
        return {
            "summary": {"passed": self.passed, "failed": self.failed,
                        "skipped": self.count("skipped"), "errors": self.count("error")},
            "cases": [c.to_record() for c in self.cases],
            "warnings": [w.to_record() for f in self.files for w in f.warnings],
            "coverage": None if self.coverage is None else self.coverage.to_record(),
        }


# --------------------------------------------------------------------------- discovery


def discover(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """The test files under the given paths, in a stable order.

    A file given by name is taken as it is (a file that is not a test file is reported when
    run). Folders are searched recursively (hidden ones skipped) for ``*.test.yaml`` files and
    YAML files whose top level says ``kind: test``.

    Raises
    ------
    FileNotFoundError
        When a path does not exist.
    """
    out: list[Path] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(files):
                    fp = Path(root) / name
                    if not name.startswith(".") and is_test_file(fp):
                        out.append(fp)
        elif path.exists():
            out.append(path)
        else:
            raise FileNotFoundError(f"no such file or folder: {os.fspath(p)}")
    seen: set[Path] = set()
    unique = []
    for fp in out:
        r = fp.resolve()
        if r not in seen:
            seen.add(r)
            unique.append(fp)
    return unique


# --------------------------------------------------------------------------- running


@dataclass
class _Loaded:
    source: Roadmap | Pack | None
    plan: Plan | None
    index: RoadmapIndex | None
    issues: list[Issue]


class RoadmapCache:
    """Roadmaps loaded and compiled once per run, shared by the test files that test them."""

    def __init__(self) -> None:
        self.roadmaps: dict[Path, _Loaded] = {}

    def load(self, path: Path) -> _Loaded:
        """Load, compile and index a roadmap or pack file (once)."""
        key = path.resolve()
        if key not in self.roadmaps:
            try:
                source = healthrules.load(path)
                plan = healthrules.compile(source)
                self.roadmaps[key] = _Loaded(source, plan, RoadmapIndex.of(source), [])
            except HealthRulesError as exc:
                self.roadmaps[key] = _Loaded(None, None, None, exc.errors())
        return self.roadmaps[key]


def run(
    paths: Iterable[str | os.PathLike[str]],
    *,
    select: str | None = None,
    coverage: bool = False,
) -> RunReport:
    """Find and run every test file under ``paths``.

    Parameters
    ----------
    paths
        Test files and folders (searched recursively).
    select
        A regular expression; only cases whose name matches it (``re.search``) run.
    coverage
        Also compute rule coverage (:mod:`healthrules.testing.coverage`).

    Returns
    -------
    RunReport

    Raises
    ------
    FileNotFoundError
        When a path does not exist.
    re.error
        When ``select`` is not a valid regular expression.
    """
    pattern = re.compile(select) if select else None
    tracker = CoverageTracker() if coverage else None
    cache = RoadmapCache()
    report = RunReport()
    for path in discover(paths):
        report.files.append(run_file(path, pattern=pattern, tracker=tracker, cache=cache))
    if tracker is not None:
        report.coverage = tracker.report()
    return report


def run_file(
    path: str | os.PathLike[str],
    *,
    pattern: re.Pattern[str] | None = None,
    tracker: CoverageTracker | None = None,
    cache: RoadmapCache | None = None,
    only: int | None = None,
) -> FileResult:
    """Run one test file.

    Parameters
    ----------
    path
        The test file.
    pattern
        Only cases whose name matches run (the others are left out of the result).
    tracker
        Records coverage when given.
    cache
        Shares loaded roadmaps between files.
    only
        Run only the case with this index (0-based), as the pytest plugin does.

    Returns
    -------
    FileResult
        Problems of the file make every case an error (or one error for the whole file when
        its cases cannot even be read).
    """
    cache = cache if cache is not None else RoadmapCache()
    src = read_test_file(path)
    result = FileResult(path=src.display, roadmap=None)
    if src.model is None:
        # the roadmap's own problems are reported too: every problem of the file at once
        name = src.doc.data.get("roadmap") if src.doc is not None else None
        if isinstance(name, str) and name and not any(
                i.location.path == "roadmap" for i in src.issues):
            _load_roadmap(src, cache, name)
        # with the problems inside its cases, which cannot run either
        every = sorted([*src.issues, *(i for v in src.case_issues.values() for i in v)],
                       key=lambda i: (i.location.file != src.display, i.location.line or 0,
                                      i.location.column or 0))
        result.issues = every
        result.cases.append(CaseResult(src.display, "(file)", 1, "error", issues=list(every)))
        return result
    result.roadmap = os.fspath(src.roadmap_path)
    selected: dict[int, CaseResult] = {}
    for ci, case in enumerate(src.model.cases):
        if pattern is not None and not pattern.search(case.name):
            continue
        if only is not None and ci != only:
            continue
        selected[ci] = CaseResult(src.display, case.name, src.line_of(f"cases[{ci}]"), "passed",
                                  index=ci)
    result.cases.extend(selected.values())
    loaded = _load_roadmap(src, cache, src.model.roadmap)
    if loaded.plan is None or loaded.index is None:
        result.issues = src.all_issues()
        for c in result.cases:
            own = src.case_issues.get(c.index, []) if c.index is not None else []
            c.status, c.issues = "error", sorted(
                [*src.issues, *own], key=lambda i: (i.location.line or 0, i.location.column or 0))
        return result
    if tracker is not None:
        tracker.add_plan(loaded.plan)
    check_test_file(src, loaded.index)
    result.issues = list(src.issues)
    file_errors = [i for i in src.issues if i.severity is Severity.ERROR]
    runnable: list[_Prepared] = []
    for ci, case in enumerate(src.model.cases):
        res = selected.get(ci)
        if res is None:
            continue
        if case.skip is not None and not file_errors and ci not in src.invalid_cases:
            res.status, res.reason = "skipped", case.skip
            continue
        errors = file_errors + [i for i in src.case_issues.get(ci, [])
                                if i.severity is Severity.ERROR]
        warnings = [i for i in src.case_issues.get(ci, []) if i.severity is not Severity.ERROR]
        result.issues.extend(warnings)
        if errors:
            res.status = "error"
            res.issues = sorted(errors, key=lambda i: (i.location.file or "", i.location.line or 0,
                                                       i.location.column or 0))
            continue
        prepared = _prepare(src, ci, case, loaded.plan, res)
        if prepared is not None:
            runnable.append(prepared)
    _evaluate_all(src, runnable, loaded.plan, tracker)
    return result


def _load_roadmap(src: TestSource, cache: RoadmapCache, name: str) -> _Loaded:
    rpath = src.path.parent / name
    if not rpath.is_file():
        what = "is a folder, not a file" if rpath.is_dir() else "does not exist"
        src.issue("file_not_found", f"the roadmap under test {what}: "
                  f"{name} (relative to {os.fspath(src.path.parent) or '.'})",
                  "roadmap")
        return _Loaded(None, None, None, [])
    loaded = cache.load(rpath)
    if loaded.plan is None:
        src.issue(TestCode.ROADMAP_FAILED, f"the roadmap under test has errors: "
                  f"{name}", "roadmap",
                  hint="healthrules validate " + os.fspath(rpath))
        src.issues.extend(loaded.issues)
    return loaded


@dataclass
class _Prepared:
    """A case ready to evaluate: its frames (keys made unique by a prefix) and its times."""

    ci: int
    case: Case
    result: CaseResult
    accounts: pl.DataFrame
    events: dict[str, pl.DataFrame]
    known: set[str]
    times: list[tuple[dt.date | dt.datetime, Expectations, str]]

    @property
    def prefix(self) -> str:
        return f"{self.ci}\x1f"


def _prepare(src: TestSource, ci: int, case: Case, plan: Plan,
             res: CaseResult) -> _Prepared | None:
    model = src.model
    assert model is not None
    as_of_text = case.as_of or model.as_of
    assert as_of_text is not None
    ref = parse_time(as_of_text)
    try:
        accounts, events = case_frames(src, ci, case, plan, ref)
    except _CaseError as exc:
        res.status, res.issues = "error", [exc.issue]
        return None
    times = [(parse_time(raw, ref) if raw else ref, exp, epath)
             for raw, exp, epath in case.times()]
    prefix = f"{ci}\x1f"
    key = plan.account_key
    known = set(accounts[key].to_list())
    accounts = accounts.with_columns((pl.lit(prefix) + pl.col(key)).alias(key))
    if plan.parent is not None:  # a parent is an account of the same case
        accounts = accounts.with_columns((pl.lit(prefix) + pl.col(plan.parent)).alias(
            plan.parent))
    events = {name: frame.with_columns(
        (pl.lit(prefix) + pl.col(plan.sources[name].account)).alias(plan.sources[name].account))
        for name, frame in events.items()}

    return _Prepared(ci, case, res, accounts, events, known, times)


def _evaluate_all(src: TestSource, cases: list[_Prepared], plan: Plan,
                  tracker: CoverageTracker | None) -> None:
    """Evaluate the cases, one evaluation per distinct as_of for all cases that share it.

    An account's results depend only on its own rows (docs/semantics.md), so cases are
    evaluated together with account keys made unique per case; when a joint evaluation fails,
    each case is evaluated alone so that the error lands on the case that caused it.
    """
    groups: dict[tuple[type, Any, tuple[int, int] | None], list[tuple[_Prepared, int]]] = {}
    for prep in cases:
        spec = prep.case.history
        snapshots = None if spec is None else (spec.days, spec.step)
        for k, (as_of, _, _) in enumerate(prep.times):
            groups.setdefault((type(as_of), as_of, snapshots), []).append((prep, k))
    for (_, as_of, snapshots), members in groups.items():
        started = time.perf_counter()
        preps = list({id(p): p for p, _ in members}.values())
        preps = [p for p in preps if p.result.status != "error"]
        if not preps:
            continue

        def evaluate(events: dict[str, pl.DataFrame], accounts: pl.DataFrame,
                     _as_of: Any = as_of, _snapshots: Any = snapshots) -> Evaluation:
            if _snapshots is None:
                return healthrules.evaluate(plan, events, accounts, _as_of)
            return _through_history(plan, events, accounts, _as_of, *_snapshots)

        try:
            evaluation = evaluate(
                {name: pl.concat([p.events[name] for p in preps], how="vertical")
                 for name in plan.sources},
                pl.concat([p.accounts for p in preps], how="vertical"))
            evaluations = dict.fromkeys((id(p) for p in preps), evaluation)
        except (HealthRulesError, ValueError):
            evaluations = {}
            for p in preps:
                try:
                    evaluations[id(p)] = evaluate(p.events, p.accounts)
                except HealthRulesError as exc:
                    _case_failed(src, p, exc)
                except ValueError as exc:
                    _case_failed(src, p, HealthRulesError(str(exc)))
        for ev in {id(e): e for e in evaluations.values()}.values():
            if tracker is not None:
                tracker.observe(ev)
        share = (time.perf_counter() - started) / max(len(members), 1)
        for prep, k in members:
            prep.result.duration += share
            evaluation_or_none = evaluations.get(id(prep))
            if evaluation_or_none is None or prep.result.status == "error":
                continue
            _compare(src, prep, k, evaluation_or_none)


def _through_history(plan: Plan, events: dict[str, pl.DataFrame], accounts: pl.DataFrame,
                     as_of: dt.date, days: int, step: int) -> Evaluation:
    """The evaluation at ``as_of`` as the last of snapshots every ``step`` days.

    The first snapshot is ``days`` (rounded up to whole steps) before ``as_of``, so that
    ``as_of`` is a snapshot date.
    """
    from healthrules.history import history

    start = as_of - dt.timedelta(days=step * -(-days // step))
    return history(plan, events, accounts, start, as_of, every=f"{step}d").at(as_of)


def _case_failed(src: TestSource, prep: _Prepared, exc: HealthRulesError) -> None:
    where = src.where(f"cases[{prep.ci}].name")
    prep.result.status = "error"
    # the accounts as the test file names them, not with the case's key prefix
    prefixes = (prep.prefix, repr(prep.prefix)[1:-1])
    prep.result.issues = [
        Issue(code=i.code, message="evaluating the case failed: " + functools.reduce(
            lambda text, p: text.replace(p, ""), prefixes, i.message), hint=i.hint,
              location=Location(where.file, where.line, where.column, where.path))
        for i in exc.errors()]


def _compare(src: TestSource, prep: _Prepared, k: int, evaluation: Any) -> None:
    model = src.model
    assert model is not None
    as_of, expectations, epath = prep.times[k]
    base = f"cases[{prep.ci}]"
    res = prep.result
    for acc, exp in expectations.items():
        apath = f"{base}.{epath}.{acc}"
        if acc not in prep.known:
            res.status = "error"
            res.issues.append(Issue(
                code=TestCode.UNKNOWN_ACCOUNT,
                message=f"expectations for {acc!r}, which is in neither the case's accounts "
                "nor its accounts_file", location=src.where(apath, key=True)))
            continue

        def line_of(rel: str, _apath: str = apath) -> int | None:
            return src.line_of(f"{_apath}.{rel}" if rel else _apath)

        view = AccountView.of(evaluation, prep.prefix + acc)
        mismatches = compare_account(view, exp, tolerance=model.tolerance, line_of=line_of)
        if mismatches:
            if res.status == "passed":
                res.status = "failed"
            res.failures.append(AccountFailure(acc, as_of.isoformat(),
                                               epath.removesuffix(".expect"), tuple(mismatches)))


class _CaseError(Exception):
    def __init__(self, issue: Issue) -> None:
        super().__init__(issue.message)
        self.issue = issue


_POLARS_TYPES: dict[str, pl.DataType] = {
    "int": pl.Int64(), "float": pl.Float64(), "str": pl.String(), "bool": pl.Boolean(),
    "date": pl.Date(),
}


def _dtype(typ: str, tz: str | None) -> pl.DataType:
    if typ == "datetime":
        return pl.Datetime("us", tz)
    return _POLARS_TYPES[typ]


def _float_value(value: Any) -> Any:
    """A whole number of a ``float`` column or attribute as the double nearest it (a float
    column reads it so; polars refuses a Python int beyond 64 bits, one the test file's
    check let through as a finite float)."""
    return float(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _attr_value(value: Any, typ: str, ref: dt.date, tz: str | None) -> Any:
    if typ == "float":
        return _float_value(value)
    if value is None or typ not in ("date", "datetime"):
        return value
    when = _naive_ref(parse_time(str(value), ref), tz)
    if typ == "date":
        return when.date() if isinstance(when, dt.datetime) else when
    if not isinstance(when, dt.datetime):
        return dt.datetime.combine(when, dt.time())
    return when


def _naive_ref(ref: dt.date | dt.datetime, tz: str | None) -> dt.date | dt.datetime:
    if isinstance(ref, dt.datetime) and ref.tzinfo is not None:
        try:
            zone = ZoneInfo(tz) if tz else None
        except ZoneInfoNotFoundError:
            zone = None
        local = ref.astimezone(zone) if zone is not None else ref
        return local.replace(tzinfo=None)
    return ref


def _read_table(path: Path) -> pl.DataFrame:
    """A fixture file; a CSV's columns are read as text and parsed as the contract declares
    (:func:`_coerce`), as ``healthrules evaluate`` reads a CSV: never guessed, so a key or a
    ``str`` attribute ``00001`` stays ``00001`` (a guess read it as the number 1, then "1")."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        from healthrules.cli._frames import csv_rows

        # a row with fields missing or too many is refused by its line, a blank line
        # skipped, as `healthrules evaluate` reads a CSV file
        lf = pl.scan_csv(path, infer_schema=False)
        try:
            return csv_rows(lf, path, len(lf.collect_schema().names()), "the").collect(
                optimizations=OPTIMISED)
        except InputDataError as exc:
            raise ValueError(exc.issues[0].message.removeprefix("the file: ")) from None
    if suffix == ".parquet":
        return pl.read_parquet(path)
    return pl.read_ndjson(path)


def _file_error(src: TestSource, path: str, message: str, hint: str | None = None) -> _CaseError:
    return _CaseError(Issue(code=TestCode.BAD_FILE, message=message, hint=hint,
                            location=src.where(path)))


def _coerce(frame: pl.DataFrame, schema: dict[str, pl.DataType], what: str, src: TestSource,
            path: str) -> pl.DataFrame:
    """Select and cast a file's columns to the contract; parse text dates and times."""
    exprs: list[pl.Expr] = []
    for name, dtype in schema.items():
        if name not in frame.columns:
            exprs.append(pl.lit(None, dtype).alias(name))
            continue
        col = pl.col(name)
        have = frame.schema[name]
        if isinstance(dtype, pl.Datetime):
            if have == pl.String:
                col = col.str.to_datetime(time_unit="us")
            elif have == pl.Date:
                col = col.cast(pl.Datetime("us"))
            elif isinstance(have, pl.Datetime):
                col = col.dt.cast_time_unit("us")
            else:
                raise _file_error(src, path, f"{what}: column {name!r} is {have}, not a date "
                                  "and time")
            if dtype.time_zone is not None:
                if isinstance(have, pl.Datetime) and have.time_zone is not None:
                    col = col.dt.convert_time_zone(dtype.time_zone)
                else:
                    col = zoned_wall_time(col, dtype.time_zone)
            elif isinstance(have, pl.Datetime) and have.time_zone is not None:
                col = col.dt.replace_time_zone(None)
            exprs.append(col.alias(name))
        elif dtype == pl.Date and have == pl.String:
            exprs.append(col.str.to_date().alias(name))
        elif dtype == pl.Boolean and have == pl.String:
            low = col.str.strip_chars().str.to_lowercase()
            bad = col.is_not_null() & ~low.is_in(["true", "false", "1", "0"])
            if frame.select(bad.any()).item():
                value = frame.filter(bad)[name][0]
                raise _file_error(src, path, f"{what}: column {name!r} holds {value!r}, not "
                                  "true or false (or 1 / 0)")
            exprs.append(low.is_in(["true", "1"]).alias(name))
        else:
            _check_cast(frame, name, dtype, what, src, path)
            exprs.append(col.cast(dtype).alias(name))
    try:
        return frame.select(exprs)
    except pl.exceptions.PolarsError as exc:
        raise _file_error(src, path, f"{what}: cannot read it as the roadmap's data contract: "
                          f"{str(exc).splitlines()[0]}") from None


def _check_cast(frame: pl.DataFrame, name: str, dtype: pl.DataType, what: str,
                src: TestSource, path: str) -> None:
    """Refuse a file column whose values a cast to the contract's type would change: a
    number read as a date (5 is not 1970-01-06), a fraction or a boolean read as an int,
    a boolean read as a float (a CSV's text is parsed, and refused where it does not
    parse)."""
    have = frame.schema[name]
    if have == dtype or have == pl.String or have == pl.Null:
        return
    numeric = have.is_integer() or have.is_float()
    if dtype == pl.String:
        ok = numeric or have == pl.Boolean
    elif dtype.is_integer():
        ok = have.is_integer()
        if have.is_float():
            bad = pl.col(name).is_not_null() & ~(pl.col(name).is_finite() & (
                pl.col(name) == pl.col(name).floor()))
            ok = not frame.select(bad.any()).item()
    elif dtype.is_float():
        ok = numeric
    else:  # a date or a boolean: only from itself or from text
        ok = False
    if not ok:
        kind = ("a date" if dtype == pl.Date else "true or false" if dtype == pl.Boolean
                else "text" if dtype == pl.String else "an int" if dtype.is_integer()
                else "a number")
        rows = frame.filter(pl.col(name).is_not_null())
        shown = repr(rows[name][0]) if rows.height else "null"
        raise _file_error(src, path, f"{what}: column {name!r} is {have} ({shown}), not "
                          f"{kind} as the roadmap declares")


def case_frames(src: TestSource, ci: int, case: Case, plan: Plan,
                ref: dt.date | dt.datetime) -> tuple[pl.DataFrame, dict[str, pl.DataFrame]]:
    """Build the accounts and events frames of one case (inline notation and files).

    Parameters
    ----------
    src
        The test file, read and checked (its parsed event lines are used).
    ci
        The case's index.
    case
        The case.
    plan
        The compiled roadmap: its data contract gives the columns and types.
    ref
        The case's ``as_of``: what offsets in the notation and in attributes are relative to.

    Returns
    -------
    (accounts, events)
        Frames in the roadmap's data contract, the events one frame per event source;
        account keys are text.
    """
    model = src.model
    assert model is not None
    base = f"cases[{ci}]"
    tz = plan.events.timezone
    key = plan.account_key
    ref = _naive_ref(ref, tz)
    ref_day = ref.date() if isinstance(ref, dt.datetime) else ref
    acc_schema: dict[str, pl.DataType] = {key: pl.String()}
    acc_schema.update({n: _dtype(t, tz) for n, t in plan.attributes.items()})
    parent = plan.parent
    if parent is not None:
        acc_schema[parent] = pl.String()
    rows: list[dict[str, Any]] = []
    for acc, attrs in case.accounts.items():
        merged = {**model.account_defaults, **(attrs or {})}
        row: dict[str, Any] = {key: acc}
        for name, typ in plan.attributes.items():
            row[name] = _attr_value(merged.get(name), typ, ref_day, tz)
        if parent is not None:
            row[parent] = merged.get(parent)
        rows.append(row)
    # build with naive datetimes, then read them as wall times in the events' zone
    naive = {n: (pl.Datetime("us") if isinstance(d, pl.Datetime) else d)
             for n, d in acc_schema.items()}
    accounts = pl.DataFrame(rows, schema=naive, orient="row") if rows else pl.DataFrame(
        schema=naive)
    if tz is not None:
        accounts = accounts.with_columns(
            zoned_wall_time(pl.col(n), tz)
            for n, d in acc_schema.items() if isinstance(d, pl.Datetime))
    if case.accounts_file is not None:
        fpath = src.path.parent / case.accounts_file
        try:
            table = _read_table(fpath)
        except (OSError, ValueError, pl.exceptions.PolarsError) as exc:
            raise _file_error(src, f"{base}.accounts_file", f"cannot read {case.accounts_file}:"
                              f" {str(exc).splitlines()[0]}") from None
        if key not in table.columns:
            raise _file_error(src, f"{base}.accounts_file", f"{case.accounts_file} has no "
                              f"column {key!r} (the account key)")
        columns = set(table.columns)
        table = table.with_columns(pl.col(key).cast(pl.String))
        table = _coerce(table, acc_schema, case.accounts_file, src, f"{base}.accounts_file")
        # the file's accounts start with account_defaults too, where it has no such column
        filled = [_attr_value(model.account_defaults[n], plan.attributes[n], ref_day, tz)
                  for n in table.columns if n not in columns and n in model.account_defaults
                  and n in plan.attributes]
        names = [n for n in table.columns if n not in columns and n in model.account_defaults
                 and n in plan.attributes]
        if names:
            table = table.with_columns(
                pl.lit(v, naive[n]).alias(n) for n, v in zip(names, filled, strict=True))
            if tz is not None:
                table = table.with_columns(zoned_wall_time(pl.col(n), tz) for n in names
                                           if isinstance(acc_schema[n], pl.Datetime))
        accounts = pl.concat([accounts, table], how="vertical")
    # a roadmap of dated accounts: a test's account is one row, valid at every date
    validity = plan.roadmaps[0].roadmap.data.accounts.validity if plan.roadmaps else ()
    if validity:
        accounts = accounts.with_columns(
            pl.lit(dt.date(1, 1, 1), pl.Date).alias(validity[0]),
            *[pl.lit(None, pl.Date).alias(c) for c in validity[1:]])
    anchor = Anchor.of(ref)
    events: dict[str, pl.DataFrame] = {}
    for source in plan.sources:
        if source == plan.default_source:
            by_account = {acc: src.lines.get((ci, acc), []) for acc in case.events}
            file, fpath_key = case.events_file, f"{base}.events_file"
        else:
            by_account = {acc: src.source_lines.get((ci, source, acc), [])
                          for acc in case.sources.get(source, {})}
            file, fpath_key = (case.source_files.get(source),
                               f"{base}.source_files.{source}")
        events[source] = _source_events(src, plan, source, by_account, anchor, file,
                                        fpath_key)
    return accounts, events


def _source_events(src: TestSource, plan: Plan, source: str,
                   by_account: dict[str, list[EventLine]], anchor: Anchor, file: str | None,
                   file_path: str) -> pl.DataFrame:
    """The events frame of one source of a case: its lines (wall times of the default
    source's zone) and its file."""
    ev = plan.sources[source]
    tz, own_tz = plan.events.timezone, ev.timezone
    ev_schema: dict[str, pl.DataType] = {ev.account: pl.String()}
    if ev.user is not None:
        ev_schema[ev.user] = pl.String()
    if ev.event is not None:  # a table of one kind of event has no event-name column
        ev_schema[ev.event] = pl.String()
    ev_schema[ev.timestamp] = pl.Datetime("us")
    for name, vtyp in ev.values.items():
        ev_schema[name] = _POLARS_TYPES[vtyp]
    cols: dict[str, list[Any]] = {name: [] for name in ev_schema}
    for acc, lines in by_account.items():
        for line in lines:
            # (the file's check resolved every line at the case's as_of; the events' zone
            # may move that a day: what is left is refused for the case, not a crash)
            why = resolve_problem(line, anchor)
            if why is not None:
                raise _file_error(src, file_path.rsplit(".", 1)[0],
                                  f"event line {line.text!r} of account {acc!r}: {why}")
            for ts, user in expand(line, anchor):
                cols[ev.account].append(acc)
                if ev.user is not None:
                    cols[ev.user].append(user)
                if ev.event is not None:
                    cols[ev.event].append(line.event)
                cols[ev.timestamp].append(ts)
                for name, vtyp in ev.values.items():
                    value = line.values.get(name)
                    cols[name].append(_float_value(value) if vtyp == "float" else value)
    events = pl.DataFrame(cols, schema=ev_schema)
    if tz is not None:
        zoned = zoned_wall_time(pl.col(ev.timestamp), tz)
        if own_tz is not None and own_tz != tz:
            zoned = zoned.dt.convert_time_zone(own_tz)
        events = events.with_columns(zoned)
    if file is not None:
        fpath = src.path.parent / file
        try:
            table = _read_table(fpath)
        except (OSError, ValueError, pl.exceptions.PolarsError) as exc:
            raise _file_error(src, file_path, f"cannot read {file}: "
                              f"{str(exc).splitlines()[0]}") from None
        missing = [c for c in (ev.account, ev.event, ev.timestamp)
                   if c is not None and c not in table.columns]
        if missing:
            raise _file_error(src, file_path, f"{file} has no column "
                              f"{missing[0]!r}", hint="its columns: " + ", ".join(table.columns))
        table = table.with_columns(pl.col(ev.account).cast(pl.String))
        file_schema = dict(ev_schema)
        file_schema[ev.timestamp] = pl.Datetime("us", own_tz)
        events = pl.concat([events.with_columns(pl.col(ev.timestamp).dt.cast_time_unit("us")),
                            _coerce(table, file_schema, file, src, file_path)],
                           how="vertical")
    return events
