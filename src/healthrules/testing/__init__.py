"""Rule-pack testing: test files, their runner, assertions, coverage, and hypothesis strategies.

- :func:`run` finds ``*.test.yaml`` files (and YAML files with ``kind: test``), runs their
  cases and returns a :class:`RunReport` (what ``healthrules test`` prints);
- :func:`assert_account` checks one account of an :class:`~healthrules.Evaluation` from Python
  code, with the same aligned diff on failure;
- :mod:`healthrules.testing.strategies` holds hypothesis strategies for fuzzing a pack (it
  needs the ``testing`` extra: ``pip install 'healthrules[testing]'``);
- the pytest plugin (:mod:`healthrules.testing.pytest_plugin`) collects test files, so
  ``pytest rules/`` runs them.

The format of test files is described in ``docs/testing.md``; its JSON Schema is
:func:`json_schema` (``healthrules schema --tests``).
"""

from __future__ import annotations

from healthrules.testing.asserts import Mismatch, assert_account
from healthrules.testing.coverage import CoverageItem, CoverageReport
from healthrules.testing.notation import EventLine, NotationError, parse_line
from healthrules.testing.runner import CaseResult, FileResult, RunReport, discover, run, run_file
from healthrules.testing.spec import (
    TestFile,
    TestFileError,
    json_schema,
    load_test_file,
    read_test_file,
)

__all__ = [
    "CaseResult",
    "CoverageItem",
    "CoverageReport",
    "EventLine",
    "FileResult",
    "Mismatch",
    "NotationError",
    "RunReport",
    "TestFile",
    "TestFileError",
    "assert_account",
    "discover",
    "json_schema",
    "load_test_file",
    "parse_line",
    "read_test_file",
    "run",
    "run_file",
]
