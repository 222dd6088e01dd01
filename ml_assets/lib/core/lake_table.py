"""One lake table's files: partition key <-> file name (spelled here once), listing, gaps,
the newest partition, atomic writes and DuckDB reads.

:mod:`ml_assets.lib.core.catalog` names the tables; this module knows how one table sits on
disk. Filesystem access is confined to :meth:`LakeTable._exists`, :meth:`LakeTable._list` and
the writers, which take a local root (temp file + rename) or an object-store ``UPath`` root
(one whole PUT per file: ``lake_store``).
"""

# ruff: noqa: S608  (file lists are built by parquet_relation(), column names quoted)
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path

import pandas as pd
import pyarrow as pa

from ml_assets.lib.core.identifiers import confined
from ml_assets.lib.core.lake import (
    DAY_FILE_FORMAT,
    HOUR_FILE_FORMAT,
    parquet_relation,
    periods_in,
    read_parquet_files,
)
from ml_assets.lib.core.lake_store import LakePath, is_remote, put_objects, put_parquet_files
from ml_assets.lib.core.paths import (
    atomic_write_bytes,
    write_parquet_atomic,
    write_parquet_files_atomic,
)

HOUR_KEY_FORMAT = "%Y-%m-%d-%H:%M"  # Dagster's hourly partition keys
DAY_KEY_FORMAT = "%Y-%m-%d"  # Dagster's daily partition keys
PARQUET = ".parquet"


class Grain(StrEnum):
    """How a table is partitioned in time."""

    HOURLY = "hourly"
    DAILY = "daily"
    NONE = "none"


_STEP = {Grain.HOURLY: timedelta(hours=1), Grain.DAILY: timedelta(days=1)}
_FILE_FORMAT = {Grain.HOURLY: HOUR_FILE_FORMAT, Grain.DAILY: DAY_FILE_FORMAT}
_PARTITION_STEM = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2})?")  # 2026-07-01T13
_KEY_FORMAT = {Grain.HOURLY: HOUR_KEY_FORMAT, Grain.DAILY: DAY_KEY_FORMAT}


def partition_key(start: datetime, grain: Grain | str) -> str:
    """The Dagster partition key of the ``grain`` partition starting at ``start``.

    Parameters
    ----------
    start : datetime
        UTC partition start (formatted, not floored).
    grain : Grain or str
        ``"hourly"`` (``2026-07-01-13:00``) or ``"daily"`` (``2026-07-01``).

    Raises
    ------
    KeyError
        For ``Grain.NONE`` (ValueError for a name that is not a grain).
    """
    return start.strftime(_KEY_FORMAT[Grain(grain)])


@dataclass(frozen=True)
class Table:
    """A lake table's facts.

    Parameters
    ----------
    name : str
        Directory (or file stem) under ``lake/``; equals the asset name where one writes it.
    grain : Grain
        ``HOURLY``/``DAILY``: one file per partition; ``NONE``: one file, or named files.
    description : str
        What a row is.
    suffix : str
        File extension, ``.parquet`` except for recorded JSON reports.
    """

    name: str
    grain: Grain
    description: str
    suffix: str = PARQUET


def file_stem(partition_key: str) -> str:
    """The file stem of a Dagster partition key.

    Parameters
    ----------
    partition_key : str
        ``2026-07-01-13:00`` (hourly) or ``2026-07-01`` (daily); any other key is kept as is.

    Returns
    -------
    str
        ``2026-07-01T13`` for an hourly key, the key itself otherwise.
    """
    if len(partition_key) == 16 and partition_key[10] == "-" and partition_key.endswith(":00"):
        return datetime.strptime(partition_key, HOUR_KEY_FORMAT).strftime(HOUR_FILE_FORMAT)
    return partition_key


class LakeTable:
    """One table of one lake: its files, gaps, newest partition, reads and writes.

    Parameters
    ----------
    root : Path or UPath
        The lake directory, or its object-store URL (``lake_store.remote_root``).
    table : Table
        The table's facts.
    """

    def __init__(self, root: LakePath, table: Table):
        self.remote = is_remote(root)
        self.table = table
        self.name = table.name
        self.grain = table.grain
        self.dir = root / table.name
        self._single = root / f"{table.name}{table.suffix}"

    def __repr__(self) -> str:
        return f"LakeTable({self.name!r}, {self.grain.value})"

    # -- keys and files ------------------------------------------------------------------
    @property
    def step(self) -> timedelta:
        """The length of one partition (1 hour or 1 day).

        Raises
        ------
        ValueError
            For a table without a grain.
        """
        if self.grain is Grain.NONE:
            raise ValueError(f"{self.name} is not partitioned in time")
        return _STEP[self.grain]

    def stem(self, start: datetime) -> str:
        """The file stem of the partition starting at ``start`` (``2026-07-01T13``).

        Parameters
        ----------
        start : datetime
            UTC start of an hour (hourly) or a day (daily); formatted, not floored.
        """
        return start.strftime(_FILE_FORMAT[self.grain])

    def key(self, start: datetime) -> str:
        """The Dagster partition key of the partition starting at ``start``.

        Parameters
        ----------
        start : datetime
            UTC partition start.
        """
        return partition_key(start, self.grain)

    def start(self, stem: str) -> datetime:
        """The UTC start of the partition whose file stem is ``stem``.

        Parameters
        ----------
        stem : str
            A file name without suffix (``Path.stem``).

        Raises
        ------
        ValueError
            ``stem`` is not in the table's date format (``datetime.strptime``).
        """
        return datetime.strptime(stem, _FILE_FORMAT[self.grain]).replace(tzinfo=UTC)

    def path(self, key: str | datetime | None = None) -> LakePath:
        """The file of one partition, of one named file, or of the whole table.

        Parameters
        ----------
        key : str or datetime, optional
            A partition start, a Dagster partition key, a file name without suffix (may hold
            ``/`` for nested files), or None for an unpartitioned table's single file.

        Returns
        -------
        Path or UPath
            ``lake/<name>/<stem><suffix>`` or ``lake/<name><suffix>`` (a UPath on a remote lake).
        """
        if key is None:
            return self._single
        if isinstance(key, datetime):
            stem = self.stem(key)
        else:  # named files (batch ids, versions) are kept as given, inside the table
            stem = key if self.grain is Grain.NONE else file_stem(key)
            # a partition's own name (digits and dashes) cannot leave the table; anything
            # else is checked (``confined`` resolves the path: 0.1 ms, per partition of a run)
            if self.grain is Grain.NONE or not _PARTITION_STEM.fullmatch(stem):
                return confined(self.dir, f"{stem}{self.table.suffix}", f"{self.name} key",
                                nested=True)
        return self.dir / f"{stem}{self.table.suffix}"

    def _periods(self, lo: datetime, hi: datetime) -> list[datetime]:
        return periods_in(lo, hi, self.step)

    # -- the filesystem seam: local paths or object-store UPaths -------------------------
    @staticmethod
    def _exists(path: LakePath) -> bool:
        return path.exists()

    def _names(self) -> set[str]:
        """File names directly in the table's directory on an object store (one LIST, names
        only: building a UPath per object costs more than the request)."""
        try:
            return {n.rsplit("/", 1)[-1] for n in self.dir.fs.ls(self.dir.path, detail=False)}
        except FileNotFoundError:
            return set()

    def _list(self, pattern: str) -> list[LakePath]:
        if self.remote:  # one LIST; no temp files on an object store
            return sorted(self.dir.glob(pattern), key=str)
        return sorted(self.dir.glob(pattern)) if self.dir.is_dir() else []

    def write(self, key: str | datetime | None, df: pd.DataFrame | pa.Table) -> LakePath:
        """Atomically write one partition (temp file + rename, or one PUT on an object store:
        readers see old or new).

        Parameters
        ----------
        key : str or datetime, optional
            As for :meth:`path`.
        df : pandas.DataFrame or pyarrow.Table
            Rows to store (the index is dropped).

        Returns
        -------
        Path
            The file written.
        """
        path = self.path(key)
        if self.remote:
            put_parquet_files([(path, df)])
        else:
            write_parquet_atomic(df, path)
        return path

    def write_many(self, parts: dict[str | datetime, pd.DataFrame | pa.Table]) -> None:
        """Atomically write many partitions as one batch (``write_parquet_files_atomic``):
        what a range run writes, at a fraction of one :meth:`write` per partition.

        Parameters
        ----------
        parts : dict
            ``{key: rows}``, keys as for :meth:`path`, rows a DataFrame or an Arrow table.
        """
        items = ((self.path(key), rows) for key, rows in parts.items())
        if self.remote:
            put_parquet_files(items)
        else:
            write_parquet_files_atomic(items)

    def write_bytes(self, key: str, data: bytes) -> LakePath:
        """Atomically write a named non-Parquet file (e.g. a recorded JSON report).

        Parameters
        ----------
        key : str
            As for :meth:`path`.
        data : bytes

        Returns
        -------
        Path
            The file written.
        """
        path = self.path(key)
        if self.remote:
            put_objects({path: data})
        else:
            atomic_write_bytes(path, data)
        return path

    def delete(self, key: str | datetime) -> None:
        """Remove one partition file if present (e.g. a quarantine file gone stale).

        Parameters
        ----------
        key : str or datetime
            As for :meth:`path`.
        """
        self.path(key).unlink(missing_ok=True)

    # -- listing -------------------------------------------------------------------------
    def coverage(self, lo: datetime, hi: datetime) -> tuple[list[Path], list[datetime]]:
        """Present partition files covering ``[lo, hi)`` and the partitions that are missing.

        Parameters
        ----------
        lo, hi : datetime
            UTC window; ``lo`` is floored to the grain.

        Returns
        -------
        files : list of Path
            Existing files, oldest first.
        missing : list of datetime
            Starts of partitions without a file, oldest first.
        """
        present, missing = [], []
        # on an object store one LIST answers for every partition (a HEAD each costs a round trip)
        periods = self._periods(lo, hi)
        listed = self._names() if self.remote and len(periods) > 1 else None
        for start in periods:
            p = self.path(start)
            if p.name in listed if listed is not None else self._exists(p):
                present.append(p)
            else:
                missing.append(start)
        return present, missing

    def files(self, lo: datetime | None = None, hi: datetime | None = None) -> list[Path]:
        """Existing files, oldest first: those covering ``[lo, hi)``, or all when no window
        is given (a table without a grain lists nested files too).

        Parameters
        ----------
        lo, hi : datetime, optional
            UTC window; used only when both are given.
        """
        if lo is not None and hi is not None:
            return self.coverage(lo, hi)[0]
        if self.grain is Grain.NONE:
            return self._list(f"**/*{self.table.suffix}")
        return self._list(f"*{self.table.suffix}")

    def missing(self, lo: datetime, hi: datetime) -> list[datetime]:
        """Starts of the partitions in ``[lo, hi)`` that have no file.

        Parameters
        ----------
        lo, hi : datetime
            UTC window, as for :meth:`coverage`.
        """
        return self.coverage(lo, hi)[1]

    def partitions(self) -> list[datetime]:
        """Starts of every partition present, oldest first."""
        return [self.start(p.stem) for p in self.files()]

    def latest(self) -> datetime | None:
        """Start of the newest partition present (UTC), or None when the table is empty."""
        found = self.files()
        return self.start(found[-1].stem) if found else None

    # -- reading -------------------------------------------------------------------------
    def relation(self, lo: datetime | None = None, hi: datetime | None = None) -> str:
        """A DuckDB ``read_parquet`` expression over :meth:`files`.

        Parameters
        ----------
        lo, hi : datetime, optional
            As for :meth:`files`.

        Raises
        ------
        ValueError
            No file is present.
        """
        return parquet_relation(self.files(lo, hi))

    def read(self, lo: datetime | None = None, hi: datetime | None = None,
             columns: list[str] | None = None) -> pd.DataFrame:
        """Rows of the files covering ``[lo, hi)`` (all files without a window) in one scan.

        Parameters
        ----------
        lo, hi : datetime, optional
            UTC window; both or neither.
        columns : list of str, optional
            Columns to read; all by default.

        Returns
        -------
        pandas.DataFrame
            Union by column name; empty (with ``columns``, if given) when no file exists.
        """
        found = self.files(lo, hi)
        if not found:
            return pd.DataFrame(columns=columns) if columns else pd.DataFrame()
        return read_parquet_files(found, columns)
