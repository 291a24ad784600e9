"""The ``healthrules`` command line: a thin argparse layer over the library.

Each command lives in its own module (``healthrules.cli.<name>``) exposing
``register(subparsers)`` (which sets ``run`` as the parser default) and ``run(args) -> int``.
:data:`COMMANDS` lists them in the order ``--help`` shows them; modules are imported only
when the parser is built, and optional extras inside them only when the command runs.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback
from collections.abc import Sequence

from healthrules.cli._exit import EXIT_CODES_HELP, Exit, UsageError

__all__ = ["COMMANDS", "build_parser", "main"]

COMMANDS: list[str] = [
    "demo",
    "validate",
    "evaluate",
    "explain",
    "test",
    "lint",
    "schema",
    "run",
    "backtest",
]
"""Command modules under ``healthrules.cli``, in --help order (missing ones are skipped)."""


class _Parser(argparse.ArgumentParser):
    """argparse with exit code 2 and a one-line hint on usage errors."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}\n  hint: {self.prog} --help", file=sys.stderr)
        raise SystemExit(Exit.USAGE)


def build_parser() -> argparse.ArgumentParser:
    """The full parser, with every available command registered."""
    from healthrules import __version__

    parser = _Parser(
        prog="healthrules",
        description="healthrules: declarative customer-health-score rules. Validate, evaluate, "
        "explain, test and lint success roadmaps written in YAML.",
        epilog="quick start:\n  healthrules demo\n  healthrules validate rules/\n\n"
        + EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"healthrules {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show the traceback of internal errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"healthrules.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"healthrules.cli.{name}":
                continue
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code (see ``healthrules --help``)."""
    from healthrules.errors import HealthRulesError

    parser = build_parser()
    args = parser.parse_args(list(argv) if argv is not None else None)
    if not getattr(args, "run", None):
        parser.print_help()
        return int(Exit.USAGE)
    try:
        return int(args.run(args))
    except UsageError as exc:
        print(f"healthrules {args.command}: error: {exc}", file=sys.stderr)
        if exc.hint:
            print(f"  hint: {exc.hint}", file=sys.stderr)
        return int(Exit.USAGE)
    except HealthRulesError as exc:
        print(str(exc))
        return int(Exit.NOT_CLEAN)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return int(Exit.OK)
    except Exception as exc:  # a bug: say so, one line unless --debug
        if args.debug:
            traceback.print_exc()
        else:
            print(f"internal error (a bug in healthrules): {type(exc).__name__}: {exc}\n"
                  "  hint: rerun with --debug to see the traceback, and report it",
                  file=sys.stderr)
        return int(Exit.INTERNAL)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
