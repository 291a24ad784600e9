"""The rule-pack test-file format (``kind: test``): pydantic models, reading, and static checks.

A test file names the roadmap (or pack) it tests, relative to itself, and holds cases. Each
case gives accounts (attributes) and their events, inline in the compact notation of
:mod:`healthrules.testing.notation` or from a file, one or more ``as_of`` times, and what is
expected per account::

    kind: test
    roadmap: roadmap.yaml
    as_of: 2026-06-30
    cases:
      - name: a busy account is healthy and gets an upsell proposal
        accounts:
          acme: {plan: pro, seats: 10, contract_start: -200d}
        events:
          acme:
            - login x1/day for 30d by u1..u8
            - nps_response value=9 at -3d by u1
        expect:
          acme:
            stage: operation
            indicators:
              active_users_30d: 8
              seat_utilisation: {value: 0.8, tolerance: 0.001}
            bands: {seat_utilisation: green}
            score: {min: 80}
            actions:
              at_least: [upsell_proposal]

Reading a file (:func:`read_test_file`) checks the YAML and the models, then
:func:`check_test_file` checks every name against the loaded roadmap: accounts, attributes
and their types, indicators, bands, stages, actions, score bands, event lines. Every problem is
an :class:`~healthrules.errors.Issue` located by file, line, column and YAML path.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import pydantic
from pydantic import (
    AllowInfNan,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from healthrules._diagnostics import issue_of_test_file, kind_of
from healthrules.errors import HealthRulesError, Issue, Location, Severity
from healthrules.expressions import did_you_mean
from healthrules.inputs import INT64_MAX
from healthrules.loader import Positions
from healthrules.roadmap import UNASSIGNED_STAGE, Pack, Roadmap
from healthrules.testing.notation import (
    Anchor,
    EventLine,
    NotationError,
    parse_line,
    parse_offset,
    resolve_problem,
)

__all__ = [
    "TEST_FILE_SUFFIXES",
    "AccountExpectation",
    "ActionMatch",
    "ActionRef",
    "ActionsExpectation",
    "Case",
    "Check",
    "Expected",
    "HistorySpec",
    "RoadmapIndex",
    "TestCode",
    "TestFile",
    "TestFileError",
    "TestSource",
    "ValueExpectation",
    "check_test_file",
    "is_test_file",
    "json_schema",
    "load_test_file",
    "parse_time",
    "plain_errors",
    "read_test_file",
]

TEST_FILE_SUFFIXES = (".test.yaml", ".test.yml")
"""File names that are always read as test files."""


class TestCode:
    """Stable ids of test-file problems (the ``code`` of each reported issue)."""

    __test__ = False  # not a pytest test class

    NOTATION = "notation_syntax"
    NOTATION_COLUMN = "notation_unknown_column"
    NOTATION_TOO_MANY = "notation_too_many"
    UNKNOWN_EVENT = "test_unknown_event"
    UNKNOWN_ACCOUNT = "test_unknown_account"
    UNKNOWN_ATTRIBUTE = "test_unknown_attribute"
    BAD_ATTRIBUTE = "test_bad_attribute"
    UNKNOWN_INDICATOR = "test_unknown_indicator"
    UNKNOWN_BAND = "test_unknown_band"
    UNKNOWN_STAGE = "test_unknown_stage"
    UNKNOWN_ACTION = "test_unknown_action"
    UNKNOWN_ROADMAP = "test_unknown_roadmap"
    UNKNOWN_SOURCE = "test_unknown_source"
    BAD_TIME = "test_bad_time"
    BAD_FILE = "test_bad_file"
    DUPLICATE_CASE = "test_duplicate_case"
    ROADMAP_FAILED = "test_roadmap_failed"
    NOT_A_TEST_FILE = "test_not_a_test_file"


class TestFileError(HealthRulesError):
    """A test file is wrong: bad YAML, bad format, or names its roadmap does not know."""

    __test__ = False


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True,
                              allow_inf_nan=False)


def _not_nan(v: Any) -> Any:
    if isinstance(v, float) and math.isnan(v):
        raise PydanticCustomError(
            "test_nan", "NaN is not a value here: the engine reads NaN as null (write null)", {})
    return v


Float = Annotated[StrictFloat, AllowInfNan(True)]
"""A float of a test file: ``.inf`` and ``-.inf`` are values (an indicator, a score or a
float attribute may hold them, docs/semantics.md); NaN is refused by :func:`_not_nan`."""

Scalar = Annotated[StrictBool | StrictInt | Float | StrictStr | None,
                   BeforeValidator(_not_nan)]
Number = Annotated[StrictInt | Float, BeforeValidator(_not_nan)]


class Expected(_Model):
    """A numeric expectation: a value with a tolerance, or a range (inclusive ends)."""

    value: Number | None = Field(None, description="The expected value.")
    tolerance: Annotated[float, Field(ge=0)] | None = Field(
        None, description="Largest allowed absolute difference from value (default: the "
        "file's tolerance).")
    min: Number | None = Field(None, description="Smallest allowed value (inclusive).")
    max: Number | None = Field(None, description="Largest allowed value (inclusive).")

    @model_validator(mode="after")
    def _one_form(self) -> Expected:
        has_value = "value" in self.model_fields_set
        has_range = self.min is not None or self.max is not None
        if has_value and has_range:
            raise PydanticCustomError(
                "expectation_invalid",
                "give either value (with an optional tolerance) or min/max, not both", {})
        if not has_value and not has_range:
            raise PydanticCustomError(
                "expectation_invalid", "give value (with an optional tolerance) or min/max", {})
        if self.tolerance is not None and not has_value:
            raise PydanticCustomError("expectation_invalid", "tolerance goes with value", {})
        if self.min is not None and self.max is not None and self.min > self.max:
            raise PydanticCustomError("expectation_invalid", "min is above max", {})
        return self

    def describe(self) -> str:
        """The expectation as text: ``0.8 ± 0.01``, ``70 .. 100``, ``>= 70``."""
        if "value" in self.model_fields_set:
            text = _num(self.value)
            if self.tolerance:
                text += f" ± {_num(self.tolerance)}"
            return text
        if self.min is not None and self.max is not None:
            return f"{_num(self.min)} .. {_num(self.max)}"
        if self.min is not None:
            return f">= {_num(self.min)}"
        return f"<= {_num(self.max)}"


def _num(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    return str(v)


ValueExpectation = Annotated[
    StrictBool | StrictInt | Float | StrictStr | Expected | None,
    BeforeValidator(_not_nan),
    Field(description="An exact value (numbers compare with the file's tolerance), null, "
          "{value, tolerance} or {min, max}. Dates and times are ISO text."),
]


class ActionMatch(_Model):
    """An action expected to fire, with conditions on how it fired."""

    id: str = Field(description="The action id.")
    text_contains: str | None = Field(None, description="Text its rendered `do` must contain.")
    priority: Literal["critical", "high", "medium", "low"] | None = None


ActionRef = Annotated[StrictStr | ActionMatch,
                      Field(description="An action id, or {id, text_contains, priority}.")]


class ActionsExpectation(_Model):
    """Which actions fire for the account: one explicit mode.

    ``exactly`` (these and no other), ``at_least`` (these, others may fire too), ``none``
    (no action fires) or ``absent`` (these do not fire; combinable with ``at_least``).
    """

    exactly: list[ActionRef] | None = None
    at_least: list[ActionRef] | None = None
    none: Literal[True] | None = Field(None, description="`none: true`: no action fires.")
    absent: list[StrictStr] | None = Field(None, description="Actions that must not fire.")

    @model_validator(mode="after")
    def _mode(self) -> ActionsExpectation:
        given = [m for m in ("exactly", "at_least", "none", "absent")
                 if getattr(self, m) is not None]
        if not given:
            raise PydanticCustomError(
                "expectation_invalid",
                "say which actions fire: exactly: [...], at_least: [...], none: true or "
                "absent: [...]", {})
        if len(given) > 1 and set(given) != {"at_least", "absent"}:
            raise PydanticCustomError(
                "expectation_invalid",
                "use one mode ({given} given); only at_least and absent go together",
                {"given": ", ".join(given)})
        if self.exactly is not None and not self.exactly:
            raise PydanticCustomError(
                "expectation_invalid", "exactly: [] means no action fires; write none: true", {})
        return self

    @property
    def mode(self) -> str:
        """``exactly``, ``at_least``, ``none`` or ``absent``."""
        for m in ("exactly", "at_least", "none"):
            if getattr(self, m) is not None:
                return m
        return "absent"


class AccountExpectation(_Model):
    """What one account's evaluation must show. Everything is optional; give what matters."""

    roadmap: StrictStr | None = Field(None, description="The roadmap (track) the account is "
                                      "routed to (packs); null when no roadmap applies.")
    stage: StrictStr | None = Field(None, description=f"Current stage id (or {UNASSIGNED_STAGE}).")
    achieved: StrictBool | None = Field(None, description="Whether the stage's achievement "
                                        "holds (null: unknown).")
    tasks_done: StrictInt | None = Field(None, description="Tasks of the stage that are done.")
    indicators: dict[str, ValueExpectation] = Field(
        default_factory=dict, description="Indicator values by indicator id.")
    bands: dict[str, StrictStr | None] = Field(
        default_factory=dict, description="Band names by indicator id (null: no value).")
    score: Annotated[StrictInt | Float | Expected | None, BeforeValidator(_not_nan)] = Field(
        None, description="The health score (0-100).")
    score_band: StrictStr | None = None
    segment: StrictStr | None = Field(None, description="The score segment that scored the "
                                      "account (null: none applies).")
    goal_reached: StrictBool | None = Field(None, description="Whether the roadmap's "
                                            "goal.target holds (null: unknown).")
    actions: ActionsExpectation | None = None


Expectations = dict[str, AccountExpectation]


class Check(_Model):
    """Another evaluation time of a case and what is expected then."""

    as_of: StrictStr = Field(description="A date, a datetime, or an offset from the case's "
                             "as_of such as +7d or -2w.")
    expect: Expectations = Field(description="Expectations by account id.")

    @field_validator("as_of", mode="before")
    @classmethod
    def _as_of(cls, v: Any) -> Any:
        return _iso(v)


class HistorySpec(_Model):
    """Evaluate through snapshots, so ``prev()``, ``change()``, ``stuck()`` and
    ``days_in_stage`` have values: snapshots every ``every`` from ``as_of`` + ``from`` to
    ``as_of`` (with :func:`healthrules.history.history`), and the last one is checked.
    """

    from_: StrictStr = Field(alias="from", description="Where the snapshots start: a day "
                             "offset from as_of such as -120d or -18w (0d: one snapshot; "
                             "prev() and change() still read their own earlier dates).")
    every: StrictStr = Field("1d", description="Days between snapshots: 1d, 7d, 1w...")

    @property
    def days(self) -> int:
        """How many days before ``as_of`` the snapshots start (0 or more)."""
        when = parse_offset(self.from_)
        if when is None or when.kind != "day" or when.time is not None or when.days > 0:
            raise ValueError(f"history from: {self.from_!r} is not a day offset such as -120d")
        return -when.days

    @property
    def step(self) -> int:
        """Days between snapshots."""
        m = re.fullmatch(r"\s*(\d+)\s*([dw])\s*", self.every)
        if m is None or int(m.group(1)) < 1:
            raise ValueError(f"history every: {self.every!r} is not like 1d, 7d or 1w")
        return int(m.group(1)) * (7 if m.group(2) == "w" else 1)


class Case(_Model):
    """One test case: accounts, their events, and expectations at one or more ``as_of``."""

    name: StrictStr = Field(min_length=1, description="A unique name within the file.")
    description: str | None = None
    skip: StrictStr | None = Field(None, description="Skip this case, giving the reason.")
    as_of: StrictStr | None = Field(
        None, description="The evaluation time (date or datetime); event offsets are relative "
        "to it. Default: the file's as_of.")
    accounts: dict[str, dict[str, Scalar] | None] = Field(
        default_factory=dict,
        description="Accounts by id, with their attributes (dates may be offsets like -90d).")
    accounts_file: StrictStr | None = Field(
        None, description="A csv, parquet or ndjson file of more accounts (relative path).")
    events: dict[str, list[StrictStr]] = Field(
        default_factory=dict, description="Event lines by account id, in the event notation.")
    events_file: StrictStr | None = Field(
        None, description="A csv, parquet or ndjson file of more events (relative path).")
    sources: dict[str, dict[str, list[StrictStr]]] = Field(
        default_factory=dict,
        description="Events of the other event sources of the roadmap (data.events): event "
        "lines by source name, then by account id (`events` holds the default source's).")
    source_files: dict[str, StrictStr] = Field(
        default_factory=dict,
        description="A csv, parquet or ndjson file of more events per source name "
        "(relative path).")
    expect: Expectations = Field(default_factory=dict,
                                 description="Expectations by account id at the case's as_of.")
    checks: list[Check] = Field(default_factory=list,
                                description="Expectations at other evaluation times.")
    history: HistorySpec | None = Field(
        None, description="Evaluate through snapshots (healthrules.history) so that "
        "change-over-time functions have values; `history: -120d` is short for "
        "`{from: -120d}`.")

    @field_validator("as_of", mode="before")
    @classmethod
    def _as_of(cls, v: Any) -> Any:
        return _iso(v)

    @field_validator("history", mode="before",
                     json_schema_input_type=str | HistorySpec | None)
    @classmethod
    def _history(cls, v: Any) -> Any:
        return {"from": v} if isinstance(v, str) else v

    @field_validator("accounts", mode="before", json_schema_input_type=dict[str, Any] | list[str])
    @classmethod
    def _accounts(cls, v: Any) -> Any:
        if isinstance(v, list) and all(isinstance(x, str) for x in v):
            return dict.fromkeys(v)
        return v

    @model_validator(mode="after")
    def _something(self) -> Case:
        if not self.expect and not self.checks:
            raise PydanticCustomError("expectation_invalid",
                                      "a case needs `expect:` (or `checks:`)", {})
        return self

    def times(self) -> list[tuple[str, Expectations, str]]:
        """Every (as_of text, expectations, YAML path of the expectations) of this case."""
        out: list[tuple[str, Expectations, str]] = []
        if self.expect:
            out.append((self.as_of or "", self.expect, "expect"))
        out += [(c.as_of, c.expect, f"checks[{i}].expect") for i, c in enumerate(self.checks)]
        return out


class TestFile(_Model):
    """A rule-pack test file: the roadmap or pack it tests and its cases."""

    __test__ = False

    kind: Literal["test"] = Field(description="Always `test`.")
    roadmap: StrictStr = Field(min_length=1, description="The roadmap or pack file under test, "
                               "relative to this file.")
    title: str | None = None
    as_of: StrictStr | None = Field(None, description="Default as_of of every case.")
    tolerance: Annotated[float, Field(ge=0)] = Field(
        1e-9, description="Default absolute tolerance when comparing numbers.")
    account_defaults: dict[str, Scalar] = Field(
        default_factory=dict, description="Attributes every account starts with.")
    cases: list[Case] = Field(min_length=1)

    @field_validator("as_of", mode="before")
    @classmethod
    def _as_of(cls, v: Any) -> Any:
        return _iso(v)


def _iso(v: Any) -> Any:
    if isinstance(v, (dt.date, dt.datetime)):
        return v.isoformat()
    return v


def json_schema() -> dict[str, Any]:
    """The JSON Schema of test files (what ``healthrules schema --tests`` prints).

    Examples
    --------
    >>> json_schema()["title"]
    'healthrules test file'
    """
    schema = TestFile.model_json_schema(mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **schema,
        "title": "healthrules test file",
        "description": "A healthrules rule-pack test file (kind: test). See docs/testing.md.",
    }


# --------------------------------------------------------------------------- times


def parse_time(text: str, reference: dt.date | dt.datetime | None = None) -> dt.date | dt.datetime:
    """Read an ``as_of``: ``2026-06-30``, ``2026-06-30T09:00`` or an offset like ``+7d``.

    Parameters
    ----------
    text
        The time as written in the test file.
    reference
        What an offset is relative to (a day offset keeps a date a date).

    Raises
    ------
    ValueError
        When the text is none of those.

    Examples
    --------
    >>> import datetime as dt
    >>> parse_time("2026-06-30"), parse_time("+7d", dt.date(2026, 6, 30))
    (datetime.date(2026, 6, 30), datetime.date(2026, 7, 7))
    """
    text = text.strip()
    off = parse_offset(text)
    if off is not None:
        if reference is None:
            raise ValueError(f"{text!r} is relative, but there is no as_of to be relative to")
        try:
            if off.kind == "day" and off.time is None:
                return reference + dt.timedelta(days=off.days)
            return Anchor.of(reference).instant(off)
        except OverflowError:
            raise ValueError(f"{text!r} from {reference.isoformat()} is beyond the dates a "
                             "timestamp holds (years 1 to 9999)") from None
    try:
        if "T" in text or " " in text:
            value: dt.date | dt.datetime = dt.datetime.fromisoformat(text.replace(" ", "T"))
        else:
            value = dt.date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a date (2026-06-30), a datetime (2026-06-30T09:00) "
                         "or an offset (+7d)") from None
    return value


def _within(value: dt.date | dt.datetime, text: str) -> dt.date | dt.datetime:
    """``value``, an ``as_of``, when an evaluation at it ends within the dates a timestamp
    holds (9999-12-31 ends at the midnight after it, which none holds; a date attribute may
    be 9999-12-31)."""
    try:
        Anchor.of(value)
    except OverflowError:
        raise ValueError(f"{text!r} is too late: the day it ends is beyond the dates a "
                         "timestamp holds (years 1 to 9999)") from None
    return value


# --------------------------------------------------------------------------- reading


@dataclass
class TestSource:
    """A test file as read: its model, its YAML positions and the problems found so far."""

    __test__ = False

    path: Path
    display: str
    doc: Positions | None
    model: TestFile | None
    issues: list[Issue] = field(default_factory=list)
    case_issues: dict[int, list[Issue]] = field(default_factory=dict)
    lines: dict[tuple[int, str], list[EventLine]] = field(default_factory=dict)
    source_lines: dict[tuple[int, str, str], list[EventLine]] = field(default_factory=dict)
    """Parsed event lines of the named sources by (case index, source, account)."""
    invalid_cases: set[int] = field(default_factory=set)
    """Parsed event lines by (case index, account), filled by :func:`check_test_file`."""

    @property
    def ok(self) -> bool:
        """True when the file itself has no error (cases may still have some)."""
        return self.model is not None and not _errors(self.issues)

    @property
    def roadmap_path(self) -> Path:
        """The roadmap or pack file, resolved against the test file's folder."""
        assert self.model is not None
        return self.path.parent / self.model.roadmap

    def where(self, path: str, *, key: bool = False, offset: int = 0) -> Location:
        """The location of a YAML path of this file (its key, or ``offset`` characters into
        a text value)."""
        if self.doc is None:
            return Location(self.display, 1, 1, path)
        if offset:
            value = self.doc.value(path)
            lead = len(value) - len(value.lstrip()) if isinstance(value, str) else 0
            return self.doc.expr_where(path, max(offset - lead, 0) + 1)
        return self.doc.where(path, key=key)

    def line_of(self, path: str) -> int | None:
        """The 1-based line of a YAML path (its nearest existing parent)."""
        return self.where(path).line

    def issue(self, code: str, message: str, path: str, *, hint: str | None = None,
              key: bool = False, offset: int = 0, case: int | None = None,
              severity: Severity = Severity.ERROR) -> Issue:
        """Record a problem at ``path``; a case's problem fails only that case."""
        return self.add(Issue(code=code, message=message, hint=hint, severity=severity,
                              location=self.where(path, key=key, offset=offset)), case)

    def add(self, item: Issue, case: int | None = None) -> Issue:
        """Record a located problem; a case's problem fails only that case."""
        if case is None:
            self.issues.append(item)
        else:
            self.case_issues.setdefault(case, []).append(item)
        return item

    def all_issues(self) -> list[Issue]:
        """Every problem of the file and of its cases, sorted by position."""
        items = list(self.issues) + [i for v in self.case_issues.values() for i in v]
        return sorted(items, key=lambda i: (i.location.line or 0, i.location.column or 0))


def _errors(issues: Iterable[Issue]) -> list[Issue]:
    return [i for i in issues if i.severity is Severity.ERROR]


def is_test_file(path: str | os.PathLike[str]) -> bool:
    """True for ``*.test.yaml`` files and for YAML files whose top level has ``kind: test``."""
    p = Path(path)
    name = p.name
    if name.endswith(TEST_FILE_SUFFIXES):
        return True
    if not name.endswith((".yaml", ".yml")):
        return False
    try:
        with p.open(encoding="utf-8", errors="replace") as fh:
            head = fh.read(65536)
    except OSError:
        return False
    for raw in head.splitlines():
        line = raw.rstrip()
        if line.startswith("kind:"):
            value = line[5:].split("#", 1)[0].strip().strip("'\"")
            return value == "test"
    return False


def read_test_file(path: str | os.PathLike[str]) -> TestSource:
    """Read and validate one test file; problems are collected, never raised.

    Parameters
    ----------
    path
        The test file.

    Returns
    -------
    TestSource
        ``model`` is None when the file cannot be read or does not match the format; its
        ``issues`` say why, each with file, line and column.
    """
    p = Path(path)
    display = os.fspath(path)
    src = TestSource(path=p, display=display, doc=None, model=None)
    try:
        doc = Positions.from_file(p)
    except HealthRulesError as exc:
        src.issues.extend(exc.errors())
        return src
    src.doc = doc
    src.issues.extend(doc.issues)
    if doc.data.get("kind") != "test":
        src.issue(TestCode.NOT_A_TEST_FILE, "this is not a test file (it needs `kind: test`)",
                  "kind" if "kind" in doc.data else "",
                  hint="a test file starts with `kind: test` and `roadmap: <file>`")
        return src
    try:
        src.model = TestFile.model_validate(doc.data)
    except pydantic.ValidationError as exc:
        per_case: dict[int, str] = {}
        file_level = False
        for err in plain_errors(exc.errors(include_url=False), doc.data):
            loc = err["loc"]
            if loc == ("cases",) and err["type"] == "too_short":
                err["msg"] = "a test file needs at least one case under `cases:`"
            case: int | None = None
            if len(loc) >= 2 and loc[0] == "cases" and isinstance(loc[1], int):
                case = loc[1]
                raw = doc.data["cases"][case]
                name = raw.get("name") if isinstance(raw, dict) else None
                per_case[case] = name if isinstance(name, str) and name else f"(case {case + 1})"
            else:
                file_level = True
            _pydantic_issue(src, doc, err, case)
        if file_level:
            return src
        # every problem is inside some cases: keep the others runnable
        cases = list(doc.data["cases"])
        for i, name in per_case.items():
            cases[i] = {"name": name, "checks": [{"as_of": "2000-01-01", "expect": {}}]}
        src.model = TestFile.model_validate({**doc.data, "cases": cases})
        src.invalid_cases = set(per_case)
    names: dict[str, int] = {}
    for i, one in enumerate(src.model.cases):
        if one.name in names:
            src.issue(TestCode.DUPLICATE_CASE,
                      f"two cases are named {one.name!r} (the other is case "
                      f"{names[one.name] + 1})", f"cases[{i}].name")
        names.setdefault(one.name, i)
    return src


_BRANCH = re.compile(r"(bool|int|float|str|none|function-(after|before|plain|wrap)\[.*\]|"
                     r"[A-Z]\w*)")
_BRANCH_SAYS = {"bool": "true or false", "int": "a number", "float": "a number", "str": "text",
                "Expected": "a mapping {value, tolerance} / {min, max}",
                "ActionMatch": "{id, text_contains, priority}"}


def _branch(part: Any, value: Any) -> str | None:
    """The union member a pydantic ``loc`` part names (None when it is a key of the data)."""
    if not isinstance(part, str) or not _BRANCH.fullmatch(part):
        return None
    if isinstance(value, dict) and part in value:
        return None
    model = re.search(r"(\w+)\]$", part)
    return model.group(1) if model else part


def plain_errors(errors: list[ErrorDetails], data: Any) -> list[ErrorDetails]:
    """Pydantic's errors with one error per value that matches no member of a union.

    Pydantic reports a value that fits none of ``true | 1 | 0.5 | text | {value, ...}`` once
    per member ("should be a valid boolean", "... integer", ...). A mapping keeps only the
    errors of the mapping member (what is wrong inside it); any other value gets one error
    that names what the place takes and what it holds.
    """
    groups: dict[tuple[Any, ...], list[tuple[str, ErrorDetails]]] = {}
    out: list[ErrorDetails | tuple[Any, ...]] = []
    for err in errors:
        loc, cur = tuple(err["loc"]), data
        for i, part in enumerate(loc):
            member = _branch(part, cur)
            if member is not None:
                prefix = loc[:i]
                if prefix not in groups:
                    groups[prefix] = []
                    out.append(prefix)
                groups[prefix].append((member, {**err, "loc": prefix + loc[i + 1:]}))
                break
            cur = _at(cur, (part,))
        else:
            out.append(err)
    result: list[ErrorDetails] = []
    for item in out:
        if not isinstance(item, tuple):
            takes = _TAKES.get(item["type"])
            if takes is not None:  # not "... or instance of HistorySpec": no class names
                item = {**item, "msg": f"this takes {takes}, not {kind_of(item['input'])}"}
            result.append(item)
            continue
        members = groups[item]
        value = _at(data, item)
        inner = [e for m, e in members if m[:1].isupper()]
        if isinstance(value, dict) and inner:
            result.extend(inner)
            continue
        if len(members) == 1:
            result.append(members[0][1])
            continue
        says = list(dict.fromkeys(_BRANCH_SAYS.get(m, m) for m, _ in members))
        takes = ", ".join(says[:-1]) + " or " + says[-1] if len(says) > 1 else says[0]
        result.append(ErrorDetails(type="test_value_type", loc=item, input=value,
                                   msg=f"this takes {takes}, not {kind_of(value)}"))
    return result


_TAKES = {"model_type": "a mapping", "dict_type": "a mapping", "list_type": "a list"}


def _at(data: Any, loc: tuple[Any, ...]) -> Any:
    """The value of ``data`` at a pydantic ``loc`` (None where it holds none)."""
    for part in loc:
        if isinstance(data, dict):
            data = data.get(part)
        elif isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
            data = data[part]
        else:
            return None
    return data


def _pydantic_issue(src: TestSource, doc: Positions, err: Any, case: int | None) -> None:
    src.add(issue_of_test_file(doc, err, _owner), case)


def load_test_file(path: str | os.PathLike[str]) -> TestFile:
    """Read and validate a test file, raising on any problem (for use from Python code).

    Only the file itself is checked here; names are checked against the roadmap when the
    file runs (:func:`healthrules.testing.run`).

    Parameters
    ----------
    path
        The test file.

    Returns
    -------
    TestFile

    Raises
    ------
    TestFileError
        Carrying every problem found, each located by file, line and column.
    """
    src = read_test_file(path)
    errors = _errors(src.all_issues())
    if src.model is None or errors:
        raise TestFileError(errors or src.issues)
    return src.model


_KEY_OWNERS: tuple[tuple[re.Pattern[str], type[BaseModel]], ...] = tuple(
    (re.compile(p), m) for p, m in (
        (r"^$", TestFile),
        (r"^cases\[\d+\]$", Case),
        (r"checks\[\d+\]$", Check),
        (r"\.actions\.(exactly|at_least)\[\d+\]$", ActionMatch),
        (r"expect\.[^.]+\.actions$", ActionsExpectation),
        (r"expect\.[^.]+\.(indicators\.[^.]+|score)$", Expected),
        (r"expect\.[^.]+$", AccountExpectation),
    )
)


def _owner(parent: str) -> type[BaseModel] | None:
    """The model of the mapping at a YAML path of a test file (None when unknown)."""
    for pattern, model in _KEY_OWNERS:
        if pattern.search(parent):
            return model
    return None


# --------------------------------------------------------------------------- static checks


@dataclass
class RoadmapIndex:
    """The names a test file may use, gathered from a loaded roadmap or pack."""

    roadmaps: dict[str, Roadmap]
    indicators: dict[str, dict[str, list[str] | None]]  # roadmap -> indicator -> bands
    stages: dict[str, list[str]]
    actions: dict[str, list[str]]
    score_bands: dict[str, list[str]]
    attributes: dict[str, str]
    value_columns: dict[str, str]
    event_names: set[str]
    has_user: bool
    parent: str | None = None
    segments: dict[str, list[str]] = field(default_factory=dict)
    default_source: str = "events"
    sources: dict[str, tuple[dict[str, str], bool, set[str]]] = field(default_factory=dict)
    """Per event source: its value columns, whether it has a user column, and the event
    names its indicators' filters mention."""


    @classmethod
    def of(cls, source: Roadmap | Pack) -> RoadmapIndex:
        """Index a roadmap or a loaded pack."""
        roadmaps = list(source.loaded) if isinstance(source, Pack) else [source]
        attrs: dict[str, str] = {}
        first = roadmaps[0]
        default = first.data.default_source
        sources: dict[str, tuple[dict[str, str], bool, set[str]]] = {}
        for r in roadmaps:
            attrs.update(r.data.accounts.attributes)
            for name, cols in r.data.sources.items():
                vals, has_user, names = sources.setdefault(
                    name, ({}, cols.user is not None, set()))
                vals.update(cols.values)
                names |= _event_literals(r, name)
        values, has_user, events = sources[default]
        return cls(
            roadmaps={r.id: r for r in roadmaps},
            indicators={r.id: {i.id: ([b.name for b in i.bands.levels] if i.bands else None)
                               for i in r.indicators} for r in roadmaps},
            stages={r.id: [s.id for s in r.stages] for r in roadmaps},
            actions={r.id: [a.id for _, a in r.all_actions()] for r in roadmaps},
            score_bands={r.id: sorted({b.name for bands in (r.score.bands, *(
                s.bands for s in r.score.segments)) if bands is not None
                for b in bands.levels}) for r in roadmaps},
            segments={r.id: [s.id for s in r.score.segments] for r in roadmaps},
            attributes=attrs, value_columns=values, event_names=events,
            has_user=has_user, default_source=default, sources=sources,
            parent=next((r.data.accounts.parent for r in roadmaps
                         if r.data.accounts.parent is not None), None),
        )

    def all_of(self, what: Mapping[str, Iterable[str]], roadmap: str | None) -> set[str]:
        """The union of a per-roadmap name table, or one roadmap's names."""
        if roadmap is not None and roadmap in what:
            return set(what[roadmap])
        return {n for names in what.values() for n in names}


def _event_literals(r: Roadmap, source: str) -> set[str]:
    """String constants in the ``where`` filters of the indicators that read ``source``: the
    event names a roadmap reads there."""
    import ast

    out: set[str] = set()
    default = r.data.default_source
    for ind in r.indicators:
        if (getattr(ind, "source", None) or default) != source:
            continue
        where = getattr(ind, "where", None)
        if not where:
            continue
        try:
            tree = ast.parse(where, mode="eval")
        except SyntaxError:
            continue
        out |= {n.value for n in ast.walk(tree)
                if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    return out


def _hint(name: str, pool: Iterable[str]) -> str | None:
    pool = sorted(pool)
    close = did_you_mean(name, pool, ignore_case=False)
    if close:
        return close
    if pool and len(pool) <= 12:
        return "known: " + ", ".join(pool)
    return None


_ATTR_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,), "float": (int, float), "str": (str,), "bool": (bool,),
}


def check_test_file(src: TestSource, index: RoadmapIndex) -> None:
    """Check every name of a read test file against its roadmap; add problems to ``src``.

    Event lines are parsed here (kept in ``src.lines``). A problem inside a case is recorded
    for that case only, so the other cases still run.
    """
    model = src.model
    assert model is not None
    if model.as_of is not None:
        _check_time(src, model.as_of, "as_of", None, None)
    for name, value in model.account_defaults.items():
        _check_attribute(src, name, value, f"account_defaults.{name}", None, index)
    for ci, case in enumerate(model.cases):
        if ci not in src.invalid_cases:
            _check_case(src, index, ci, case)


def _check_time(src: TestSource, text: str, path: str, ref: dt.date | None,
                case: int | None) -> dt.date | dt.datetime | None:
    try:
        return _within(parse_time(text, ref), text)
    except ValueError as exc:
        src.issue(TestCode.BAD_TIME, str(exc), path, case=case)
        return None


def _check_attribute(src: TestSource, name: str, value: Any, path: str, case: int | None,
                     index: RoadmapIndex) -> None:
    if name == index.parent and name not in index.attributes:
        if value is not None and not isinstance(value, str):
            src.issue(TestCode.BAD_ATTRIBUTE, f"{name!r} is the parent account: write its "
                      f"account id, got {json.dumps(value)}", path, case=case)
        return
    typ = index.attributes.get(name)
    if typ is None:
        src.issue(TestCode.UNKNOWN_ATTRIBUTE, f"unknown account attribute {name!r}", path,
                  key=True, case=case, hint=_hint(name, index.attributes))
        return
    if value is None:
        return
    if typ in ("date", "datetime"):
        if not isinstance(value, str):
            src.issue(TestCode.BAD_ATTRIBUTE, f"attribute {name!r} is a {typ}: write a date "
                      "like 2026-01-31 or an offset like -90d", path, case=case)
            return
        try:
            parse_time(value, dt.date(2000, 1, 1))
        except ValueError as exc:
            src.issue(TestCode.BAD_ATTRIBUTE, f"attribute {name!r}: {exc}", path, case=case)
        return
    ok = _ATTR_TYPES[typ]
    if not isinstance(value, ok) or (typ != "bool" and isinstance(value, bool)):
        src.issue(TestCode.BAD_ATTRIBUTE, f"attribute {name!r} is {typ}, got "
                  f"{json.dumps(value)}", path, case=case)
    elif (beyond := _beyond(typ, value)) is not None:
        src.issue(TestCode.BAD_ATTRIBUTE, f"attribute {name!r} is {typ}, and {value} is "
                  f"beyond {beyond}", path, case=case)


def _beyond(typ: str, value: object) -> str | None:
    """What a whole number of a test file does not fit in its ``int`` or ``float`` column
    or attribute (None: it fits). The one place both bounds are: an int is a 64-bit signed
    integer, and a float column reads a whole number as the nearest double, which must be
    finite (a number from ``2**1024 - 2**970`` on rounds to infinity)."""
    if not isinstance(value, int) or isinstance(value, bool):
        return None
    if typ == "int":
        return None if -INT64_MAX - 1 <= value <= INT64_MAX else "the 64-bit integers an int holds"
    if typ == "float":
        try:
            float(value)
        except OverflowError:
            return "the largest float"
    return None



def _value_problem(typ: str, value: float | int | None) -> str | None:
    """Why an event line's value does not fit its column's declared type (None: it fits)."""
    if value is None:
        return None
    if typ == "int":
        if not isinstance(value, int):
            return f"{value!r}: the column is int, give a whole number"
    beyond = _beyond(typ, value)
    return None if beyond is None else f"{value}: beyond {beyond}"


def _check_data_file(src: TestSource, name: str, path: str, ci: int) -> None:
    """A data file a case names exists next to the test file and is a format it reads."""
    fp = src.path.parent / name
    if not fp.is_file():
        src.issue(TestCode.BAD_FILE, f"no such file: {name} (relative to the test file's "
                  "folder)", path, case=ci)
    elif fp.suffix.lower() not in (".csv", ".parquet", ".ndjson", ".jsonl"):
        src.issue(TestCode.BAD_FILE, f"{name}: read csv, parquet or ndjson files", path,
                  case=ci)

def _check_case(src: TestSource, index: RoadmapIndex, ci: int, case: Case) -> None:
    model = src.model
    assert model is not None
    base = f"cases[{ci}]"
    as_of_text = case.as_of or model.as_of
    ref: dt.date | dt.datetime | None = None
    if as_of_text is None:
        src.issue(TestCode.BAD_TIME, "the case has no as_of (give one here or at the top of "
                  "the file)", f"{base}.name", case=ci)
    elif case.as_of is None:  # the file's as_of: a bad one is reported once, at the top
        try:
            ref = parse_time(as_of_text)
        except ValueError:
            ref = None
    else:
        ref = _check_time(src, as_of_text, f"{base}.as_of", None, ci)
    ref_day = ref.date() if isinstance(ref, dt.datetime) else ref
    times: list[tuple[dt.date | dt.datetime | None, str]] = [(ref, f"{base}.as_of")]
    for k, check in enumerate(case.checks):
        if ref is not None or parse_offset(check.as_of) is None:
            t = _check_time(src, check.as_of, f"{base}.checks[{k}].as_of", ref_day, ci)
            times.append((t, f"{base}.checks[{k}].as_of"))
    if case.history is not None:
        short = src.doc is not None and isinstance(src.doc.value(f"{base}.history"), str)
        for key in ("from", "every"):
            try:
                _ = case.history.days if key == "from" else case.history.step
            except ValueError as exc:
                where = f"{base}.history" if short else f"{base}.history.{key}"
                src.issue(TestCode.BAD_TIME, str(exc), where, case=ci)
        for t, path in times:
            if isinstance(t, dt.datetime):
                src.issue(TestCode.BAD_TIME, "a case with history is evaluated at whole days: "
                          f"give a date, not {t.isoformat()}", path, case=ci)
    for acc, attrs in case.accounts.items():
        for name, value in (attrs or {}).items():
            _check_attribute(src, name, value, f"{base}.accounts.{acc}.{name}", ci, index)
            if (name == index.parent and isinstance(value, str) and value not in case.accounts
                    and case.accounts_file is None):
                src.issue(TestCode.BAD_ATTRIBUTE, f"parent {value!r} of {acc!r} is not an "
                          "account of this case", f"{base}.accounts.{acc}.{name}", case=ci,
                          hint=_hint(value, list(case.accounts)))
    known = set(case.accounts)
    strict_accounts = case.accounts_file is None
    for attr_file, what in ((case.accounts_file, "accounts_file"),
                            (case.events_file, "events_file")):
        if attr_file is not None:
            _check_data_file(src, attr_file, f"{base}.{what}", ci)
    for source, path_file in case.source_files.items():
        if source not in index.sources or source == index.default_source:
            src.issue(TestCode.UNKNOWN_SOURCE, f"unknown event source {source!r}"
                      + (" (its events go under events_file)"
                         if source == index.default_source else ""),
                      f"{base}.source_files.{source}", key=True, case=ci,
                      hint=_hint(source, [n for n in index.sources
                                          if n != index.default_source]))
            continue
        _check_data_file(src, path_file, f"{base}.source_files.{source}", ci)
    groups: list[tuple[str, str, dict[str, list[str]]]] = [
        (index.default_source, f"{base}.events", case.events)]
    for source, by_account in case.sources.items():
        if source not in index.sources or source == index.default_source:
            src.issue(TestCode.UNKNOWN_SOURCE, f"unknown event source {source!r}"
                      + (" (its event lines go under events)"
                         if source == index.default_source else ""),
                      f"{base}.sources.{source}", key=True, case=ci,
                      hint=_hint(source, [n for n in index.sources
                                          if n != index.default_source]))
            continue
        groups.append((source, f"{base}.sources.{source}", by_account))
    for source, gpath, by_account in groups:
        _check_lines(src, index, ci, source, gpath, by_account,
                     known if strict_accounts else None, ref)
    for as_of_text_k, expectations, epath in case.times():
        del as_of_text_k
        for acc, exp in expectations.items():
            apath = f"{base}.{epath}.{acc}"
            if strict_accounts and acc not in known:
                src.issue(TestCode.UNKNOWN_ACCOUNT, f"expectations for {acc!r}, which is not "
                          "under this case's accounts", apath, key=True, case=ci,
                          hint=_hint(acc, known))
            _check_expectation(src, index, ci, apath, exp)


def _check_lines(src: TestSource, index: RoadmapIndex, ci: int, source: str, gpath: str,
                 by_account: dict[str, list[str]], known: set[str] | None,
                 ref: dt.date | dt.datetime | None = None) -> None:
    """Parse and check the event lines of one source of a case (``known``: the case's
    accounts, None when an accounts file may add more)."""
    values, has_user, event_names = index.sources.get(
        source, (index.value_columns, index.has_user, index.event_names))
    named = source != index.default_source or len(index.sources) > 1
    of = f" of source {source!r}" if named else " of the roadmap"
    declared_at = (f"data.events.{source}.values" if len(index.sources) > 1
                   else "data.events.values")
    try:  # (an as_of too late for an anchor is refused where it is written)
        anchor = None if ref is None else Anchor.of(ref)
    except OverflowError:
        anchor = None
    for acc, lines in by_account.items():
        if known is not None and acc not in known:
            src.issue(TestCode.UNKNOWN_ACCOUNT, f"events for {acc!r}, which is not under this "
                      "case's accounts", f"{gpath}.{acc}", key=True, case=ci,
                      hint=_hint(acc, known) or f"add it: accounts: {{{acc}: {{}}}}")
        for li, text in enumerate(lines):
            path = f"{gpath}.{acc}[{li}]"
            try:
                line = parse_line(text)
            except NotationError as exc:
                src.issue(exc.code, f"event line {text!r}: {exc.message}", path,
                          offset=exc.column - 1, hint=exc.hint, case=ci)
                continue
            why = None if anchor is None else resolve_problem(line, anchor)
            if why is not None:
                src.issue(TestCode.NOTATION, f"event line {text!r}: {why}", path, case=ci)
                continue
            bad = False
            for col, column in line.value_columns.items():
                if col not in values:
                    bad = True
                    hint = _hint(col, values)
                    if not values:
                        hint = f"the roadmap declares no value columns{of} ({declared_at})"
                    src.issue(TestCode.NOTATION_COLUMN, f"event line {text!r}: {col!r} is "
                              f"not a value column{of}", path, offset=column - 1,
                              hint=hint, case=ci)
                    continue
                problem = _value_problem(values[col], line.values.get(col))
                if problem is not None:
                    bad = True
                    src.issue(TestCode.NOTATION, f"event line {text!r}: {col}={problem}",
                              path, offset=column - 1, case=ci)
            if line.users != (None,) and not has_user:
                src.issue(TestCode.NOTATION, f"event line {text!r}: `by` names a user, but "
                          f"the roadmap declares no user column{of if named else ''}", path,
                          case=ci)
                bad = True
            if event_names and line.event not in event_names:
                close = did_you_mean(line.event, event_names, cutoff=0.75,
                                     ignore_case=False)
                if close:
                    src.issue(TestCode.UNKNOWN_EVENT, f"event {line.event!r} is read by no "
                              f"indicator{of}", path, hint=close, case=ci,
                              severity=Severity.WARNING)
            if bad:
                continue
            if source == index.default_source:
                src.lines.setdefault((ci, acc), []).append(line)
            else:
                src.source_lines.setdefault((ci, source, acc), []).append(line)


def _check_expectation(src: TestSource, index: RoadmapIndex, ci: int, apath: str,
                       exp: AccountExpectation) -> None:
    rid = exp.roadmap
    if rid is not None and rid not in index.roadmaps:
        src.issue(TestCode.UNKNOWN_ROADMAP, f"unknown roadmap {rid!r}", f"{apath}.roadmap",
                  case=ci, hint=_hint(rid, index.roadmaps))
        rid = None
    inds = index.indicators.get(rid) if rid is not None else None
    all_inds: dict[str, list[str] | None] = dict(inds) if inds is not None else {}
    if inds is None:
        for table in index.indicators.values():
            for k, v in table.items():
                all_inds.setdefault(k, v)
    for name in exp.indicators:
        if name not in all_inds:
            src.issue(TestCode.UNKNOWN_INDICATOR, f"unknown indicator {name!r}",
                      f"{apath}.indicators.{name}", key=True, case=ci,
                      hint=_hint(name, all_inds))
    for name, band in exp.bands.items():
        if name not in all_inds:
            src.issue(TestCode.UNKNOWN_INDICATOR, f"unknown indicator {name!r}",
                      f"{apath}.bands.{name}", key=True, case=ci, hint=_hint(name, all_inds))
            continue
        levels = all_inds[name]
        if levels is None:
            src.issue(TestCode.UNKNOWN_BAND, f"indicator {name!r} has no bands",
                      f"{apath}.bands.{name}", key=True, case=ci,
                      hint="expect its value under indicators: instead")
        elif band is not None and band not in levels:
            src.issue(TestCode.UNKNOWN_BAND, f"indicator {name!r} has no band {band!r}",
                      f"{apath}.bands.{name}", case=ci, hint=_hint(band, levels))
    if exp.stage is not None:
        stages = index.all_of(index.stages, rid) | {UNASSIGNED_STAGE}
        if exp.stage not in stages:
            src.issue(TestCode.UNKNOWN_STAGE, f"unknown stage {exp.stage!r}", f"{apath}.stage",
                      case=ci, hint=_hint(exp.stage, stages))
    if exp.segment is not None:
        segments = index.all_of(index.segments, rid)
        if exp.segment not in segments:
            src.issue(TestCode.UNKNOWN_BAND, f"unknown score segment {exp.segment!r}",
                      f"{apath}.segment", case=ci,
                      hint=_hint(exp.segment, segments) if segments
                      else "the roadmap has no score segments")
    if exp.score_band is not None:
        bands = index.all_of(index.score_bands, rid)
        if exp.score_band not in bands:
            hint = _hint(exp.score_band, bands) if bands else "the roadmap has no score bands"
            src.issue(TestCode.UNKNOWN_BAND, f"unknown score band {exp.score_band!r}",
                      f"{apath}.score_band", case=ci, hint=hint)
    if exp.actions is not None:
        actions = index.all_of(index.actions, rid)
        for mode in ("exactly", "at_least", "absent"):
            refs = getattr(exp.actions, mode) or []
            for j, ref in enumerate(refs):
                aid = ref if isinstance(ref, str) else ref.id
                if aid not in actions:
                    path = f"{apath}.actions.{mode}[{j}]"
                    if not isinstance(ref, str):
                        path += ".id"
                    src.issue(TestCode.UNKNOWN_ACTION, f"unknown action {aid!r}", path,
                              case=ci, hint=_hint(aid, actions))
