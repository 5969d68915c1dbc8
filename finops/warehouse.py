"""The warehouse: hive-partitioned Parquet datasets under FINOPS_HOME, plus ``state.db``.

Each partition is one Parquet file, ``<dataset>/<k>=<v>/.../part-0.parquet``. A partition
is replaced by writing the new file in ``_staging/`` (same file system) and renaming it
over the old one, so a reader sees the old file or the new one, never half of either, and
a process killed mid-write leaves the previous data untouched.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

PART_FILE = "part-0.parquet"
STAGING = "_staging"
# A reader decodes a whole row group at a time: with ~60 wide FOCUS columns, 256k-row
# groups made each pass over a 15M-row period peak at 2.3-2.6 GiB, 64k-row groups at
# 1.3 GiB (with the morsel size in finops/__init__.py), at the same speed.
ROW_GROUP_ROWS = 65_536
_KEY_VALUE = re.compile(r"^[A-Za-z0-9_.\-]+$")


@dataclass(frozen=True)
class PartitionWrite:
    dataset: str
    keys: tuple[tuple[str, str], ...]
    path: Path
    rows: int
    checksum: str | None  # sha256 of the file, when asked for


def _check_value(key: str, value: str) -> str:
    # Partition values become path segments: refuse anything that could climb the tree.
    if not _KEY_VALUE.match(value) or value in {".", ".."}:
        raise ValueError(f"partition value {key}={value!r} must match {_KEY_VALUE.pattern}")
    return value


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Warehouse:
    def __init__(self, home: Path) -> None:
        self.home = Path(home)

    # ---- layout -------------------------------------------------------------------
    def dataset_dir(self, dataset: str) -> Path:
        return self.home / dataset

    def partition_dir(self, dataset: str, keys: Mapping[str, str]) -> Path:
        path = self.dataset_dir(dataset)
        for key, value in keys.items():
            path = path / f"{key}={_check_value(key, value)}"
        return path

    def staging_dir(self, run_id: str) -> Path:
        path = self.home / STAGING / run_id
        path.mkdir(parents=True, exist_ok=True)
        return path

    def drop_staging(self, run_id: str) -> None:
        shutil.rmtree(self.home / STAGING / run_id, ignore_errors=True)

    def partition_files(self, dataset: str) -> list[tuple[Path, dict[str, str]]]:
        """Every partition file of a dataset with its hive keys, in a stable order."""
        root = self.dataset_dir(dataset)
        if not root.exists():
            return []
        out = []
        for path in sorted(root.rglob(PART_FILE)):
            rel = path.relative_to(root).parts[:-1]
            if any(not part.count("=") for part in rel):
                continue
            out.append((path, dict(part.split("=", 1) for part in rel)))
        return out

    def partitions(self, dataset: str) -> list[dict[str, str]]:
        return [keys for _, keys in self.partition_files(dataset)]

    # ---- reading ------------------------------------------------------------------
    def scan(
        self,
        dataset: str,
        *,
        where: Mapping[str, str | Sequence[str]] | None = None,
        schema: Mapping[str, pl.DataType] | None = None,
        row_index: str | None = None,
    ) -> pl.LazyFrame:
        """A lazy scan of a dataset with its hive keys as string columns.

        Files of one dataset may differ in their ``x_`` columns (each source keeps its
        own); they are combined by name and a column a file lacks reads as null.
        ``where`` prunes partitions by key before any file is opened. ``row_index`` names
        an Int64 column numbering each partition's rows from 0 (so a row keeps its number
        when other partitions change).
        """
        frames = []
        for path, keys in self.partition_files(dataset):
            if where and not all(
                keys.get(k) in ([v] if isinstance(v, str) else v) for k, v in where.items()
            ):
                continue
            lf = pl.scan_parquet(path, hive_partitioning=False)
            if row_index is not None:
                lf = lf.with_row_index(row_index).with_columns(pl.col(row_index).cast(pl.Int64))
            frames.append(lf.with_columns(pl.lit(v, pl.String).alias(k) for k, v in keys.items()))
        if not frames:
            return pl.LazyFrame(schema=dict(schema or {}))
        if len(frames) == 1:
            return frames[0]
        return pl.concat(frames, how="diagonal_relaxed")

    def has_data(self, dataset: str) -> bool:
        return bool(self.partition_files(dataset))

    # ---- writing ------------------------------------------------------------------
    def replace_partition(
        self, dataset: str, keys: Mapping[str, str], data: pl.LazyFrame | pl.DataFrame, *, run_id: str,
        optimizations: pl.QueryOptFlags | None = None, metadata: Mapping[str, str] | None = None,
        checksum: bool = True,
    ) -> PartitionWrite:
        """Write ``data`` as the partition's new content, atomically replacing the old.
        ``metadata`` goes into the file's key-value metadata (:meth:`partition_metadata`);
        ``checksum=False`` skips hashing a file nobody records the hash of."""
        target_dir = self.partition_dir(dataset, keys)
        tmp = self.staging_dir(run_id) / f"{dataset.replace('/', '_')}-{uuid.uuid4().hex}.parquet"
        data = data.drop([k for k in keys if k in data.collect_schema().names()])
        metadata = dict(metadata) if metadata else None
        if isinstance(data, pl.LazyFrame):
            data.sink_parquet(tmp, engine="streaming", statistics=True, row_group_size=ROW_GROUP_ROWS,
                              optimizations=optimizations or pl.QueryOptFlags(),
                              metadata=metadata)
        else:
            data.write_parquet(tmp, statistics=True, row_group_size=ROW_GROUP_ROWS,
                               metadata=metadata)
        with tmp.open("rb") as fh:
            os.fsync(fh.fileno())
        rows = pl.scan_parquet(tmp).select(pl.len()).collect().item()
        digest = file_sha256(tmp) if checksum else None
        target_dir.mkdir(parents=True, exist_ok=True)
        target = target_dir / PART_FILE
        os.replace(tmp, target)
        _fsync_dir(target_dir)
        return PartitionWrite(dataset, tuple(keys.items()), target, int(rows), digest)

    def partition_metadata(self, dataset: str, keys: Mapping[str, str]) -> dict[str, str] | None:
        """The key-value metadata a partition was written with; None if it does not exist."""
        target = self.partition_dir(dataset, keys) / PART_FILE
        return pl.read_parquet_metadata(target) if target.exists() else None

    def delete_partition(self, dataset: str, keys: Mapping[str, str]) -> None:
        target = self.partition_dir(dataset, keys) / PART_FILE
        if target.exists():
            target.unlink()

    def iter_datasets(self) -> Iterator[str]:
        if not self.home.exists():
            return
        for child in sorted(self.home.iterdir()):
            if child.is_dir() and not child.name.startswith(("_", ".")):
                yield child.name


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
