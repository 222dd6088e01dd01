"""Reading the Parquet lake with DuckDB: which partition files cover a time range."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd

from ml_assets.lib.core.paths import DAY_FILE_FORMAT, HOUR_FILE_FORMAT


def hour_floor(ts: datetime) -> datetime:
    return ts.replace(minute=0, second=0, microsecond=0)


def day_floor(ts: datetime) -> datetime:
    return ts.replace(hour=0, minute=0, second=0, microsecond=0)


def hours_between(lo: datetime, hi: datetime) -> list[datetime]:
    """Hour starts h with lo <= h < hi (lo floored to the hour)."""
    out, h = [], hour_floor(lo)
    while h < hi:
        out.append(h)
        h += timedelta(hours=1)
    return out


def days_between(lo: datetime, hi: datetime) -> list[datetime]:
    out, d = [], day_floor(lo)
    while d < hi:
        out.append(d)
        d += timedelta(days=1)
    return out


def hourly_files(asset_dir: Path, lo: datetime, hi: datetime) -> tuple[list[Path], list[datetime]]:
    """Existing hourly partition files covering [lo, hi), and the hours that are missing."""
    present, missing = [], []
    for h in hours_between(lo, hi):
        p = asset_dir / f"{h.strftime(HOUR_FILE_FORMAT)}.parquet"
        (present if p.exists() else missing).append(p if p.exists() else h)
    return present, missing


def daily_files(asset_dir: Path, lo: datetime, hi: datetime) -> tuple[list[Path], list[datetime]]:
    present, missing = [], []
    for d in days_between(lo, hi):
        p = asset_dir / f"{d.strftime(DAY_FILE_FORMAT)}.parquet"
        (present if p.exists() else missing).append(p if p.exists() else d)
    return present, missing


def parquet_relation(files: list[Path]) -> str:
    """A ``read_parquet`` table expression over files whose paths we built ourselves."""
    if not files:
        raise ValueError("no Parquet files to read")
    listed = ", ".join("'" + str(p).replace("'", "''") + "'" for p in files)
    return f"read_parquet([{listed}], union_by_name = true)"


def connect(threads: int | None = None) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    return con


def read_parquet_files(files: list[Path], columns: list[str] | None = None,
                       attempts: int = 3) -> pd.DataFrame:
    """Read many partition files in one DuckDB scan (much faster than one pandas read each).

    DuckDB opens each file at bind time (to unify schemas) and again for the scan; a partition
    atomically replaced in between makes the scan fail ("Invalid data") though both versions
    are whole. Re-reading then sees one consistent version, so such a failure is retried."""
    cols = "*" if columns is None else ", ".join(f'"{c}"' for c in columns)
    sql = f"SELECT {cols} FROM {parquet_relation(files)}"
    for _ in range(attempts - 1):
        try:
            return connect().execute(sql).df()
        except duckdb.Error:
            continue
    return connect().execute(sql).df()
