"""Write evaluation frames to a folder atomically: Parquet (default), CSV or NDJSON."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import polars as pl

__all__ = ["FORMATS", "atomic_write", "atomic_write_text", "umask", "write_frames"]

Format = Literal["parquet", "csv", "ndjson"]
FORMATS: tuple[Format, ...] = ("parquet", "csv", "ndjson")


def umask() -> int:
    """The process umask (read without changing it where /proc tells it)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore (a tiny race, only off Linux)
    os.umask(mask)
    return mask


def _temporary(path: Path, write: Any) -> Path:
    """Call ``write(tmp_path)`` on a temporary file next to ``path``, flushed to disk, with
    the permissions a plain ``open`` would give it; return it (removed if ``write`` fails)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~umask())
    finally:
        os.close(fd)
    try:
        write(Path(tmp))
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def atomic_write(path: Path, write: Any) -> None:
    """Call ``write(tmp_path)`` then move the file into place in one rename.

    The temporary file lives in the same folder, so the rename is atomic: readers see the old
    file or the new one, never half of one. The file gets the permissions a plain ``open``
    would give it (``0666`` minus the umask), not the private ``0600`` of a temporary file,
    and is flushed to disk before the rename. On failure the temporary file is removed.
    """
    tmp = _temporary(path, write)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically, like :func:`atomic_write`."""
    atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))


def _flatten_for_csv(frame: pl.DataFrame) -> pl.DataFrame:
    nested = [c for c, t in frame.schema.items() if isinstance(t, (pl.List, pl.Struct))]
    if not nested:
        return frame
    return frame.with_columns(
        pl.col(c).map_batches(_json_column, return_dtype=pl.String) for c in nested
    )


def _json_column(s: pl.Series) -> pl.Series:
    # one JSON text per value; runs on output only, never in evaluation
    return pl.Series(s.name, [json.dumps(v, default=str) for v in s.to_list()], dtype=pl.String)


def write_frames(
    frames: Mapping[str, pl.DataFrame],
    out_dir: str | Path,
    *,
    format: Format = "parquet",
    manifest: Mapping[str, Any] | None = None,
) -> list[Path]:
    """Write each frame to ``out_dir/<name>.<format>`` atomically, then ``manifest.json``.

    Every file is written to a temporary file first, then each is replaced in one rename;
    the previous ``manifest.json`` is removed before the first rename and the new one
    (names, row counts, and the extra ``manifest`` entries) is written last, so a reader that
    finds it knows the set is complete. A failure before the renames (a full disk, a value
    NDJSON cannot hold) leaves the previous set, manifest included, as it was. Nested columns
    (evidence, tasks) are JSON text in CSV.

    Raises
    ------
    EvaluationError
        With NDJSON, if a float column holds inf, -inf or NaN (JSON has none of them).

    Returns
    -------
    list[Path]
        The files written, manifest last.
    """
    if format not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {format!r}")
    out = Path(out_dir)
    if format == "ndjson":
        _refuse_what_json_cannot_hold(frames, out)
    # every file is written to a temporary file first: a failure there (a full disk, a value
    # a format cannot hold) leaves the previous set and its manifest as they were
    staged: list[tuple[Path, Path]] = []
    try:
        for name, frame in frames.items():
            path = out / f"{name}.{format}"
            if format == "parquet":
                staged.append((_temporary(path, frame.write_parquet), path))
            elif format == "csv":
                staged.append((_temporary(path, _flatten_for_csv(frame).write_csv), path))
            else:
                staged.append((_temporary(path, frame.write_ndjson), path))
    except BaseException:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        raise
    # the old manifest goes first: while the files are replaced, no manifest vouches for a
    # set that is half old and half new
    (out / "manifest.json").unlink(missing_ok=True)
    written: list[Path] = []
    try:
        for tmp, path in staged:
            os.replace(tmp, path)
            written.append(path)
    finally:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
    info = {
        "format": format,
        "files": {name: {"file": f"{name}.{format}", "rows": frame.height}
                  for name, frame in frames.items()},
        **(manifest or {}),
    }
    path = out / "manifest.json"
    atomic_write_text(path, json.dumps(info, indent=2, default=str) + "\n")
    written.append(path)
    return written


def _refuse_what_json_cannot_hold(frames: Mapping[str, pl.DataFrame], out: Path) -> None:
    """JSON has no infinity and no NaN (polars writes them as null, which means "no value"):
    a frame holding one is refused, naming the file, the column and a row, before anything
    is written."""
    from healthrules.errors import Code, EvaluationError, Issue, Location

    for name, frame in frames.items():
        for column, dtype in frame.schema.items():
            if not dtype.is_float():
                continue
            bad = frame.with_row_index("_row").filter(
                pl.col(column).is_infinite() | pl.col(column).is_nan())
            if bad.height:
                first = bad.row(0, named=True)
                where = (f" (account {first['account_id']!r})" if "account_id" in frame.columns
                         else f" (row {first['_row']})")
                raise EvaluationError([Issue(
                    code=Code.VALUES_OUT_OF_RANGE.value,
                    message=(f"{name}: column {column!r} holds {first[column]} in "
                             f"{bad.height:,} row(s){where}, which NDJSON cannot hold "
                             "(JSON has no infinity or NaN; it would be written as null)"),
                    hint="write Parquet or CSV (format='parquet', --format parquet), "
                         "which keep it",
                    location=Location(file=str(out / f"{name}.ndjson")))])
