"""The time grid the lake is partitioned on, and the DuckDB engine that reads it.

Which files a table has, and what they are called, is the catalog's business
(``lib/core/catalog.py``); this module only knows hours, days and a connection."""

from __future__ import annotations

from datetime import datetime, timedelta

import duckdb

# Partition file stems (lake and landing): no ':' (invalid on some filesystems).
HOUR_FILE_FORMAT = "%Y-%m-%dT%H"
DAY_FILE_FORMAT = "%Y-%m-%d"


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
    """Hour starts h with lo <= h < hi (lo floored to the hour).

    Parameters
    ----------
    lo, hi : datetime
        Bounds, both naive or both aware (UTC in this project).

    Returns
    -------
    list of datetime
        Ascending; empty when ``hi <= hour_floor(lo)``.
    """
    out, h = [], hour_floor(lo)
    while h < hi:
        out.append(h)
        h += timedelta(hours=1)
    return out


def days_between(lo: datetime, hi: datetime) -> list[datetime]:
    """Day starts d with lo <= d < hi (lo floored to the day).

    Parameters
    ----------
    lo, hi : datetime
        Bounds, both naive or both aware (UTC in this project).

    Returns
    -------
    list of datetime
        Ascending; empty when ``hi <= day_floor(lo)``.
    """
    out, d = [], day_floor(lo)
    while d < hi:
        out.append(d)
        d += timedelta(days=1)
    return out


def connect(threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """An in-process DuckDB connection with UTC session time (and ``threads`` if given).

    Parameters
    ----------
    threads : int, optional
        DuckDB worker threads; None or 0 keeps DuckDB's default.

    Returns
    -------
    duckdb.DuckDBPyConnection
    """
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    return con
