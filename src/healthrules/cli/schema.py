"""``healthrules schema``: print the JSON Schema of roadmap files, for editors and CI."""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from typing import Any, Final

from pydantic import BaseModel

from healthrules.cli._exit import EXIT_CODES_HELP, Exit
from healthrules.roadmap import IndicatorLibrary, Pack, Roadmap

__all__ = ["JSON_SCHEMA_DIALECT", "register", "roadmap_schema", "run"]

JSON_SCHEMA_DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"

_MODELS: Final[dict[str, type[BaseModel]]] = {
    "roadmap": Roadmap,
    "library": IndicatorLibrary,
    "pack": Pack,
}

EXAMPLES = """\
examples:
  healthrules schema > healthrules.schema.json          # any rule file
  healthrules schema --kind roadmap -o roadmap.schema.json
  healthrules schema --kind library

Point your editor at the file (see docs/editor.md), e.g. with a first line
  # yaml-language-server: $schema=./healthrules.schema.json
"""


def roadmap_schema(kind: str = "any") -> dict[str, Any]:
    """Return the JSON Schema of one kind of rule file, or of any of them.

    Parameters
    ----------
    kind
        ``roadmap``, ``library``, ``pack``, or ``any`` (a schema accepting each of the three).

    Returns
    -------
    dict
        A JSON Schema (draft 2020-12) with ``$schema`` and ``title``.
    """
    if kind == "any":
        defs: dict[str, Any] = {}
        tops: dict[str, Any] = {}
        for model in _MODELS.values():
            schema = _model_schema(model)
            defs.update(schema.pop("$defs", {}))
            tops[model.__name__] = schema
        defs.update(tops)  # the cleaned top-level schemas win over nested copies
        refs = [{"$ref": f"#/$defs/{name}"} for name in tops]
        return {
            "$schema": JSON_SCHEMA_DIALECT,
            "title": "healthrules rule file (roadmap, indicator library or pack)",
            "anyOf": refs,
            "$defs": dict(sorted(defs.items())),
        }
    schema = _model_schema(_MODELS[kind])
    title = {"roadmap": "healthrules roadmap", "library": "healthrules indicator library",
             "pack": "healthrules pack"}[kind]
    return {"$schema": JSON_SCHEMA_DIALECT, **schema, "title": title}


def _model_schema(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema(mode="validation")
    props = schema.get("properties", {})
    for name, info in model.model_fields.items():
        if info.exclude:  # set by the loader, not part of the format
            props.pop(info.alias or name, None)
    return schema


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``schema`` sub-command.

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
        "schema",
        help="print the JSON Schema of rule files",
        description="Print the JSON Schema of rule files, generated from the format's models, "
        "for editor completion and validation (yaml-language-server, VS Code, JetBrains).",
        epilog=textwrap.dedent(EXAMPLES) + "\n" + EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--kind",
        choices=("any", *_MODELS),
        default="any",
        help="which file kind (default: any: a roadmap, an indicator library or a pack)",
    )
    parser.add_argument(
        "--tests", action="store_true",
        help="the schema of rule-pack test files (kind: test) instead; see docs/testing.md",
    )
    parser.add_argument(
        "-o", "--output", metavar="FILE", help="write the schema to FILE instead of stdout"
    )
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Print (or write) the schema.

    Parameters
    ----------
    args
        Parsed arguments: ``kind`` and ``output``.

    Returns
    -------
    int
        0.
    """
    if getattr(args, "tests", False):
        from healthrules.testing.spec import json_schema

        schema = json_schema()
    else:
        schema = roadmap_schema(args.kind)
    text = json.dumps(schema, indent=2, ensure_ascii=False) + "\n"
    if args.output:
        from healthrules.cli._args import output_file
        from healthrules.output import atomic_write_text

        atomic_write_text(output_file(args.output, "--output"), text)
    else:
        sys.stdout.write(text)
    return int(Exit.OK)
