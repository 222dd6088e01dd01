"""Which files of a lake table can hold given values of a column: each file's [min, max],
cached by file identity.

Lookups by id across a whole partitioned table - is this event id already ingested, which
events do these labels belong to - used to open every file (0.5 ms a footer: 1.7 s at 2,880
hourly partitions), a cost that grew with the table's history on every run. Each file's
minimum and maximum of the lookup column is cached in the lake's ``_column_ranges`` table,
keyed by the file's identity (size, mtime in ns and inode locally; size and ETag on an object
store). A lookup then reads only the files written since the last one, and scans only the
files whose range can hold a wanted value. With ids that grow with time (sequences,
timestamp-prefixed ids) that is a handful of files; with random ids every range is wide and
every file is scanned, as before.

The cache can be stale or lost without a wrong answer: an entry is used only while its
file's identity is unchanged, anything else is read again, and an unreadable cache is rebuilt.
"""

# ruff: noqa: S608  (file lists are built by parquet_relation(), column names quoted)
from __future__ import annotations

import os

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ml_assets.lib.core.catalog import COLUMN_RANGES, Catalog
from ml_assets.lib.core.identifiers import quote
from ml_assets.lib.core.lake import connect, parquet_relation
from ml_assets.lib.core.lake_store import LakePath, read_source
from ml_assets.lib.core.lake_table import LakeTable

_COLUMNS = ["file", "identity", "lo", "hi"]


def files_holding(catalog: Catalog, name: str, column: str, values: pd.Series,
                  ) -> list[LakePath]:
    """The files of table ``name`` whose ``column`` range can hold one of ``values``.

    Every file holding a row whose ``column`` equals a value is returned (others may be
    too: a range is a bound, not a set). Files without a non-NULL value are never returned,
    and NULL values match nothing, as in SQL's ``IN``. Comparison is DuckDB's, so the
    values' type must compare with the column's.

    Parameters
    ----------
    catalog : Catalog
        The lake.
    name : str
        A partitioned table (e.g. ``RAW_EVENTS``).
    column : str
        The lookup column, e.g. ``event_id``.
    values : pandas.Series, shape (n,)
        The values looked up.

    Returns
    -------
    list of Path or UPath
        Candidate files, oldest first.

    Raises
    ------
    duckdb.Error
        A file cannot be read or has no ``column``.
    """
    if not len(values):
        return []
    # For each file, the smallest wanted value at or above its minimum (an ASOF join:
    # sorted once, not files x values); the file is a candidate when that value is within
    # its maximum.
    return _matching(catalog, name, column,
                     "SELECT r.file FROM ranges r ASOF JOIN (SELECT DISTINCT v FROM wanted "
                     "WHERE v IS NOT NULL) w ON r.lo <= w.v WHERE w.v <= r.hi",
                     wanted=values.to_frame("v"))


def files_overlapping(catalog: Catalog, name: str, column: str, lo, hi) -> list[LakePath]:
    """The files of table ``name`` whose ``column`` range meets ``[lo, hi)``: every file
    holding a row with ``lo <= column < hi`` (e.g. the micro-batch files with events in a
    look-back window: their names say nothing of time).

    Parameters
    ----------
    catalog : Catalog
        The lake.
    name : str
        A table of flat files (partitioned, or named files such as ``MICROBATCH_EVENTS``).
    column : str
        E.g. ``event_ts``.
    lo, hi : scalar
        Bounds comparable with the column (tz-aware timestamps for ``event_ts``).

    Returns
    -------
    list of Path or UPath
        Candidate files, in listing order.

    Raises
    ------
    duckdb.Error
        A file cannot be read or has no ``column``.
    """
    return _matching(catalog, name, column, "SELECT file FROM ranges WHERE lo < $hi AND hi >= $lo",
                     params={"lo": lo, "hi": hi})


def _matching(catalog: Catalog, name: str, column: str, query: str, params: dict | None = None,
              **frames: pd.DataFrame) -> list[LakePath]:
    """The table's files named by ``query`` (one ``file`` column) over ``ranges`` - each
    file's ``(file, identity, lo, hi)`` - and the registered ``frames``, in listing order."""
    table = catalog.table(name)
    files = table.files()
    if not files:
        return []
    con = connect()
    con.register("ranges", _ranges(catalog, table, column, files))
    for key, frame in frames.items():
        con.register(key, frame)
    names = {f for (f,) in con.execute(query, params or {}).fetchall()}
    return [p for p in files if p.name in names]


def _ranges(catalog: Catalog, table: LakeTable, column: str, files: list[LakePath]) -> pa.Table:
    """``(file, identity, lo, hi)`` for every file of ``files``: cached rows whose identity
    still matches, the rest read from the files (and the cache rewritten)."""
    current = pa.table({"file": [p.name for p in files], "identity": _identities(table, files)})
    store = catalog.table(COLUMN_RANGES)
    key = f"{table.name}/{column}"
    cached = _read_cache(store.path(key))
    kept = (cached.join(current, ["file", "identity"], join_type="inner").select(_COLUMNS)
            if cached is not None else None)
    have = set(kept.column("file").to_pylist()) if kept is not None else set()
    stale = [p for p in files if p.name not in have]
    if not stale and kept.num_rows == cached.num_rows:
        return kept
    fresh = _read_ranges(stale, column, current) if stale else None
    if fresh is None:
        merged = kept  # only files that are gone: drop their rows
    elif kept is None or kept.schema.field("lo").type != fresh.schema.field("lo").type:
        merged = fresh if len(stale) == len(files) else _read_ranges(files, column, current)
    else:
        merged = pa.concat_tables([kept, fresh])
    store.write(key, merged.filter(pc.is_valid(merged["identity"])))
    return merged


def _identities(table: LakeTable, files: list[LakePath]) -> list[str | None]:
    """What changes whenever a file is rewritten: size, mtime (ns) and inode of a local file
    (an atomic rename brings a new inode); size and ETag of an object (None when the store
    gives neither ETag nor modification time: never cached)."""
    if not table.remote:
        stats = (os.stat(p) for p in files)
        return [f"{s.st_size}:{s.st_mtime_ns}:{s.st_ino}" for s in stats]
    listed = {e["name"].rsplit("/", 1)[-1]: e for e in table.dir.fs.ls(table.dir.path, detail=True)}
    out = []
    for p in files:
        entry = listed.get(p.name, {})
        tag = entry.get("ETag") or entry.get("LastModified")
        out.append(f"{entry.get('size')}:{tag}" if tag else None)
    return out


def _read_cache(path: LakePath) -> pa.Table | None:
    """The cached ranges, or None when there are none or they cannot be read (a cache is
    rebuilt, never trusted when damaged)."""
    try:
        cached = pq.read_table(read_source(path))
    except (OSError, pa.ArrowException):
        return None
    return cached if set(_COLUMNS) <= set(cached.column_names) else None


def _read_ranges(files: list[LakePath], column: str, current: pa.Table) -> pa.Table:
    """``(file, identity, lo, hi)`` of ``files`` read from the files themselves (one DuckDB
    scan of the one column); a file without a non-NULL value gets NULL bounds."""
    con = connect()
    con.register("current", current.filter(pc.is_in(current["file"],
                                                    pa.array([p.name for p in files]))))
    col = quote(column)
    return con.sql(
        f"WITH r AS (SELECT parse_filename(filename) AS file, min({col}) AS lo, "
        f"max({col}) AS hi FROM {parquet_relation(files, 'filename')} GROUP BY ALL) "
        "SELECT c.file, c.identity, r.lo, r.hi FROM current c LEFT JOIN r USING (file)").to_arrow_table()
