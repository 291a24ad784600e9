"""The user docs stay true: the tutorial's files, commands and snippets run and print what the
page shows, docs/cli.md carries every command's current ``--help`` and the exit-code table,
and docs/index.md links every page.

Refresh the generated parts after changing a command or the tutorial's data with::

    HEALTHRULES_UPDATE_DOCS=1 pytest tests/test_docs.py

(it rewrites the ``--help`` blocks of docs/cli.md and the output blocks of docs/tutorial.md
with what the code prints now; review the diff).

docs/time.md and docs/report.md run the same way (from a folder whose ``rules`` is the
repository's).

The tutorial's markup (HTML comments, invisible on the rendered page):

- ``<!-- file: NAME -->`` before a fenced block: write the block to NAME (in a temporary
  folder where the whole tutorial runs);
- ``<!-- part of: NAME -->`` before a block: the block's lines must appear, in order and with
  one common indentation, in the next version of NAME the page writes;
- a ``console`` block: each ``$ healthrules ...`` line runs the CLI there; the lines up to the
  next ``$`` are its expected output; ``# exit code N`` at the end of the command line is the
  expected exit code (0 otherwise);
- a ``python`` block runs in one namespace shared by the whole page; a ``text`` block right
  after it, marked ``<!-- output -->``, is its expected standard output.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from healthrules.cli import build_parser, main
from healthrules.cli._exit import EXIT_CODES_HELP, Exit

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
UPDATE = os.environ.get("HEALTHRULES_UPDATE_DOCS") == "1"
HELP_COLUMNS = "100"

FENCE = re.compile(r"^(\s*)```(\S*)\s*$")
MARKER = re.compile(r"^<!--\s*(.*?)\s*-->$")


@dataclass
class Block:
    """A fenced block: its info string, the marker comment before it, its content lines."""

    info: str
    marker: str | None
    start: int  # index of the first content line
    end: int  # index of the closing fence
    lines: list[str]

    @property
    def text(self) -> str:
        return "".join(line + "\n" for line in self.lines)


def fenced_blocks(lines: list[str]) -> list[Block]:
    out: list[Block] = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, info = m.group(1), m.group(2)
        j = i + 1
        while j < len(lines) and lines[j].strip() != "```":
            j += 1
        k = i - 1
        while k >= 0 and not lines[k].strip():
            k -= 1
        mm = MARKER.match(lines[k].strip()) if k >= 0 else None
        body = [line[len(indent):] if line.startswith(indent) else line for line in lines[i + 1:j]]
        out.append(Block(info, mm.group(1) if mm else None, i + 1, j, body))
        i = j + 1
    return out


def contains_lines(haystack: str, needle: str) -> bool:
    """Whether ``needle``'s lines appear consecutively in ``haystack`` with one indentation."""
    want = textwrap.dedent(needle).rstrip("\n").split("\n")
    have = haystack.split("\n")
    for start, line in enumerate(have):
        indent = line[: len(line) - len(line.lstrip())]
        window = have[start:start + len(want)]
        if len(window) == len(want) and all(
            (w == h == "") or (indent + w).rstrip() == h.rstrip() for w, h in zip(want, window,
                                                                               strict=True)
        ):
            return True
    return False


def run_cli(argv: list[str]) -> tuple[int, str]:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, buf.getvalue()


def run_console(block: Block) -> tuple[list[str], list[str]]:
    """Run the commands of a console block; return (actual lines, problems)."""
    actual: list[str] = []
    problems: list[str] = []
    commands: list[tuple[str, list[str]]] = []
    for line in block.lines:
        if line.startswith("$ "):
            commands.append((line, []))
        elif commands:
            commands[-1][1].append(line)
        else:
            problems.append(f"output before any command: {line!r}")
    for line, expected in commands:
        command, _, comment = line[2:].partition("#")
        m = re.search(r"exit code (\d+)", comment)
        want_code = int(m.group(1)) if m else 0
        argv = shlex.split(command)
        if not argv or argv[0] != "healthrules":
            problems.append(f"only healthrules commands run in console blocks: {line}")
            continue
        code, out = run_cli(argv[1:])
        got = out.rstrip("\n").split("\n") if out.strip() else []
        actual.append(line)
        actual += got
        if code != want_code:
            problems.append(f"{command.strip()}: exit code {code}, the page says {want_code}\n"
                            + out)
        if got != [x.rstrip() for x in expected] and not UPDATE:
            problems.append(f"{command.strip()}: output differs\n--- page\n"
                            + "\n".join(expected) + "\n--- actual\n" + "\n".join(got))
    return actual, problems


def run_page(page: Path, workdir: Path) -> tuple[list[str], list[str]]:
    """Run every runnable block of a page in ``workdir``; return (updated lines, problems)."""
    lines = page.read_text(encoding="utf-8").split("\n")
    blocks = fenced_blocks(lines)
    namespace: dict[str, Any] = {"__name__": "__tutorial__"}
    pending: list[tuple[str, str, int]] = []
    problems: list[str] = []
    replacements: list[tuple[Block, list[str]]] = []
    for n, b in enumerate(blocks):
        where = f"{page.name}:{b.start}"
        marker = b.marker or ""
        if marker.startswith("file:"):
            name = marker.split(":", 1)[1].strip()
            target = workdir / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(b.text, encoding="utf-8")
            for _name, part, line in [p for p in pending if p[0] == name]:
                if not contains_lines(b.text, part):
                    problems.append(f"{page.name}:{line}: this part of {name} is not in the "
                                    f"version written at line {b.start}")
            pending = [p for p in pending if p[0] != name]
        elif marker.startswith("part of:"):
            pending.append((marker.split(":", 1)[1].strip(), b.text, b.start))
        elif b.info == "console":
            actual, errs = run_console(b)
            problems += [f"{where}: {e}" for e in errs]
            replacements.append((b, actual))
        elif b.info == "python" and marker != "no run":
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                try:
                    exec(compile(b.text, where, "exec"), namespace)
                except Exception as exc:
                    problems.append(f"{where}: {type(exc).__name__}: {exc}")
                    continue
            nxt = blocks[n + 1] if n + 1 < len(blocks) else None
            if nxt is not None and nxt.marker == "output":
                got = out.getvalue().rstrip("\n").split("\n")
                replacements.append((nxt, got))
                if got != [x.rstrip() for x in nxt.lines] and not UPDATE:
                    problems.append(f"{where}: output differs\n--- page\n" + nxt.text
                                    + "--- actual\n" + "\n".join(got))
            elif out.getvalue() and not UPDATE:
                problems.append(f"{where}: prints but has no <!-- output --> block after it")
    problems += [f"{page.name}:{line}: no later version of {name} to check this part against"
                 for name, _, line in pending]
    for b, new in sorted(replacements, key=lambda r: -r[0].start):
        indent = FENCE.match(lines[b.start - 1]).group(1)  # type: ignore[union-attr]
        lines[b.start:b.end] = [(indent + x) if x else x for x in new]
    return lines, problems


@pytest.fixture
def plain_polars() -> Any:
    """Default polars formatting, whatever the environment says."""
    with pl.Config() as cfg:
        cfg.restore_defaults()
        yield


# --------------------------------------------------------------------------- tutorial


def check_page(name: str, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run a runnable page in ``workdir`` (rewriting its outputs when updating)."""
    monkeypatch.chdir(workdir)
    monkeypatch.setenv("COLUMNS", HELP_COLUMNS)
    page = DOCS / name
    lines, problems = run_page(page, workdir)
    if UPDATE:
        page.write_text("\n".join(lines), encoding="utf-8")
    assert not problems, "\n\n".join(problems)


def test_tutorial_runs_and_prints_what_it_shows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                plain_polars: Any) -> None:
    check_page("tutorial.md", tmp_path, monkeypatch)


def test_time_page_runs_and_prints_what_it_shows(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 plain_polars: Any) -> None:
    # the page runs from the repository root: its rule files are the repo's, its data new
    (tmp_path / "rules").symlink_to(ROOT / "rules", target_is_directory=True)
    check_page("time.md", tmp_path, monkeypatch)
    assert (tmp_path / "changes.ndjson").exists()


def test_cli_page_runs_and_prints_what_it_shows(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch,
                                                plain_polars: Any) -> None:
    # the runnable part of docs/cli.md (several event sources) runs next to the repo's rules
    (tmp_path / "rules").symlink_to(ROOT / "rules", target_is_directory=True)
    check_page("cli.md", tmp_path, monkeypatch)
    assert (tmp_path / "out" / "manifest.json").exists()
    assert not (tmp_path / "out2").exists()


def test_sources_page_runs_and_prints_what_it_shows(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    plain_polars: Any) -> None:
    # DuckDB files, relations, Arrow inputs and the CLI's --duckdb, from the repository root
    (tmp_path / "rules").symlink_to(ROOT / "rules", target_is_directory=True)
    check_page("sources.md", tmp_path, monkeypatch)
    assert (tmp_path / "warehouse.duckdb").exists() and (tmp_path / "out").is_dir()


def test_report_page_runs_and_prints_what_it_shows(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  plain_polars: Any) -> None:
    # like time.md: from a folder whose rules are the repository's
    (tmp_path / "rules").symlink_to(ROOT / "rules", target_is_directory=True)
    check_page("report.md", tmp_path, monkeypatch)
    for name in ("report.html", "report-trends.html", "report-job.html", "weekly.html"):
        assert (tmp_path / name).read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_tutorial_follows_the_four_steps() -> None:
    text = (DOCS / "tutorial.md").read_text(encoding="utf-8")
    heads = [h for h in re.findall(r"^## (.+)$", text, re.M)]
    steps = [h for h in heads if re.match(r"Step \d", h)]
    assert [s.split(":")[1].split()[-1].lower() for s in steps[:4]] == [
        "goal", "stages", "actions", "indicators"]


def test_contains_lines() -> None:
    assert contains_lines("a:\n  b: 1\n  c:\n    - d\n", "c:\n  - d\n")
    assert not contains_lines("a:\n  b: 1\n  c:\n    - d\n", "b: 1\n  - d\n")


# --------------------------------------------------------------------------- cli.md


def command_parsers() -> dict[str, Any]:
    parser = build_parser()
    sub: Any = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return dict(sub.choices)


def help_text(argv: list[str]) -> str:
    code, out = run_cli([*argv, "--help"])
    assert code == 0
    return out.rstrip("\n")


def test_cli_md_has_the_current_help_of_every_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", HELP_COLUMNS)
    page = DOCS / "cli.md"
    lines = page.read_text(encoding="utf-8").split("\n")
    blocks = {b.marker: b for b in fenced_blocks(lines) if b.marker}
    wanted: dict[str, list[str]] = {"help: healthrules": []}
    wanted |= {f"help: {name}": [name] for name in command_parsers()}
    problems = []
    for marker, argv in sorted(wanted.items(), key=lambda kv: -(blocks[kv[0]].start
                                                              if kv[0] in blocks else 0)):
        if marker not in blocks:
            problems.append(f"docs/cli.md has no <!-- {marker} --> block")
            continue
        b = blocks[marker]
        actual = help_text(argv)
        if b.text.rstrip("\n") != actual:
            if UPDATE:
                lines[b.start:b.end] = actual.split("\n")
            else:
                problems.append(f"the {marker!r} block of docs/cli.md is out of date")
    if UPDATE:
        page.write_text("\n".join(lines), encoding="utf-8")
    extra = sorted(set(blocks) - set(wanted) - {m for m in blocks if not m.startswith("help:")})
    assert not extra, f"docs/cli.md documents commands that do not exist: {extra}"
    assert not problems, "\n".join(problems) + (
        "\nrun: HEALTHRULES_UPDATE_DOCS=1 pytest tests/test_docs.py")


def test_cli_md_lists_every_command_and_exit_code() -> None:
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    for name in command_parsers():
        assert re.search(rf"^## `healthrules {name}`", text, re.M), name
        assert f"| [`{name}`](#healthrules-{name}) |" in text, name
    table = dict(re.findall(r"^\| (\d) \| `(\w+)` \|", text, re.M))
    assert table == {str(int(e)): e.name for e in Exit}
    blocks = [b for b in fenced_blocks(text.split("\n")) if b.marker == "exit codes"]
    assert len(blocks) == 1 and blocks[0].text == EXIT_CODES_HELP


# --------------------------------------------------------------------------- index.md


PAGES = ["concepts", "tutorial", "format", "expressions", "semantics", "cli", "python",
         "testing", "lint", "time", "scale", "performance", "editor", "report", "sources"]


def test_index_links_every_page_with_one_line() -> None:
    text = (DOCS / "index.md").read_text(encoding="utf-8")
    linked = re.findall(r"^- \[[^\]]+\]\(([\w.-]+\.(?:md|ipynb))\): \S.*$", text, re.M)
    for page in PAGES:
        assert f"{page}.md" in linked, page
    assert "walkthrough.ipynb" in linked
    on_disk = {p.name for p in DOCS.iterdir() if p.suffix in (".md", ".ipynb")} - {"index.md"}
    assert on_disk <= set(linked), f"pages not linked from index.md: {on_disk - set(linked)}"


def test_links_between_docs_point_at_pages_that_exist() -> None:
    missing = []
    for page in sorted(DOCS.glob("*.md")):
        for target in re.findall(r"\]\(([\w.-]+\.(?:md|ipynb))(?:#[\w-]+)?\)",
                                 page.read_text(encoding="utf-8")):
            if not (DOCS / target).exists():
                missing.append(f"{page.name} -> {target}")
    planned = {f"{p}.md" for p in PAGES}
    really_missing = [m for m in missing if m.split(" -> ")[1] not in planned]
    assert not really_missing, really_missing


# --------------------------------------------------------------------------- operations.md


def test_operations_recipes_run(tmp_path: Path) -> None:
    """The job script, the cron line, the systemd unit, the Airflow task and the recovery
    commands of docs/operations.md, run as written (with /srv/healthrules moved to a
    temporary folder and ``healthrules`` on the PATH)."""
    import ast
    import configparser
    import fcntl
    import shutil
    import subprocess
    import sys

    from test_cli_contract import workspace

    blocks = {b.marker: b for b in fenced_blocks((DOCS / "operations.md").read_text(
        encoding="utf-8").split("\n")) if b.marker}
    (tmp_path / "inputs").mkdir()
    data = workspace(tmp_path / "inputs")
    site = tmp_path / "srv"
    for sub in ("rules", "data", "state"):
        (site / sub).mkdir(parents=True)
    shutil.copy(data / "roadmap.yaml", site / "rules" / "roadmap.yaml")
    for name in ("events.parquet", "accounts.parquet"):
        shutil.copy(data / name, site / "data" / name)
    script = site / "daily.sh"
    script.write_text(blocks["script: daily.sh"].text)
    script.chmod(0o755)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "healthrules"
    shim.write_text(f'#!/bin/sh\nPYTHONPATH={ROOT / "src"} exec {sys.executable} '
                    '-m healthrules "$@"\n')
    shim.chmod(0o755)

    def sh(command: str | list[str], as_of: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "AS_OF": as_of}
        argv = ["bash", "-c", command] if isinstance(command, str) else command
        return subprocess.run(argv, cwd=site, env=env, text=True, capture_output=True,
                              timeout=300)

    def here(text: str) -> str:
        return text.replace("/srv/healthrules", str(site))

    # cron: five time fields, then the shell command
    fields = blocks["cron"].lines[0].split(None, 5)
    assert len(fields) == 6 and fields[:5] == ["15", "6", "*", "*", "*"]
    done = sh(here(fields[5]), "2026-03-03")
    log = (site / "daily.log").read_text()
    assert done.returncode == 0, log
    assert "as of 2026-03-03:" in log and "backed up" in log
    assert (site / "out" / "changes-2026-03-03.ndjson").exists()
    assert (site / "backup" / "state-2026-03-03.db").exists()

    # another run holds the lock: exit 75, nothing done
    with open(site / "run.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        assert sh(here(fields[5]), "2026-03-04").returncode == 75
        fcntl.flock(lock, fcntl.LOCK_UN)

    # systemd: the service's command, from its working directory; a persistent timer
    service = configparser.ConfigParser()
    service.read_string(blocks["systemd: healthrules-daily.service"].text)
    assert service["Service"]["WorkingDirectory"] == "/srv/healthrules"
    assert service["Service"]["Type"] == "oneshot"
    done = sh(shlex.split(service["Service"]["ExecStart"]), "2026-03-04")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("as of 2026-03-04:")
    timer = configparser.ConfigParser()
    timer.read_string(blocks["systemd: healthrules-daily.timer"].text)
    assert timer["Timer"]["OnCalendar"] == "*-*-* 06:15:00"
    assert timer["Timer"]["Persistent"] == "true"

    # Airflow: the DAG file parses, allows one run at a time, and its command works
    tree = ast.parse(blocks["airflow: healthrules_daily.py"].text)
    calls = {c.func.id: c for c in ast.walk(tree)
             if isinstance(c, ast.Call) and isinstance(c.func, ast.Name)}
    dag = {k.arg: ast.literal_eval(k.value) for k in calls["DAG"].keywords
           if k.arg in ("max_active_runs", "catchup", "schedule")}
    assert dag == {"max_active_runs": 1, "catchup": False, "schedule": "15 6 * * *"}
    task = {k.arg: ast.literal_eval(k.value) for k in calls["BashOperator"].keywords
            if k.arg in ("bash_command", "env")}
    assert task["env"] == {"AS_OF": "{{ ds }}"}
    done = sh(here(task["bash_command"]), "2026-03-04")  # the same day again: idempotent
    assert done.returncode == 0, done.stderr
    assert "replaced the run(s) of 2026-03-04" in done.stdout

    # stale data is refused with exit code 1 and the store is left alone
    done = sh("./daily.sh", "2026-03-09")
    assert done.returncode == 1 and "the limit is 2d" in done.stderr

    # back up, restore and replay, as the page shows
    shell = [line[2:] for b in fenced_blocks((DOCS / "operations.md").read_text(
        encoding="utf-8").split("\n")) if b.marker == "shell"
             for line in b.lines if line.startswith("$ ")]
    assert len(shell) == 3
    (site / "state" / "state.db").write_bytes(b"")  # a store lost to a fault
    assert sh("healthrules run rules/roadmap.yaml --state state/state.db --events "
              "data/events.parquet --accounts data/accounts.parquet --as-of 2026-03-04",
              "").returncode == 1
    assert sh(shell[0], "").returncode == 1  # store check says it is damaged
    done = sh(shell[1], "")
    assert done.returncode == 0, done.stderr
    assert sh(shell[0], "").returncode == 0
    (site / "out" / "changes-2026-03-04.ndjson").unlink()
    done = sh(shell[2], "")
    assert done.returncode == 0, done.stderr
    assert (site / "out" / "changes-2026-03-04.ndjson").exists()
