"""Finding and opening export files on disk: CSV, CSV.gz and Parquet, read as text."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from finops.errors import BadInputError

SUFFIXES = (".csv", ".csv.gz", ".parquet", ".snappy.parquet", ".gz.parquet")


def is_export_file(path: Path, suffixes: tuple[str, ...] = SUFFIXES) -> bool:
    name = path.name.lower()
    return not name.startswith((".", "_")) and name.endswith(suffixes)


def find_files(path: Path, *, what: str, suffixes: tuple[str, ...] = SUFFIXES,
               kinds: str = "CSV, CSV.gz or Parquet") -> list[Path]:
    """The export files at ``path`` (a file, or every matching file below a folder)."""
    if not path.exists():
        raise BadInputError(f"{path}: no such file or folder", hint=f"Give the path of a {what}.")
    listed = ", ".join(suffixes)
    if path.is_file():
        if not is_export_file(path, suffixes):
            raise BadInputError(
                f"{path}: not a {kinds} file",
                hint=f"Give the path of a {what} ({listed}), or a folder of them.",
            )
        return [path]
    files = sorted(p for p in path.rglob("*") if p.is_file() and is_export_file(p, suffixes))
    if not files:
        raise BadInputError(
            f"{path}: no {listed} files in this folder",
            hint=f"Point --path at a {what} or a folder that holds them.",
        )
    return files


def is_parquet(path: Path) -> bool:
    return path.name.lower().endswith(".parquet")


def columns_of(path: Path) -> list[str]:
    """The header of a file, without reading its rows."""
    magic = {".gz": (b"\x1f\x8b", "gzip"), ".parquet": (b"PAR1", "Parquet")}
    for suffix, (expected, kind) in magic.items():
        if path.name.lower().endswith(suffix):
            with path.open("rb") as fh:
                if fh.read(len(expected)) != expected:
                    raise BadInputError(
                        f"{path}: cannot be read: the name says {kind} but the content is not",
                        hint="Download the export again, or rename it to what it really is.",
                    )
    try:
        if is_parquet(path):
            return list(pq.read_schema(path).names)
        return pl.scan_csv(path, infer_schema=False, n_rows=0).collect_schema().names()
    except (OSError, pl.exceptions.PolarsError, ValueError) as exc:
        raise BadInputError(
            f"{path}: cannot be read: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
            hint="Check that the file is a complete CSV or Parquet export (gzip for .csv.gz).",
        ) from None


def scan_text(path: Path, *, null_values: list[str] | None = None) -> pl.LazyFrame:
    """Every column as text (identifiers are never guessed as numbers), with a row number.

    Column names are stripped of spaces and a UTF-8 byte-order mark.
    """
    if is_parquet(path):
        lf = pl.scan_parquet(path)
        schema = lf.collect_schema()
        # Scalars become text and go through the same parsers as CSV; nested columns
        # (tag maps) keep their shape for the tag parser.
        lf = lf.select(
            pl.col(n) if dtype.is_nested() else pl.col(n).cast(pl.String)
            for n, dtype in schema.items()
        )
    else:
        lf = pl.scan_csv(
            path, infer_schema=False, null_values=null_values,
            encoding="utf8-lossy", truncate_ragged_lines=False,
        )
    names = lf.collect_schema().names()
    clean = {n: n.strip().lstrip("\ufeff") for n in names}
    lf = lf.rename({k: v for k, v in clean.items() if k != v})
    return lf.with_row_index("x_SourceRow", offset=1).with_columns(pl.col("x_SourceRow").cast(pl.Int64))
