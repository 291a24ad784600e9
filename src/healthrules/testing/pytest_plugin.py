"""pytest plugin: collect ``*.test.yaml`` rule-pack test files, one pytest item per case.

Registered through the ``pytest11`` entry point, so with healthrules installed ``pytest rules/``
runs every test file under ``rules/``. Only files named ``*.test.yaml`` (or ``*.test.yml``)
are claimed; everything else is left to pytest's ordinary collection. Each case runs through
the same runner as ``healthrules test`` and fails with the same readable diff.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from healthrules.testing.runner import CaseResult, FileResult, RoadmapCache

__all__ = ["RuleCaseItem", "RuleTestFile", "pytest_collect_file"]

_SUFFIXES = (".test.yaml", ".test.yml")


class RuleCaseFailed(Exception):
    """Raised by a case item that failed; carries the runner's result."""

    def __init__(self, result: CaseResult) -> None:
        super().__init__(result.name)
        self.result = result


_CACHE_KEY: pytest.StashKey[RoadmapCache] = pytest.StashKey()
_RESULTS_KEY: pytest.StashKey[dict[Path, FileResult]] = pytest.StashKey()


def _cache(config: pytest.Config) -> RoadmapCache:
    from healthrules.testing.runner import RoadmapCache

    cache = config.stash.get(_CACHE_KEY, None)
    if cache is None:
        cache = config.stash[_CACHE_KEY] = RoadmapCache()
    return cache


def _file_result(config: pytest.Config, path: Path) -> FileResult:
    """Run a whole test file once (its cases share evaluations) and keep the result."""
    from healthrules.testing.runner import run_file

    results = config.stash.get(_RESULTS_KEY, None)
    if results is None:
        results = config.stash[_RESULTS_KEY] = {}
    key = path.resolve()
    if key not in results:
        results[key] = run_file(path, cache=_cache(config))
    return results[key]


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    """Claim ``*.test.yaml`` files; leave every other file to pytest."""
    if file_path.name.endswith(_SUFFIXES):
        file: RuleTestFile = RuleTestFile.from_parent(parent, path=file_path)
        return file
    return None


class RuleTestFile(pytest.File):
    """A rule-pack test file: one item per case (one failing item when it cannot be read)."""

    def collect(self) -> Iterator[pytest.Item]:
        """Read the file and yield one :class:`RuleCaseItem` per case."""
        from healthrules.testing.spec import read_test_file

        src = read_test_file(self.path)
        if src.model is None:
            yield RuleCaseItem.from_parent(self, name="(file)", index=None, line=1)
            return
        for ci, case in enumerate(src.model.cases):
            item = RuleCaseItem.from_parent(self, name=case.name, index=ci,
                                            line=src.line_of(f"cases[{ci}]") or 1)
            if case.skip is not None and ci not in src.invalid_cases:
                item.add_marker(pytest.mark.skip(reason=case.skip))
            yield item


class RuleCaseItem(pytest.Item):
    """One case of a rule-pack test file."""

    def __init__(self, *, index: int | None, line: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.index = index
        self.line = line

    def runtest(self) -> None:
        """Run the case with the healthrules runner; fail with its diff, or skip."""
        result = _file_result(self.config, self.path)
        if self.index is None:
            case = result.cases[0]
        else:
            found = [c for c in result.cases if c.index == self.index]
            if not found:
                raise RuleCaseFailed(_missing(str(self.path), self.name))
            case = found[0]
        if case.status == "skipped":
            pytest.skip(case.reason or "skipped in the test file")
        if case.status in ("failed", "error"):
            raise RuleCaseFailed(case)

    def repr_failure(
        self,
        excinfo: pytest.ExceptionInfo[BaseException],
        style: Any = None,
    ) -> str | Any:
        """The runner's readable failure text (the aligned expected-versus-actual diff)."""
        if isinstance(excinfo.value, RuleCaseFailed):
            return excinfo.value.result.render()
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int, str]:
        """Where the case is: the test file and the case's line."""
        return self.path, self.line - 1, f"case {self.name}"


def _missing(file: str, name: str) -> CaseResult:
    from healthrules.errors import Issue, Location
    from healthrules.testing.runner import CaseResult

    return CaseResult(file, name, None, "error", issues=[Issue(
        code="test_case_missing", message=f"the case {name!r} is no longer in the file",
        location=Location(file))])
