"""What every lint check shares: the check base class, the lint settings and the registry of ids.

A finding is a :class:`healthrules.errors.Issue` (the record load errors use too) whose
``code`` is the check id (``HR201``), whose ``ctx["check"]`` is the check's readable name
(``indicators.unused``) and whose location holds the YAML path; the runner adds file, line and
column. :data:`REGISTRY` is the whole list of ids, in one place, like pint's ``CheckNames``:
an id is never reused, and a retired check stays listed with status ``removed``.
"""

from __future__ import annotations

import abc
import enum
import re
import textwrap
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Final

from healthrules.errors import Issue, Location, Severity

if TYPE_CHECKING:
    from healthrules.lint.context import LintContext

__all__ = [
    "DEFAULT_MAX_SCORED_INDICATORS",
    "DOC_SECTIONS",
    "REGISTRY",
    "Check",
    "LintConfig",
    "RegistryEntry",
    "Status",
]

DEFAULT_MAX_SCORED_INDICATORS: Final = 7
"""Above this many scored indicators, one score is more than a team can act on (HR401)."""


class Status(enum.StrEnum):
    """Whether a check id is in use (``stable``) or retired (``removed``, never reused)."""

    STABLE = "stable"
    REMOVED = "removed"


@dataclass(frozen=True, slots=True)
class RegistryEntry:
    """One check id: its code, readable name, status, and for a removed id why it went."""

    code: str
    name: str
    status: Status = Status.STABLE
    note: str = ""

    @property
    def family(self) -> str:
        """The family part of the name (``indicators`` for ``indicators.unused``)."""
        return self.name.split(".", 1)[0]


REGISTRY: Final[list[RegistryEntry]] = [
    # lint itself (HR0xx)
    RegistryEntry("HR001", "lint.unknown_check"),
    # stages (HR1xx)
    RegistryEntry("HR101", "stages.no_achievement"),
    RegistryEntry("HR102", "stages.achievement_unchecked"),
    RegistryEntry("HR103", "stages.unreachable"),
    RegistryEntry("HR104", "stages.no_actions"),
    RegistryEntry("HR105", "stages.only_missing_values"),
    RegistryEntry("HR106", "stages.unreachable_track"),
    # indicators (HR2xx)
    RegistryEntry("HR201", "indicators.unused"),
    RegistryEntry("HR202", "indicators.no_outcome"),
    RegistryEntry("HR203", "indicators.goal_not_outcome"),
    RegistryEntry("HR204", "indicators.duplicate"),
    RegistryEntry("HR205", "indicators.plainer_percentile"),
    RegistryEntry("HR206", "indicators.target_ignores_indicator"),
    # thresholds: bands of indicators and of the score (HR3xx)
    RegistryEntry("HR301", "thresholds.unreachable_band"),
    RegistryEntry("HR302", "thresholds.duplicate_score"),
    RegistryEntry("HR303", "thresholds.score_order"),
    RegistryEntry("HR304", "thresholds.off_scale"),
    # scores (HR4xx)
    RegistryEntry("HR401", "scores.too_many_indicators"),
    RegistryEntry("HR402", "scores.nothing_scored"),
    RegistryEntry("HR403", "scores.empty_family"),
    RegistryEntry("HR404", "scores.ignored_weight"),
    RegistryEntry("HR405", "scores.missing_unscored"),
    # actions (HR5xx)
    RegistryEntry("HR501", "actions.never_true"),
    RegistryEntry("HR502", "actions.always_true"),
    RegistryEntry("HR503", "actions.no_owner"),
    RegistryEntry("HR504", "actions.no_channel"),
    RegistryEntry("HR505", "actions.challenge_low_priority"),
    RegistryEntry("HR506", "actions.quotes_nothing"),
    RegistryEntry("HR507", "actions.duplicate_condition"),
    RegistryEntry("HR508", "actions.resolved_immediately"),
    RegistryEntry("HR509", "actions.escalated_before_due"),
    # expressions (HR6xx)
    RegistryEntry("HR601", "expressions.constant_condition"),
    RegistryEntry("HR602", "expressions.constant_part"),
    RegistryEntry("HR603", "expressions.unknown_label"),
]
"""Every check id ever issued, in code order. Never delete or reuse an entry: retire it by
setting ``status=Status.REMOVED`` and a ``note`` saying why and what replaces it."""


@dataclass(frozen=True)
class LintConfig:
    """Which checks run and their settings (the CLI's options; the file's ``lint:`` adds to it).

    Parameters
    ----------
    select
        Only these checks (ids, names, families such as ``actions``, or ``all``); None for
        every check.
    disable
        Checks switched off (same spellings as ``select``).
    max_scored_indicators
        The most indicators one health score may weigh before HR401 warns.
    """

    select: frozenset[str] | None = None
    disable: frozenset[str] = field(default_factory=frozenset)
    max_scored_indicators: int = DEFAULT_MAX_SCORED_INDICATORS


DOC_SECTIONS: Final = ("What it does", "Why is this bad", "Example", "Fix", "Configuration")
"""The headings of a check's docstring, in order (Configuration is optional)."""


class Check(abc.ABC):
    """A lint check: a stable ``code``, a readable ``name``, a default ``severity``.

    Subclasses implement :meth:`run`, yielding findings made with :meth:`finding`. The class
    docstring is the documentation: a one-line summary, then the sections of
    :data:`DOC_SECTIONS` as numpydoc-style headings; ``docs/lint.md`` is generated from it.
    """

    code: ClassVar[str]
    name: ClassVar[str]
    severity: ClassVar[Severity]

    @abc.abstractmethod
    def run(self, ctx: LintContext) -> Iterable[Issue]:
        """Yield the findings of this check for one roadmap."""

    @classmethod
    def family(cls) -> str:
        """The family part of the name (``actions`` for ``actions.no_owner``)."""
        return cls.name.split(".", 1)[0]

    @classmethod
    def summary(cls) -> str:
        """The first line of the docstring."""
        return (cls.__doc__ or "").strip().splitlines()[0].strip()

    @classmethod
    def sections(cls) -> dict[str, str]:
        """The docstring's sections by heading, dedented (see :data:`DOC_SECTIONS`)."""
        doc = textwrap.dedent("\n".join((cls.__doc__ or "").splitlines()[1:]))
        out: dict[str, str] = {}
        lines = doc.splitlines()
        current: str | None = None
        buf: list[str] = []
        i = 0
        while i < len(lines):
            line = lines[i]
            nxt = lines[i + 1] if i + 1 < len(lines) else ""
            if line.strip() and re.fullmatch(r"-{3,}", nxt.strip()) and len(
                nxt.strip()
            ) == len(line.strip()):
                if current is not None:
                    out[current] = "\n".join(buf).strip("\n")
                current, buf = line.strip(), []
                i += 2
                continue
            if current is not None:
                buf.append(line)
            i += 1
        if current is not None:
            out[current] = "\n".join(buf).strip("\n")
        return out

    def finding(
        self,
        path: str,
        message: str,
        *,
        hint: str | None = None,
        column: int | None = None,
        related: str | None = None,
        severity: Severity | None = None,
    ) -> Issue:
        """Make a finding of this check at a YAML path.

        Parameters
        ----------
        path
            The YAML path of the node the finding is about (``stages[1].actions[0].when``).
        message
            What is wrong, in one sentence.
        hint
            How to fix it.
        column
            The 1-based column inside the expression at ``path``, when the finding is about a
            part of it.
        related
            The YAML path of a second node involved.
        severity
            Overrides the check's default severity for this finding.
        """
        ctx: dict[str, object] = {"check": self.name}
        if column is not None:
            ctx["expr_column"] = column
        return Issue(
            code=self.code,
            message=message,
            location=Location(path=path),
            severity=severity or self.severity,
            hint=hint,
            related=Location(path=related) if related is not None else None,
            ctx=ctx,
        )
