"""The docs and the README name only files and folders that are in the repository."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# a path of this repository: src/..., tests/..., benchmarks/..., rules/examples/... (other
# rules/ and docs/ paths in the pages are examples of a user's own project or of a command's
# output file)
PATH = re.compile(
    r"(?<![\w./-])((?:src|tests|benchmarks|rules/examples)/[A-Za-z0-9_./-]*[A-Za-z0-9_/])")


def test_every_named_repository_path_exists() -> None:
    missing = []
    for page in PAGES:
        for lineno, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
            for path in PATH.findall(line):
                if "*" in path or "<" in path:
                    continue
                if not (ROOT / path).exists():
                    missing.append(f"{page.relative_to(ROOT)}:{lineno}: {path}")
    assert not missing, "docs name files that are not in the repository:\n" + "\n".join(missing)


def test_no_page_cites_the_design_notes_outside_the_repository() -> None:
    for page in PAGES:
        assert "DOMAIN.md" not in page.read_text(encoding="utf-8"), page
