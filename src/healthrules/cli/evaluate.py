"""``healthrules evaluate``: evaluate a roadmap or pack and write the result frames."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from healthrules.cli._exit import Exit

__all__ = ["register", "run"]

EPILOG = """\
examples:
  healthrules evaluate rules/examples/b2b-saas/roadmap.yaml \\
      --events events.parquet --accounts accounts.parquet --as-of 2026-06-30 --out out/
  healthrules evaluate pack.yaml --events data/events/ --accounts accounts.csv \\
      --as-of 2026-06-30 --out out/ --format csv
  healthrules evaluate roadmap.yaml --events data/events/ --partition-column date ...
  healthrules evaluate roadmap.yaml --duckdb warehouse.duckdb --events-table events \\
      --accounts-query "SELECT * FROM crm.accounts" --as-of 2026-06-30 --out out/

--events and --accounts take a .parquet, .arrow (Arrow IPC), .csv or .ndjson file, or a
folder of Parquet files (read as a hive-partitioned dataset); --events-table/--events-query
and --accounts-table/--accounts-query read a table or query of --duckdb FILE or --database URI.
A roadmap with several event sources (data.events: {usage: ..., tickets: ...}) takes
--events NAME=PATH (or --events-table NAME=TABLE, --events-query NAME=SQL) once per source:
  healthrules evaluate rules/examples/b2b-saas-signals/roadmap.yaml \\
      --events usage=usage.parquet --events tickets=tickets.csv \\
      --events surveys=surveys.csv --accounts accounts.parquet --as-of 2026-06-30 --out out/
The frames are written atomically to --out (indicators, stages, scores, actions,
conditions, then manifest.json).
"""


def add_input_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments shared by evaluate and explain."""
    from healthrules.cli._args import as_of
    from healthrules.cli._frames import add_source_arguments

    parser.add_argument("roadmap", help="a roadmap file or a pack file")
    add_source_arguments(parser)
    parser.add_argument("--as-of", required=True, dest="as_of", type=as_of,
                        help="evaluation date YYYY-MM-DD (or an ISO datetime)")
    parser.add_argument("--partition-column", default=None, action="append",
                        metavar="[NAME=]COLUMN",
                        help="date column of a hive-partitioned events folder (e.g. date); "
                        "NAME=COLUMN for one event source")


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``evaluate`` command."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "evaluate", help="evaluate a roadmap and write the result frames",
        description=__doc__, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_input_arguments(parser)
    parser.add_argument("--out", required=True, help="folder to write the frames to")
    parser.add_argument("--format", choices=["parquet", "csv", "ndjson"], default="parquet")
    parser.set_defaults(run=run)
    return parser


def evaluate_from_args(args: argparse.Namespace) -> Any:
    """Load the roadmap, scan the frames and evaluate (shared by evaluate and explain)."""
    import healthrules as hr
    from healthrules.cli._exit import UsageError
    from healthrules.cli._frames import input_frame, partition_columns
    from healthrules.history.daily import provenance

    if not Path(args.roadmap).exists():
        raise UsageError(f"roadmap file not found: {args.roadmap}")
    progress = sys.stderr.isatty()
    if progress:
        print(f"loading {args.roadmap} ...", file=sys.stderr)
    roadmap = hr.load(args.roadmap)
    plan = hr.compile(roadmap)  # CSV and NDJSON files are read with the contract's types
    events = input_frame(args, "events", plan)
    accounts = input_frame(args, "accounts", plan)
    if progress:
        print(f"evaluating as of {args.as_of} ...", file=sys.stderr)
    result = hr.evaluate(roadmap, events, accounts, args.as_of,
                         partition_column=partition_columns(args.partition_column, plan, args))
    args.provenance = provenance(roadmap)
    return result


def write_result(result: Any, out: str | Path, fmt: str, extra: dict[str, Any]) -> list[Path]:
    """Write an evaluation's frames with a manifest that also records ``extra``
    (the rules' provenance), atomically."""
    from healthrules.output import write_frames

    return write_frames(result.frames, out, format=fmt,  # type: ignore[arg-type]
                        manifest={"as_of": result.as_of.isoformat(), "roadmap": result.plan.id,
                                  "diagnostics": dict(result.diagnostics), **extra})


def run(args: argparse.Namespace) -> Exit:
    """Evaluate and write; print a short summary."""
    from healthrules.cli._args import output_dir

    output_dir(args.out, "--out")
    result = evaluate_from_args(args)
    files = write_result(result, args.out, args.format, {"rules": args.provenance.to_dict()})
    print(format_summary(result))
    print(f"wrote {len(files)} files to {args.out}")
    return Exit.OK


def format_summary(result: Any) -> str:
    """A few lines: accounts per stage, score bands, actions by kind, dropped rows."""
    s = result.summary()
    lines = [f"as of {s['as_of']}: {s['accounts']} accounts, {s['actions']} actions "
             f"({', '.join(f'{n} {k}' for k, n in s['actions_by_kind'].items()) or 'none'}), "
             f"{s['unknown_conditions']} unknown conditions"]
    tracks = {r for r, _, _ in s["stages"] if r is not None}
    # a pack's tracks may share stage names: name the track then (unrouted: no track)
    stages = ", ".join(f"{r}/{st} {n}" if len(tracks) > 1 and r is not None else f"{st} {n}"
                       for r, st, n in s["stages"])
    lines.append(f"  stages: {stages}")
    bands = ", ".join(f"{b or 'no band'} {n}" for b, n in s["score_bands"])
    lines.append(f"  score bands: {bands}")
    d = s["diagnostics"]
    named = any(":" in k for k in d)  # several sources: each is counted by name

    def dropped(k: str) -> bool:
        source, _, what = k.rpartition(":")
        return bool(source) == named and what.startswith("events_") and what != "events_read"

    ignored = {k: v for k, v in d.items() if dropped(k) and v}
    if ignored or d.get("accounts_unrouted"):
        parts = [f"{k.replace('_', ' ')} {v}" for k, v in ignored.items()]
        if d.get("accounts_unrouted"):
            parts.append(f"accounts unrouted {d['accounts_unrouted']}")
        lines.append("  ignored input: " + ", ".join(parts))
    return "\n".join(lines)
