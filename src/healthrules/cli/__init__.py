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
from typing import NoReturn

from healthrules.cli._exit import EXIT_CODES_HELP, Exit, UsageError

__all__ = ["COMMANDS", "build_parser", "main"]

COMMANDS: list[str] = [
    "demo",
    "validate",
    "evaluate",
    "explain",
    "report",
    "test",
    "lint",
    "schema",
    "run",
    "backtest",
    "store",
]
"""Command modules under ``healthrules.cli``, in --help order (missing ones are skipped)."""


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are usage errors, reported by :func:`main` (exit code 2)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message, hint=f"{self.prog} --help", usage=self.format_usage())


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
    """Run the command line; return the exit code (see ``healthrules --help``).

    This is the one place that maps exceptions to exit codes (:mod:`healthrules.cli._exit`):
    usage errors 2; what healthrules checked and found wrong (a
    :class:`~healthrules.errors.HealthRulesError`) and files that cannot be read or written
    (:class:`OSError`) 1; anything else is a bug, 3. Diagnostics go to standard error.
    """
    from healthrules.errors import HealthRulesError

    words = list(argv) if argv is not None else sys.argv[1:]
    debug = "--debug" in words
    command = "healthrules"
    try:
        parser = build_parser()
        args = parser.parse_args(words)
        debug = bool(args.debug)
        if not getattr(args, "run", None):
            parser.print_help(sys.stderr)
            return int(Exit.USAGE)
        command = f"healthrules {args.command}"
        return int(args.run(args))
    except UsageError as exc:
        if exc.usage:
            sys.stderr.write(exc.usage)
        _error(command, str(exc), exc.hint)
        return int(Exit.USAGE)
    except HealthRulesError as exc:
        print(str(exc), file=sys.stderr)
        return int(Exit.NOT_CLEAN)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return int(Exit.OK)
    except OSError as exc:  # the environment, not healthrules: a file that cannot be used
        where = f": {exc.filename}" if exc.filename else ""
        _error(command, f"{exc.strerror or exc}{where}",
               "check the path, its permissions and the free space")
        return int(Exit.NOT_CLEAN)
    except Exception as exc:  # a bug: say so, one line unless --debug
        if debug:
            traceback.print_exc()
        else:
            print(f"{command}: internal error (a bug in healthrules): "
                  f"{type(exc).__name__}: {exc}\n"
                  "  hint: rerun with --debug to see the traceback, and report it to the "
                  "healthrules maintainers with that traceback", file=sys.stderr)
        return int(Exit.INTERNAL)


def _error(command: str, message: str, hint: str | None) -> None:
    print(f"{command}: error: {message}", file=sys.stderr)
    if hint:
        print(f"  hint: {hint}", file=sys.stderr)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
