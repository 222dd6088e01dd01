"""Build point-in-time features over the lake, chunk by chunk, so memory stays bounded."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ml_assets.lib.core.catalog import RAW_EVENTS, RAW_LABELS, Catalog
from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.identifiers import quote
from ml_assets.lib.core.lake import connect, parquet_relation, split_rows
from ml_assets.lib.core.lake_store import read_source
from ml_assets.lib.core.paths import DataPaths
from ml_assets.lib.features.sql import available_sql, chunk_ranges, compute_features
from ml_assets.lib.ingest.landing import AVAILABLE_AT

DEFAULT_CHUNK = timedelta(days=30)


class MissingUpstreamError(RuntimeError):
    """Features would be computed on incomplete history; the message says what to run."""


def build_features(paths: DataPaths, spec: DatasetSpec, start: datetime, end: datetime,
                   chunk: timedelta = DEFAULT_CHUNK, threads: int | None = None,
                   ) -> Iterator[tuple[datetime, datetime, pd.DataFrame]]:
    """Yield the features of events in [start, end) chunk by chunk.

    Each chunk reads ``raw_events`` from its look-back start (``spec.lookback``) and the labels
    dated and available before the chunk's end.

    Parameters
    ----------
    paths : DataPaths
    spec : DatasetSpec
    start, end : datetime
        UTC window.
    chunk : timedelta
        Chunk length.
    threads : int, optional
        DuckDB threads (default: DuckDB's).

    Yields
    ------
    lo, hi : datetime
    features : DataFrame, one row per event in [lo, hi)
        Event id, timestamp, entity keys and one column per feature.

    Raises
    ------
    MissingUpstreamError
        A ``raw_events`` partition of a chunk's look-back is missing (:func:`lookback_inputs`).
    """
    con = connect(threads)
    con.execute("SET enable_progress_bar = false")
    catalog = Catalog(paths.lake, spec.partition_grain)
    for lo, hi in chunk_ranges(start, end, chunk):
        event_files, label_files = lookback_inputs(catalog, spec, lo, hi)
        ev = parquet_relation(event_files)
        labels = load_labels(con, spec, label_files, hi, ev)
        yield lo, hi, compute_features(con, spec, ev, labels, lo, hi)


def lookback_inputs(catalog: Catalog, spec: DatasetSpec, lo: datetime, hi: datetime,
                    ) -> tuple[list[Path], list[Path]]:
    """The lake files the features of events in ``[lo, hi)`` read, on any engine.

    Parameters
    ----------
    catalog : Catalog
    spec : DatasetSpec
    lo, hi : datetime
        UTC window of the events to compute features for.

    Returns
    -------
    event_files : list of Path
        Every ``raw_events`` partition of ``[lo - spec.lookback, hi)`` (from the data's start).
    label_files : list of Path
        The ``raw_labels`` days of the same span that exist.

    Raises
    ------
    MissingUpstreamError
        A ``raw_events`` partition of the look-back is missing. (A ``raw_labels`` day not
        ingested is not refused: labels count from when they were ingested,
        ``landing.label_availability``, so a build without them is what the schedule computed
        and a rebuild gives it again.)
    """
    hist_lo = max(lo - spec.lookback, spec.start_utc)
    events = catalog.table(RAW_EVENTS)
    files, missing = events.coverage(hist_lo, hi)
    if missing:
        shown = ", ".join(events.key(p) for p in missing[:3])
        raise MissingUpstreamError(
            f"raw_events is missing {len(missing)} partition(s) needed for features of "
            f"[{lo:%Y-%m-%d %H:00}, {hi:%Y-%m-%d %H:00}) (e.g. {shown}); materialize "
            "raw_events for those partitions first (features need the full look-back window)."
        )
    return files, catalog.table(RAW_LABELS).files(hist_lo, hi)


def files_available_sql(spec: DatasetSpec, files: list[Path], label_ts: str) -> str:
    """SQL for the availability time of rows read from label ``files`` (``available_sql``):
    partitions written before availability was recorded lack the column altogether.

    Parameters
    ----------
    spec : DatasetSpec
    files : list of Path
        The label partitions read.
    label_ts : str
        SQL expression of the label time.

    Returns
    -------
    str
        A TIMESTAMPTZ expression.
    """
    has = any(AVAILABLE_AT in pq.read_schema(read_source(f)).names for f in files)
    # cast: an empty partition may store both columns as Parquet NULL type
    return available_sql(spec, f"CAST({AVAILABLE_AT} AS TIMESTAMPTZ)" if has else "NULL",
                         f"CAST({label_ts} AS TIMESTAMPTZ)")


def load_labels(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, files: list[Path],
                before: datetime, events: str) -> str | None:
    """Load the labels a feature before ``before`` may count into temp table ``lb_chunk``.

    Columns keep their declared types even when every file is empty: an empty partition may
    store its key and time columns as Parquet NULL type (DuckDB then cannot bind
    ``date_trunc`` on ``label_ts``), so ``label_ts`` is cast to TIMESTAMPTZ and the entity keys
    to their types in ``events``.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
    spec : DatasetSpec
    files : list of pathlib.Path
        ``raw_labels`` partitions.
    before : datetime
        Labels with ``label_ts`` or ``available_at`` at or after it are left out.
    events : str
        Relation expression of the ``raw_events`` read with them (the keys' types).

    Returns
    -------
    str or None
        ``"lb_chunk"`` (entity keys, ``label_ts``, ``available_at``, ``label``), or None
        without files.
    """
    if not files:
        return None
    label_ts = f"CAST({quote(spec.label_ts)} AS TIMESTAMPTZ)"
    available = files_available_sql(spec, files, quote(spec.label_ts))
    key_types = con.sql(f"SELECT {', '.join(quote(k) for k in spec.entity_keys)} "
                        f"FROM {events} LIMIT 0").types
    keys = ", ".join(f"CAST({quote(k)} AS {t}) AS {quote(k)}"
                     for k, t in zip(spec.entity_keys, key_types, strict=True))
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE lb_chunk AS SELECT * FROM (SELECT {keys}, "
        f"{label_ts} AS label_ts, {available} AS available_at, "
        f"CAST({quote(spec.label)} AS DOUBLE) AS label FROM {parquet_relation(files)}) "
        "WHERE label_ts < $1 AND available_at < $1", [before])
    return "lb_chunk"


def split_by_period(df: pd.DataFrame, ts_column: str, starts: list[datetime],
                    step: timedelta) -> dict[datetime, pa.Table]:
    """Split a frame into one table per partition (every listed one gets a table, maybe empty).

    Parameters
    ----------
    df : DataFrame
    ts_column : str
        Timestamp column (UTC).
    starts : list of datetime
        Partition starts wanted (``lake.periods_in``).
    step : timedelta
        The partition length (``DatasetSpec.partition_step``): an hour or a day.

    Returns
    -------
    dict of datetime to pyarrow.Table
        Slices of one Arrow conversion (``lake.split_rows``), ready for
        ``write_parquet_atomic``; rows keep their order within a partition.
    """
    return split_rows(df, df[ts_column].dt.floor(pd.Timedelta(step)), starts)
