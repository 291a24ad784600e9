"""``healthrules lint``: report what is valid but probably wrong in roadmap files."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, NoReturn

__all__ = ["register", "run"]

EPILOG = """\
examples:
  healthrules lint rules/                        every roadmap and pack below rules/
  healthrules lint rules/b2b.yaml --strict       warnings fail too
  healthrules lint rules/ --select actions,HR103 --format json
  healthrules lint rules/ --disable HR504,actions.challenge_low_priority
  healthrules lint --list                        every check id, name and severity

Findings print as file:line:col: severity: message (check-id). Check ids (HR201), names
(indicators.unused), families (indicators) and `all` are accepted by --select and
--disable. In a roadmap, switch checks off with `lint: {disable: [HR201]}` or a comment
`# healthrules: disable=HR201` on a node's line or the line above. See docs/lint.md.

exit codes: 0 no error (warnings and infos do not fail, unless --strict); 1 an error
finding, a warning with --strict, or a file that does not load (its load errors are
printed); 2 usage error (unknown option or check id, no such path).
"""


def _spellings(values: list[str] | None) -> frozenset[str] | None:
    if values is None:
        return None
    return frozenset(t for v in values for t in v.replace(" ", ",").split(",") if t)


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``lint`` command."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "lint", help="find likely mistakes in roadmaps (unreachable stages, dead actions ...)",
        description=__doc__, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="*", metavar="PATH",
                        help="roadmap or pack files, or folders searched for *.yaml / *.yml")
    parser.add_argument("--strict", action="store_true",
                        help="exit 1 on warnings too (infos never fail)")
    parser.add_argument("--format", choices=["text", "json"], default="text",
                        help="text (default) or json (the records of the Python API)")
    parser.add_argument("--select", action="append", metavar="ID,...", default=None,
                        help="run only these checks (ids, names, families or all)")
    parser.add_argument("--disable", action="append", metavar="ID,...", default=None,
                        help="switch these checks off (ids, names, families or all)")
    parser.add_argument("--max-scored-indicators", dest="max_scored", type=int, metavar="N",
                        default=None, help="the most indicators one score may weigh before "
                        "scores.too_many_indicators (HR401) warns (default 7)")
    parser.add_argument("--list", action="store_true", dest="list_checks",
                        help="list every check (id, name, severity, status, summary) and exit")
    parser.set_defaults(run=run)
    return parser


def _usage(message: str, hint: str | None = None) -> NoReturn:
    from healthrules.cli._exit import UsageError

    raise UsageError(message, hint)


def _list(fmt: str) -> int:
    from healthrules.cli._exit import Exit
    from healthrules.lint import REGISTRY, Status, all_checks

    checks = {c.code: c for c in all_checks()}
    rows: list[dict[str, str]] = []
    for entry in REGISTRY:
        check = checks.get(entry.code)
        rows.append({
            "code": entry.code,
            "name": entry.name,
            "severity": check.severity.value if check is not None else "-",
            "status": entry.status.value,
            "summary": (check.summary() if check is not None else entry.note).replace("``", "`"),
        })
    if fmt == "json":
        print(json.dumps(rows, indent=2))
        return int(Exit.OK)
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        removed = " (removed)" if r["status"] == Status.REMOVED.value else ""
        print(f"{r['code']}  {r['name']:<{width}}  {r['severity']:<7}  {r['summary']}{removed}")
    return int(Exit.OK)


def run(args: argparse.Namespace) -> int:
    """Lint the files; print the findings; return the exit code."""
    from healthrules.cli._exit import Exit
    from healthrules.errors import Severity
    from healthrules.expressions import did_you_mean
    from healthrules.lint import LintConfig, format_finding, lint_paths
    from healthrules.lint.suppression import known_spellings, unknown_tokens

    if args.list_checks:
        return _list(args.format)
    if not args.paths:
        _usage("give at least one PATH (or --list)", "healthrules lint rules/")
    select, disable = _spellings(args.select), _spellings(args.disable) or frozenset()
    if select is not None and not select:  # `--select "$CHECKS"` with nothing in it
        _usage("--select names no check: it would run none and report the files clean",
               "give check ids, names or families (or all), e.g. --select actions,HR103")
    bad = unknown_tokens(sorted((select or frozenset()) | disable))
    if bad:
        guess = did_you_mean(bad[0], known_spellings())
        _usage(f"unknown check {bad[0]!r}",
                      guess or "see `healthrules lint --list` for the check ids")
    if args.max_scored is not None and args.max_scored < 1:
        _usage("--max-scored-indicators takes a whole number of at least 1")
    missing = [p for p in args.paths if not Path(p).exists()]
    if missing:
        _usage(f"no such file or folder: {missing[0]}")
    config = LintConfig(select=select, disable=disable) if args.max_scored is None else (
        LintConfig(select=select, disable=disable, max_scored_indicators=args.max_scored))
    reports = lint_paths(args.paths, config=config)
    if not reports:
        _usage(f"no rule file (*.yaml or *.yml) under {', '.join(args.paths)}")
    issues = [i for r in reports for i in r.issues]
    failing = {Severity.ERROR, Severity.WARNING} if args.strict else {Severity.ERROR}
    exit_code = Exit.NOT_CLEAN if any(i.severity in failing for i in issues) else Exit.OK
    if args.format == "json":
        records = []
        for issue in issues:
            record = issue.to_record()
            check = issue.ctx.get("check")
            record["check"] = check if isinstance(check, str) else None
            records.append(record)
        print(json.dumps(records, indent=2))
        return int(exit_code)
    for issue in issues:
        print(format_finding(issue))
    linted = [r for r in reports if not r.skipped and r.kind != "pack"]
    counts = {s: sum(1 for i in issues if i.severity is s) for s in Severity}
    parts = [f"{counts[s]} {s.value}{'s' if counts[s] != 1 else ''}" for s in Severity]
    invalid = sum(1 for r in reports if r.load_issues)
    tail = f" ({invalid} not loaded)" if invalid else ""
    print(f"{', '.join(parts)} in {len(linted)} file{'s' if len(linted) != 1 else ''}{tail}")
    return int(exit_code)
