"""The time grid the lake is partitioned on, and the DuckDB engine that reads it.

Which files a table has, and what they are called, is the catalog's business
(``lib/core/catalog.py``, ``lib/core/lake_table.py``); this module only knows hours, days, a
connection and how to scan a list of Parquet files the catalog listed."""

# ruff: noqa: S608  (file lists are built by parquet_relation(), column names quoted)
from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ml_assets.lib.core.lake_store import lake_url, read_source, register_filesystem

# Partition file stems (lake and landing): no ':' (invalid on some filesystems).
HOUR_FILE_FORMAT = "%Y-%m-%dT%H"
DAY_FILE_FORMAT = "%Y-%m-%d"
HOUR, DAY = timedelta(hours=1), timedelta(days=1)


def quiet(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """``con`` with DuckDB's progress bar off (a session option; a query of over 2 s would
    draw one into the run logs). Every connection of the project goes through here."""
    con.execute("SET enable_progress_bar = false")
    return con


def hour_floor(ts: datetime) -> datetime:
    """``ts`` truncated to the start of its hour.

    Parameters
    ----------
    ts : datetime
        Naive or aware; the timezone is kept.

    Returns
    -------
    datetime
    """
    return ts.replace(minute=0, second=0, microsecond=0)


def day_floor(ts: datetime) -> datetime:
    """``ts`` truncated to the start of its day (midnight, same timezone).

    Parameters
    ----------
    ts : datetime

    Returns
    -------
    datetime
    """
    return ts.replace(hour=0, minute=0, second=0, microsecond=0)


def hours_between(lo: datetime, hi: datetime) -> list[datetime]:
    """Hour starts h with lo <= h < hi (lo floored to the hour); see :func:`periods_between`."""
    return periods_in(lo, hi, HOUR)


def days_between(lo: datetime, hi: datetime) -> list[datetime]:
    """Day starts d with lo <= d < hi (lo floored to the day); see :func:`periods_between`."""
    return periods_in(lo, hi, DAY)


def period_floor(ts: datetime, step: timedelta) -> datetime:
    """``ts`` truncated to the start of its hour (``step`` an hour) or day (a day).

    Raises
    ------
    KeyError
        ``step`` is neither an hour nor a day.
    """
    return {HOUR: hour_floor, DAY: day_floor}[step](ts)


def periods_in(lo: datetime, hi: datetime, step: timedelta) -> list[datetime]:
    """Starts of the hours (``step`` an hour) or days (a day) p with lo <= p < hi, ``lo``
    floored to the grain; see :func:`periods_between`.

    Raises
    ------
    KeyError
        ``step`` is neither an hour nor a day.
    """
    return periods_between(period_floor(lo, step), hi, step)


def periods_between(start: datetime, hi: datetime, step: timedelta) -> list[datetime]:
    """Period starts ``start, start + step, ...`` below ``hi``.

    Parameters
    ----------
    start : datetime
        The first period start (already on the grid).
    hi : datetime
        Exclusive upper bound; naive or aware like ``start`` (UTC in this project).
    step : timedelta
        The grain (an hour or a day).

    Returns
    -------
    list of datetime
        Ascending; empty when ``hi <= start``.
    """
    out, t = [], start
    while t < hi:
        out.append(t)
        t += step
    return out


RANGE_CHUNK = timedelta(days=7)  # a range run's unit of work in memory: ~1.2M events at --scale 20


def range_chunks(starts: list[datetime], step: timedelta,
                 span: timedelta | None = None) -> Iterator[list[datetime]]:
    """Consecutive runs of partition starts spanning at most ``span`` each.

    A range run (a backfill of months of hours in one run) reads, transforms and judges its
    partitions one such run at a time, so its memory is bounded by ``span`` of data, not by
    the length of the range.

    Parameters
    ----------
    starts : list of datetime
        Ascending partition starts (``periods_in``).
    step : timedelta
        The grain: an hour or a day.
    span : timedelta, optional
        Time covered by one chunk (default ``RANGE_CHUNK``, read at call time); at least one
        partition per chunk.

    Yields
    ------
    list of datetime
        Non-empty slices of ``starts``, in order, together covering all of it.
    """
    n = max(1, (span or RANGE_CHUNK) // step)
    for i in range(0, len(starts), n):
        yield starts[i:i + n]


def _epoch_us(times) -> np.ndarray:
    """UTC microseconds since the epoch (int64) of timestamps (a Series or a list)."""
    return pd.DatetimeIndex(times).tz_convert("UTC").as_unit("us").asi8 if len(times) \
        else np.empty(0, np.int64)


def split_rows(df: pd.DataFrame, period: pd.Series, starts: list[datetime]) -> dict[datetime, pa.Table]:
    """The rows of ``df`` per partition, as slices of one Arrow table.

    The frame is converted to Arrow once and sorted (stably, so rows keep their order within
    a partition) only when ``period`` is not already ascending; each partition is then a
    zero-copy slice. Splitting a frame into thousands of small DataFrames and converting
    each one when it is written cost 2-3 ms per hourly partition.

    Parameters
    ----------
    df : pandas.DataFrame, shape (n, k)
        Its index is dropped.
    period : pandas.Series of tz-aware datetime, shape (n,)
        Each row's partition start (UTC), aligned with ``df``'s rows.
    starts : list of datetime
        The partition starts wanted (tz-aware UTC); rows of other periods are left out.

    Returns
    -------
    dict of datetime to pyarrow.Table
        One table per start (empty, with ``df``'s columns, when no row falls in it), each as
        ``pa.Table.from_pandas(df_part, preserve_index=False)`` would give.
    """
    return split_table(pa.Table.from_pandas(df, preserve_index=False), _epoch_us(period), starts)


def split_table(table: pa.Table, keys: np.ndarray, starts: list[datetime]) -> dict[datetime, pa.Table]:
    """The rows of ``table`` per partition, as zero-copy slices (:func:`split_rows` on Arrow).

    Parameters
    ----------
    table : pyarrow.Table, shape (n, k)
    keys : ndarray of int64, shape (n,)
        Each row's partition start, UTC microseconds since the epoch; rows are sorted by it
        (stably) only when it is not already ascending.
    starts : list of datetime
        The partition starts wanted (tz-aware UTC); rows of other periods are left out.

    Returns
    -------
    dict of datetime to pyarrow.Table
        One table per start, empty when no row falls in it.
    """
    if len(keys) > 1 and np.any(keys[1:] < keys[:-1]):
        order = np.argsort(keys, kind="stable")
        table, keys = table.take(order), keys[order]
    wanted = _epoch_us(starts)
    lo, hi = np.searchsorted(keys, wanted, "left"), np.searchsorted(keys, wanted, "right")
    return {s: table.slice(a, b - a) for s, a, b in zip(starts, lo.tolist(), hi.tolist(), strict=True)}


def connect(threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """An in-process DuckDB connection with UTC session time (and ``threads`` if given) that
    reads the lake wherever it lives (``lake_store.register_filesystem``).

    Parameters
    ----------
    threads : int, optional
        DuckDB worker threads; None or 0 keeps DuckDB's default.

    Returns
    -------
    duckdb.DuckDBPyConnection
    """
    con = register_filesystem(quiet(duckdb.connect()))
    con.execute("SET TimeZone = 'UTC'")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    return con


def parquet_relation(files: Iterable[Path | str], source_column: str | None = None) -> str:
    """A ``read_parquet`` table expression over files the catalog listed.

    Parameters
    ----------
    files : iterable of path
        At least one Parquet file; quotes in names are escaped.
    source_column : str, optional
        A column to add holding each row's file path (DuckDB's ``filename`` option).

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
    source = f", filename = '{source_column}'" if source_column else ""
    return f"read_parquet([{listed}], union_by_name = true{source})"


def read_parquet_files(files: list[Path], columns: list[str] | None = None,
                       attempts: int = 3, file_index_column: str | None = None) -> pd.DataFrame:
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
    file_index_column : str, optional
        Adds this column: each row's file as its position in ``files`` (DuckDB's
        ``file_index``: an integer per row, where a path would be a string per row).

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
    if file_index_column:
        cols += f', file_index AS "{file_index_column}"'
    sql = f"SELECT {cols} FROM {parquet_relation(files)}"
    for _ in range(attempts - 1):
        try:
            return _reader().execute(sql).df()
        except duckdb.Error:
            continue
    return _reader().execute(sql).df()


_READERS = threading.local()  # a thread's connection goes with the thread


def _reader() -> duckdb.DuckDBPyConnection:
    """This thread's connection for ``read_parquet_files``: opening one costs 5-30 ms, and a
    monitoring run reads a few hundred partitions. A DuckDB database must not cross a fork, so
    a child process opens its own (and so does a process whose lake moved)."""
    owner = (os.getpid(), lake_url())
    if getattr(_READERS, "owner", None) != owner:
        _READERS.con, _READERS.owner = connect(), owner
    return _READERS.con


_FILE_INDEX = "__ml_assets_file_index"  # read_parquet_groups' file column; no spec column's name


def read_parquet_groups(files: list[Path]) -> list[tuple[pd.DataFrame, dict[Path, slice]]]:
    """The rows of ``files`` in one frame per distinct Parquet schema, from one scan each
    instead of one per file (a range run's contract checks read thousands of small partitions;
    a scan costs ~30 ms however small), with each file's rows as a slice of its frame.

    Files are grouped by their exact Arrow schema (footers only), so ``union_by_name`` never
    widens one file's column type to another's: a check of a file sees that file's types.

    Parameters
    ----------
    files : list of Path
        Parquet files.

    Returns
    -------
    list of (DataFrame, dict of Path to slice)
        Per schema: its files' rows (index 0..n-1, each file's rows contiguous) and the
        positions of each file's rows (an empty file: an empty slice).
    """
    groups: dict[tuple, list[Path]] = {}
    for f in files:
        schema = pq.read_schema(read_source(f))
        groups.setdefault(tuple((x.name, str(x.type)) for x in schema), []).append(f)
    out = []
    for group in groups.values():
        df = read_parquet_files(group, file_index_column=_FILE_INDEX)
        of_row = df[_FILE_INDEX].to_numpy(dtype=np.int64)
        if np.any(of_row[1:] < of_row[:-1]):  # a parallel scan may interleave its files
            df = df.take(np.argsort(of_row, kind="stable"))
            of_row = np.sort(of_row)
        bounds = np.searchsorted(of_row, np.arange(len(group) + 1))
        out.append((df.drop(columns=_FILE_INDEX).reset_index(drop=True),
                    {f: slice(int(bounds[i]), int(bounds[i + 1])) for i, f in enumerate(group)}))
    return out


def read_parquet_by_file(files: list[Path]) -> dict[Path, pd.DataFrame]:
    """Path -> that file's rows as :func:`read_parquet_files` of it alone gives them (index
    0..n-1; an empty file gives an empty frame of its columns), read by
    :func:`read_parquet_groups`."""
    return {f: df.iloc[rows].reset_index(drop=True)
            for df, slices in read_parquet_groups(files) for f, rows in slices.items()}
