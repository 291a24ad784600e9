"""Error and warning classes of healthrules, and the one record shape they all share."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "MAX_SHOWN_PER_FILE",
    "Code",
    "EvaluationError",
    "ExpressionError",
    "HealthRulesDeprecationWarning",
    "HealthRulesError",
    "HealthRulesWarning",
    "InputDataError",
    "Issue",
    "Location",
    "ReferenceError_",
    "RoadmapError",
    "Severity",
    "SyntaxError_",
    "ValidationError",
    "shown_lines",
]


class Severity(enum.StrEnum):
    """How bad a finding is; errors stop a roadmap from loading, the rest are advice."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


class Code(enum.StrEnum):
    """Stable machine ids of every problem healthrules reports. A value is never reused."""

    # reading the file
    FILE_NOT_FOUND = "file_not_found"
    FILE_UNREADABLE = "file_unreadable"
    FILE_TOO_LARGE = "file_too_large"
    NOT_UTF8 = "not_utf8"
    EMPTY_FILE = "empty_file"
    YAML_SYNTAX = "yaml_syntax"
    DUPLICATE_KEY = "duplicate_key"
    NOT_A_MAPPING = "not_a_mapping"
    YAML_TOO_DEEP = "yaml_too_deep"
    UNSUPPORTED_TAG = "unsupported_tag"
    # models (pydantic's own type ids are kept as they are, e.g. "missing", "extra_forbidden")
    VALIDATION = "validation"
    DUPLICATE_ID = "duplicate_id"
    BANDS_INVALID = "bands_invalid"
    WEIGHTS_INVALID = "weights_invalid"
    WINDOW_INVALID = "window_invalid"
    UNKNOWN_TIMEZONE = "unknown_timezone"
    NO_TIMEZONE_DATABASE = "no_timezone_database"
    # references
    UNKNOWN_NAME = "unknown_name"
    UNKNOWN_STAGE = "unknown_stage"
    UNKNOWN_INDICATOR = "unknown_indicator"
    NAME_CLASH = "name_clash"
    IMPORT_FAILED = "import_failed"
    CYCLE = "cycle"
    # expressions
    EXPR_SYNTAX = "expr_syntax"
    EXPR_DISALLOWED = "expr_disallowed"
    EXPR_TYPE = "expr_type"
    EXPR_TOO_COMPLEX = "expr_too_complex"
    TEMPLATE_INVALID = "template_invalid"
    # input frames
    MISSING_COLUMN = "missing_column"
    WRONG_DTYPE = "wrong_dtype"
    TIMEZONE_MISMATCH = "timezone_mismatch"
    NULL_KEY = "null_key"
    DUPLICATE_ACCOUNT = "duplicate_account"
    UNKNOWN_PARENT = "unknown_parent"
    PARENT_CYCLE = "parent_cycle"
    BAD_VALIDITY = "bad_validity"

    BAD_AS_OF = "bad_as_of"
    VALUES_OUT_OF_RANGE = "values_out_of_range"
    UNKNOWN_SOURCE = "unknown_source"
    # evaluation
    EVALUATION_FAILED = "evaluation_failed"
    # the state store of daily runs (healthrules.history)
    STATE_STORE = "state_store"


@dataclass(frozen=True, slots=True)
class Location:
    """Where a problem is: file, 1-based line and column, and the YAML path inside the file."""

    file: str | None = None
    line: int | None = None
    column: int | None = None
    path: str = ""

    def __str__(self) -> str:
        parts = [self.file or "<string>"]
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        return ":".join(parts)


@dataclass(frozen=True, slots=True)
class Issue:
    """One problem: a stable code, a severity, a message, where it is, and a hint.

    Errors, input-data problems and lint findings all use this record, so the API, the CLI's
    ``--format json`` and the test runner emit the same fields.
    """

    code: str
    message: str
    location: Location = field(default_factory=Location)
    severity: Severity = Severity.ERROR
    hint: str | None = None
    related: Location | None = None
    ctx: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        text = f"{self.location}: {self.severity.value}: {self.message}"
        if self.location.path:
            text += f" (at {self.location.path})"
        text += f" [{self.code}]"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        if self.related is not None:
            text += f"\n  see also: {self.related}"
            if self.related.path:
                text += f" (at {self.related.path})"
        return text

    def to_record(self) -> dict[str, Any]:
        """Return a flat, JSON-friendly dict of this issue."""
        return {
            "code": self.code,
            "severity": self.severity.value,
            "file": self.location.file,
            "line": self.location.line,
            "column": self.location.column,
            "path": self.location.path,
            "message": self.message,
            "hint": self.hint,
            "related": str(self.related) if self.related is not None else None,
        }


def _sort_key(issue: Issue) -> tuple[str, int, int, str]:
    loc = issue.location
    return (loc.file or "", loc.line or 0, loc.column or 0, issue.message)


class HealthRulesError(Exception):
    """Base class of every error healthrules raises on purpose."""

    def __init__(self, issues: Iterable[Issue] | str) -> None:
        if isinstance(issues, str):
            issues = [Issue(code=Code.EVALUATION_FAILED.value, message=issues)]
        self.issues: list[Issue] = sorted(issues, key=_sort_key)
        super().__init__(self._render())

    def _render(self) -> str:
        if len(self.issues) == 1:
            return str(self.issues[0])
        head = f"{len(self.issues)} problems:"
        return "\n".join([head, *shown_lines(self.issues)])

    def errors(self) -> list[Issue]:
        """Return the issues of this error, sorted by file position."""
        return list(self.issues)

    def to_records(self) -> list[dict[str, Any]]:
        """Return the issues as flat dicts (the ``--format json`` shape)."""
        return [i.to_record() for i in self.issues]

    def to_frame(self) -> Any:
        """Return the issues as a polars DataFrame with one row per issue."""
        import polars as pl

        schema = {
            "code": pl.String,
            "severity": pl.String,
            "file": pl.String,
            "line": pl.Int64,
            "column": pl.Int64,
            "path": pl.String,
            "message": pl.String,
            "hint": pl.String,
            "related": pl.String,
        }
        return pl.DataFrame(self.to_records(), schema=schema)


MAX_SHOWN_PER_FILE = 50
"""The most problems of one file printed (in a :class:`HealthRulesError`'s text and by
``healthrules validate``); the rest are counted. Every problem stays in ``errors()``."""


def shown_lines(issues: Iterable[Issue], cap: int = MAX_SHOWN_PER_FILE) -> list[str]:
    """The text of each issue, at most ``cap`` per file, then one line counting the rest of
    that file's (``... and 19,950 more problems in this file``). Issues of one file are
    expected together (sorted by file)."""
    lines: list[str] = []
    current: object = object()
    shown = hidden = 0

    def close() -> None:
        if hidden:
            plural = "problem" if hidden == 1 else "problems"
            lines.append(f"... and {hidden:,} more {plural} in this file")

    for issue in issues:
        if issue.location.file != current:
            close()
            current, shown, hidden = issue.location.file, 0, 0
        if shown < cap:
            lines.append(str(issue))
            shown += 1
        else:
            hidden += 1
    close()
    return lines


class RoadmapError(HealthRulesError):
    """The roadmap file is wrong: it cannot be read, parsed, validated or compiled."""


class SyntaxError_(RoadmapError):
    """The file is not readable YAML (syntax, encoding, duplicate keys, top level)."""


class ValidationError(RoadmapError):
    """The YAML does not match the roadmap format."""


class ReferenceError_(RoadmapError):
    """A name, stage, action or import that something refers to does not exist."""


class ExpressionError(RoadmapError):
    """An expression does not parse, uses a disallowed construct, or has a type error."""


class InputDataError(HealthRulesError):
    """The event or account frames do not match the roadmap's data contract."""


class EvaluationError(HealthRulesError):
    """Evaluation failed for a reason that is not the roadmap's or the input's fault."""


class HealthRulesWarning(UserWarning):
    """Base class of healthrules warnings."""


class HealthRulesDeprecationWarning(HealthRulesWarning, DeprecationWarning):
    """A feature used will be removed in a later release."""


def raise_if_any(issues: Sequence[Issue], cls: type[HealthRulesError] = RoadmapError) -> None:
    """Raise ``cls`` carrying every error-severity issue, if there is any."""
    errors = [i for i in issues if i.severity is Severity.ERROR]
    if errors:
        raise cls(errors)
