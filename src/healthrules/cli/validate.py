"""``healthrules validate``: check roadmap, pack and library files and report every problem."""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from pathlib import Path
from typing import Any

from healthrules.cli._exit import EXIT_CODES_HELP, Exit, UsageError
from healthrules.errors import Issue, Severity, shown_lines
from healthrules.loader import FileCheck, check_files

__all__ = ["register", "run"]

EXAMPLES = """\
examples:
  healthrules validate rules/onboarding.yaml
  healthrules validate rules/                 # every *.yaml / *.yml under rules/
  healthrules validate pack.yaml --format json > report.json

Files with `kind: test` (rule-pack test files) are skipped. Problems are printed as
`file:line:column: severity: message (at yaml.path) [code]`, followed by hint lines.
"""


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``validate`` sub-command.

    Parameters
    ----------
    subparsers
        The sub-parsers of the ``healthrules`` parser.

    Returns
    -------
    argparse.ArgumentParser
        The sub-parser.
    """
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "validate",
        help="check roadmap, pack and library files",
        description="Check roadmap, pack and indicator-library files: YAML, format, names, "
        "types and expressions. Folders are searched for *.yaml and *.yml files.",
        epilog=textwrap.dedent(EXAMPLES) + "\n" + EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="files or folders to check")
    parser.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="text (default): one line per problem; json: the problem records and per-file "
        "status as one JSON document",
    )
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> Exit:
    """Check the files named on the command line and print the result.

    Parameters
    ----------
    args
        Parsed arguments: ``paths`` and ``format``.

    Returns
    -------
    Exit
        OK when every file is valid, NOT_CLEAN when one is not.

    Raises
    ------
    UsageError
        When a path does not exist or holds no rule file.
    """
    missing = [p for p in args.paths if not Path(p).exists()]
    if missing:
        raise UsageError(f"no such file or folder: {', '.join(missing)}")
    results = check_files(args.paths)
    if not results:
        raise UsageError(f"no rule file (*.yaml or *.yml) under {', '.join(args.paths)}")
    issues = _unique(i for fc in results for i in fc.issues)
    if args.format == "json":
        json.dump(_document(results, issues), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        for line in shown_lines(issues):  # at most MAX_SHOWN_PER_FILE per file
            print(line)
        print(_summary(results, issues))
    return Exit.OK if all(fc.ok for fc in results) else Exit.NOT_CLEAN


def _unique(issues: Any) -> list[Issue]:
    seen: set[tuple[Any, ...]] = set()
    out: list[Issue] = []
    for i in issues:
        key = (i.code, i.message, i.location.file, i.location.line, i.location.column)
        if key not in seen:
            seen.add(key)
            out.append(i)
    return sorted(out, key=lambda i: (i.location.file or "", i.location.line or 0,
                                      i.location.column or 0))


def _count(issues: list[Issue], severity: Severity) -> int:
    return sum(1 for i in issues if i.severity is severity)


def _summary(results: list[FileCheck], issues: list[Issue]) -> str:
    checked = [fc for fc in results if not fc.skipped]
    valid = sum(1 for fc in checked if fc.ok)
    n = len(checked)
    text = f"{n} file{'' if n == 1 else 's'} checked: {valid} valid, {n - valid} invalid"
    errors = _count(issues, Severity.ERROR)
    warnings = _count(issues, Severity.WARNING)
    details = []
    if errors:
        details.append(f"{errors} error{'' if errors == 1 else 's'}")
    if warnings:
        details.append(f"{warnings} warning{'' if warnings == 1 else 's'}")
    if details:
        text += f" ({', '.join(details)})"
    skipped = len(results) - n
    if skipped:
        text += f"; {skipped} test file{'' if skipped == 1 else 's'} skipped"
    return text


def _document(results: list[FileCheck], issues: list[Issue]) -> dict[str, Any]:
    checked = [fc for fc in results if not fc.skipped]
    return {
        "files": [
            {
                "file": fc.path,
                "kind": fc.kind,
                "status": fc.status,
                "errors": _count(list(fc.issues), Severity.ERROR),
            }
            for fc in results
        ],
        "issues": [i.to_record() for i in issues],
        "summary": {
            "checked": len(checked),
            "valid": sum(1 for fc in checked if fc.ok),
            "invalid": sum(1 for fc in checked if not fc.ok),
            "skipped": len(results) - len(checked),
            "errors": _count(issues, Severity.ERROR),
            "warnings": _count(issues, Severity.WARNING),
        },
    }
