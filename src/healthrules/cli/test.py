"""``healthrules test``: run rule-pack test files and report each failure as an aligned diff."""

from __future__ import annotations

import argparse
import json
import re
import sys
from typing import Any

__all__ = ["register", "run"]

EPILOG = """\
examples:
  healthrules test rules/                      every *.test.yaml (and kind: test file) below
  healthrules test rules/b2b.test.yaml --run 'renewal'
  healthrules test rules/ --coverage --fail-under 90
  healthrules test rules/ --junit-xml reports/rules.xml --format json > results.json

For each failing case it prints the case, the account, the as_of and an aligned
expected-versus-actual table (with the evidence of the actions involved), then the
summary line "N passed, N failed". Problems in a test file are reported as
file:line:column.

exit codes: 0 every case passed (and coverage reached --fail-under); 1 a case failed or
could not run, or coverage is below --fail-under; 2 usage error (no such path, no test
file found, bad --run pattern).
"""


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``test`` command."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "test", help="run rule-pack test files (*.test.yaml)",
        description=__doc__, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", metavar="PATH",
                        help="test files, or folders searched for *.test.yaml files and YAML "
                        "files with kind: test")
    parser.add_argument("--run", "-k", dest="select", metavar="REGEX", default=None,
                        help="run only the cases whose name matches this regular expression")
    parser.add_argument("--format", choices=["text", "json"], default="text",
                        help="text (default) or json (the same records as the Python API)")
    parser.add_argument("--junit-xml", dest="junit_xml", metavar="FILE", default=None,
                        help="also write the results as JUnit XML to FILE")
    parser.add_argument("--coverage", action="store_true",
                        help="report the stages, actions, bands and threshold boundaries no "
                        "case reached")
    parser.add_argument("--fail-under", dest="fail_under", type=float, metavar="PCT",
                        default=None, help="fail (exit 1) when coverage is below PCT percent "
                        "(implies --coverage)")
    parser.add_argument("--verbose", "-v", action="store_true",
                        help="list passing and skipped cases too")
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> Any:
    """Run the test files; print the report; return the exit code."""
    from healthrules.cli._args import output_file
    from healthrules.cli._exit import Exit, UsageError
    from healthrules.testing.junit import write_junit_xml
    from healthrules.testing.runner import discover
    from healthrules.testing.runner import run as run_tests

    if args.fail_under is not None and not 0 <= args.fail_under <= 100:
        raise UsageError("--fail-under takes a percentage between 0 and 100")
    if args.select is not None:
        try:
            re.compile(args.select)
        except re.error as exc:
            raise UsageError(f"--run {args.select!r} is not a regular expression: "
                             f"{exc}") from None
    if args.junit_xml:
        output_file(args.junit_xml, "--junit-xml")
    try:
        if not discover(args.paths):
            raise UsageError("no test file (*.test.yaml or kind: test) under "
                             + ", ".join(args.paths))
        report = run_tests(args.paths, select=args.select,
                           coverage=args.coverage or args.fail_under is not None)
    except FileNotFoundError as exc:
        raise UsageError(str(exc)) from None
    if args.junit_xml:
        write_junit_xml(report, args.junit_xml)
    below = False
    if args.fail_under is not None and report.coverage is not None:
        # nothing to cover (no roadmap loaded) measures nothing: it meets no threshold
        below = (report.coverage.counts()[1] == 0
                 or report.coverage.percent() < args.fail_under)
    if args.format == "json":
        records = report.to_records()
        if args.fail_under is not None:
            records["fail_under"] = {"percent": args.fail_under, "met": not below}
        print(json.dumps(records, indent=2, default=str))
    else:
        for warning in (w for f in report.files for w in f.warnings):
            print(str(warning), file=sys.stderr)
        print(report.render(verbose=args.verbose, warnings=False))
        if below and report.coverage is not None:
            print(f"coverage {report.coverage.percent():.1f}% is below --fail-under "
                  f"{args.fail_under:g}%" if report.coverage.counts()[1] else
                  f"coverage: no item to cover (no roadmap was tested), so --fail-under "
                  f"{args.fail_under:g}% is not met", file=sys.stderr)
    return Exit.NOT_CLEAN if (not report.ok or below) else Exit.OK
