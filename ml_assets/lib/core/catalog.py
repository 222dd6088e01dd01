"""The lake catalog: the one module that knows every table written under ``lake/``.

Each table has a name, a grain and a file layout. Hourly and daily tables keep one Parquet
file per partition, named by the partition's start (``2026-07-01T13.parquet``,
``2026-07-01.parquet``); Dagster's partition keys (``2026-07-01-13:00``) map to those names
here and nowhere else. Tables without a grain are either one file (``lake/<name>.parquet``,
unpartitioned assets) or a directory of named files (micro-batches, prediction-log flushes,
quarantine files, recorded reports).

Every lake path, listing and read in the package goes through this module, so the layout can
change - or move to an object store (issue 19: a ``UPath`` root) - in one place. Filesystem
access is confined to :meth:`LakeTable._exists`, :meth:`LakeTable._list` and
:meth:`LakeTable.write` for that reason.
"""

# ruff: noqa: S608  (file lists are built by parquet_relation(), column names quoted)
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path

import duckdb
import pandas as pd

from ml_assets.lib.core.identifiers import confined
from ml_assets.lib.core.lake import (
    DAY_FILE_FORMAT,
    HOUR_FILE_FORMAT,
    connect,
    days_between,
    hours_between,
)
from ml_assets.lib.core.paths import atomic_write_bytes, write_parquet_atomic

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
_KEY_FORMAT = {Grain.HOURLY: HOUR_KEY_FORMAT, Grain.DAILY: DAY_KEY_FORMAT}


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


def _t(name: str, grain: Grain, description: str, suffix: str = PARQUET) -> Table:
    return Table(name, grain, description, suffix)


RAW_EVENTS = "raw_events"
RAW_LABELS = "raw_labels"
RAW_EARLY_REPORTS = "raw_early_reports"
EVENT_FEATURES = "event_features"
BATCH_SCORES = "batch_scores"
MICROBATCH_EVENTS = "microbatch_events"
MICROBATCH_SCORES = "microbatch_scores"
MICROBATCH_QUARANTINE = "microbatch_quarantine"
PREDICTION_LOG = "prediction_log"
QUARANTINE = "quarantine"
QUARANTINE_FILES = "_quarantine"
TRAINING_SET = "training_set"
DATA_SPLITS = "data_splits"
FROZEN_REFERENCE_SET = "frozen_reference_set"
SHADOW_REPORT = "shadow_report"
SHADOW_SUMMARY = "shadow_summary"
BUSINESS_METRIC = "business_metric"
FEATURE_DRIFT = "feature_drift"
PREDICTION_DRIFT = "prediction_drift"
EARLY_LABEL_WATCH = "early_label_watch"
DELAYED_EVALUATION = "delayed_evaluation"

# The daily monitoring tables (one asset each), business metric first.
MONITORING_TABLES = (BUSINESS_METRIC, FEATURE_DRIFT, PREDICTION_DRIFT, EARLY_LABEL_WATCH,
                     DELAYED_EVALUATION)
# The ingest -> features -> scoring spine that `ml-assets status` reports partitions of.
PIPELINE_TABLES = (RAW_EVENTS, RAW_LABELS, EVENT_FEATURES, BATCH_SCORES)
# Where scored rows live: hourly batch scores and micro-batch scores.
SCORE_TABLES = (BATCH_SCORES, MICROBATCH_SCORES)

TABLES: dict[str, Table] = {t.name: t for t in (
    _t(RAW_EVENTS, Grain.HOURLY, "validated events, by event time"),
    _t(RAW_LABELS, Grain.DAILY, "labels with their event's time and entity keys, by arrival day"),
    _t(RAW_EARLY_REPORTS, Grain.DAILY, "early positive reports, by arrival day"),
    _t(EVENT_FEATURES, Grain.HOURLY, "point-in-time features, one row per event"),
    _t(BATCH_SCORES, Grain.HOURLY, "every scoring role's score of every event"),
    _t(MICROBATCH_EVENTS, Grain.NONE, "validated micro-batch events, one file per batch"),
    _t(MICROBATCH_SCORES, Grain.NONE, "micro-batch scores, one file per batch and role"),
    _t(MICROBATCH_QUARANTINE, Grain.NONE, "rows a micro-batch quarantined, one file per batch"),
    _t(PREDICTION_LOG, Grain.NONE, "realtime predictions, files under <YYYY-MM-DDTHH>/"),
    _t(QUARANTINE, Grain.NONE, "every quarantined row with its source and reason"),
    _t(QUARANTINE_FILES, Grain.NONE, "quarantined rows as <asset>/<partition stem> files"),
    _t(TRAINING_SET, Grain.NONE, "features joined to labels known at the cutoff"),
    _t(DATA_SPLITS, Grain.NONE, "train/valid/test assignment per event id"),
    _t(FROZEN_REFERENCE_SET, Grain.NONE, "the fixed evaluation set"),
    _t(SHADOW_REPORT, Grain.DAILY, "challenger vs champion, per day"),
    _t(SHADOW_SUMMARY, Grain.NONE, "cumulative shadow report per challenger", ".json"),
    _t(BUSINESS_METRIC, Grain.DAILY, "decision rate and missed value per day"),
    _t(FEATURE_DRIFT, Grain.DAILY, "PSI/KS per feature and day"),
    _t(PREDICTION_DRIFT, Grain.DAILY, "score quantiles per day vs a trailing baseline"),
    _t(EARLY_LABEL_WATCH, Grain.DAILY, "early reports of what the model let through"),
    _t(DELAYED_EVALUATION, Grain.DAILY, "label-gated evaluation per prediction day"),
)}


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


def parquet_relation(files: Iterable[Path | str]) -> str:
    """A ``read_parquet`` table expression over files the catalog listed.

    Parameters
    ----------
    files : iterable of path
        At least one Parquet file; quotes in names are escaped.

    Returns
    -------
    str
        SQL ``read_parquet([...], union_by_name = true)``: columns missing from older files
        read as NULL.

    Raises
    ------
    ValueError
        If ``files`` is empty (DuckDB cannot infer a schema from nothing).
    """
    listed = ", ".join("'" + str(p).replace("'", "''") + "'" for p in files)
    if not listed:
        raise ValueError("no Parquet files to read")
    return f"read_parquet([{listed}], union_by_name = true)"


def read_parquet_files(files: list[Path], columns: list[str] | None = None,
                       attempts: int = 3) -> pd.DataFrame:
    """Read many partition files in one DuckDB scan (much faster than one pandas read each).

    DuckDB opens each file at bind time (to unify schemas) and again for the scan; a partition
    atomically replaced in between makes the scan fail ("Invalid data") though both versions
    are whole. Re-reading then sees one consistent version, so such a failure is retried.

    Parameters
    ----------
    files : list of Path
        Parquet files (at least one).
    columns : list of str, optional
        Columns to read; all by default.
    attempts : int
        Scans tried before the last error is raised.

    Returns
    -------
    pandas.DataFrame
        The union (by column name) of the files' rows.

    Raises
    ------
    ValueError
        If ``files`` is empty.
    duckdb.Error
        If every attempt fails.
    """
    cols = "*" if columns is None else ", ".join(f'"{c}"' for c in columns)
    sql = f"SELECT {cols} FROM {parquet_relation(files)}"
    for _ in range(attempts - 1):
        try:
            return connect().execute(sql).df()
        except duckdb.Error:
            continue
    return connect().execute(sql).df()


class LakeTable:
    """One table of one lake: its files, gaps, newest partition, reads and writes.

    Parameters
    ----------
    root : Path
        The lake directory.
    table : Table
        The table's facts.
    """

    def __init__(self, root: Path, table: Table):
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
        """The file stem of the partition starting at ``start`` (``2026-07-01T13``)."""
        return start.strftime(_FILE_FORMAT[self.grain])

    def key(self, start: datetime) -> str:
        """The Dagster partition key of the partition starting at ``start``."""
        return start.strftime(_KEY_FORMAT[self.grain])

    def start(self, stem: str) -> datetime:
        """The UTC start of the partition whose file stem is ``stem``."""
        return datetime.strptime(stem, _FILE_FORMAT[self.grain]).replace(tzinfo=UTC)

    def path(self, key: str | datetime | None = None) -> Path:
        """The file of one partition, of one named file, or of the whole table.

        Parameters
        ----------
        key : str or datetime, optional
            A partition start, a Dagster partition key, a file name without suffix (may hold
            ``/`` for nested files), or None for an unpartitioned table's single file.

        Returns
        -------
        Path
            ``lake/<name>/<stem><suffix>`` or ``lake/<name><suffix>``.
        """
        if key is None:
            return self._single
        if isinstance(key, datetime):
            stem = self.stem(key)
        else:  # named files (batch ids, versions) are kept as given, inside the table
            stem = key if self.grain is Grain.NONE else file_stem(key)
            return confined(self.dir, f"{stem}{self.table.suffix}", f"{self.name} key",
                            nested=True)
        return self.dir / f"{stem}{self.table.suffix}"

    def _periods(self, lo: datetime, hi: datetime) -> list[datetime]:
        return (hours_between if self.grain is Grain.HOURLY else days_between)(lo, hi)

    # -- the filesystem seam (an object store would replace these three) ----------------
    @staticmethod
    def _exists(path: Path) -> bool:
        return path.exists()

    def _list(self, pattern: str) -> list[Path]:
        return sorted(self.dir.glob(pattern)) if self.dir.is_dir() else []

    def write(self, key: str | datetime | None, df: pd.DataFrame) -> Path:
        """Atomically write one partition (temp file + rename: readers see old or new).

        Parameters
        ----------
        key : str or datetime, optional
            As for :meth:`path`.
        df : pandas.DataFrame
            Rows to store (the index is dropped).

        Returns
        -------
        Path
            The file written.
        """
        path = self.path(key)
        write_parquet_atomic(df, path)
        return path

    def write_bytes(self, key: str, data: bytes) -> Path:
        """Atomically write a named non-Parquet file (e.g. a recorded JSON report)."""
        path = self.path(key)
        atomic_write_bytes(path, data)
        return path

    def delete(self, key: str | datetime) -> None:
        """Remove one partition file if present (e.g. a quarantine file gone stale)."""
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
        for start in self._periods(lo, hi):
            p = self.path(start)
            if self._exists(p):
                present.append(p)
            else:
                missing.append(start)
        return present, missing

    def files(self, lo: datetime | None = None, hi: datetime | None = None) -> list[Path]:
        """Existing files, oldest first: those covering ``[lo, hi)``, or all when no window
        is given (a table without a grain lists nested files too)."""
        if lo is not None and hi is not None:
            return self.coverage(lo, hi)[0]
        if self.grain is Grain.NONE:
            return self._list(f"**/*{self.table.suffix}")
        return self._list(f"*{self.table.suffix}")

    def missing(self, lo: datetime, hi: datetime) -> list[datetime]:
        """Starts of the partitions in ``[lo, hi)`` that have no file."""
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
        """A DuckDB ``read_parquet`` expression over :meth:`files` (raises ValueError if none)."""
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


class Catalog:
    """Every lake table under one root.

    Parameters
    ----------
    root : str or Path
        The lake directory (``DataPaths.lake``).
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"Catalog({str(self.root)!r})"

    def table(self, name: str) -> LakeTable:
        """The table ``name``.

        Raises
        ------
        KeyError
            If the catalog has no such table.
        """
        return LakeTable(self.root, TABLES[name])

    def tables(self, grain: Grain | None = None) -> list[Table]:
        """Every table's facts (of one grain, if given), in catalog order."""
        return [t for t in TABLES.values() if grain is None or t.grain is grain]

    def path_of(self, relative: str) -> Path:
        """A file named relative to the lake root (``raw_labels/2026-07-01.parquet``), as
        recorded by change-tracking such as the label sensor's cursor (confined to the lake:
        a cursor is stored outside the code, so ``..`` or an absolute path is refused)."""
        return confined(self.root, relative, "lake file", nested=True)
