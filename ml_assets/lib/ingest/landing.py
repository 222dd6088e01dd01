"""Landing files -> validated frames + quarantine. All files of a batch are read and validated
before anything is written, so a batch is applied whole or not at all."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ml_assets.lib.core.catalog import EVENT_FEATURES, RAW_EVENTS, Catalog
from ml_assets.lib.core.column_ranges import files_holding
from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.identifiers import quote
from ml_assets.lib.core.lake import (
    DAY,
    DAY_FILE_FORMAT,
    HOUR,
    HOUR_FILE_FORMAT,
    connect,
    parquet_relation,
    split_rows,
)
from ml_assets.lib.core.paths import DataPaths
from ml_assets.lib.ingest.contracts import (
    CANONICAL_TS,
    TIMESTAMP,
    ContractError,
    canonical_column,
    check_columns,
    event_kinds,
    label_kinds,
    quarantine_rows,
    validate_events,
    validate_labels,
)
from ml_assets.lib.ingest.landing_layout import Layout


def read_landing_table(path: Path, root: Path) -> pa.Table:
    """Read one landing file; a missing, empty, corrupt or escaping path is a ContractError.
    ``root`` is the data directory, resolved (callers reading many files resolve it once)."""
    if not path.resolve().is_relative_to(root):
        raise ContractError(f"{path}: resolves outside the data directory; refusing to read it")
    try:
        size = path.stat().st_size
    except FileNotFoundError:  # listed by the layout, then removed before it was read
        raise ContractError(f"{path}: disappeared while it was being read; rerun") from None
    if size == 0:
        raise ContractError(f"{path}: file is empty (0 bytes); re-deliver it")
    try:  # ParquetFile, not read_table (no dataset discovery); a small hourly file decodes
        # faster without pre-buffering and the thread pool: 0.38 vs 1.0-2.4 ms per file
        with pq.ParquetFile(path, pre_buffer=False) as parquet:
            return parquet.read(use_threads=size > 1 << 20)
    except Exception as exc:  # pyarrow raises several types for corrupt input
        raise ContractError(f"{path}: unreadable Parquet ({type(exc).__name__}: {exc}); "
                            "re-deliver the file") from exc


def _file_columns(tables: list[pa.Table], files: list[tuple[str, datetime, datetime]]
                  ) -> dict[str, pa.Array]:
    """``_source``, ``_row``, ``_lo`` and ``_hi`` of the rows of ``tables`` (one per file,
    concatenated in this order; ``files`` holds each one's source name and window), built for
    all files at once: per file they cost more than reading a small hourly file."""
    rows = np.fromiter((t.num_rows for t in tables), np.int64, len(tables))
    file_of = np.repeat(np.arange(len(tables)), rows)
    sources, los, his = zip(*files, strict=True)
    return {"_source": pa.array(sources, pa.string()).take(file_of),
            "_row": pa.array(np.arange(len(file_of)) - np.repeat(np.cumsum(rows) - rows, rows)),
            "_lo": pa.array(los, CANONICAL_TS).take(file_of),
            "_hi": pa.array(his, CANONICAL_TS).take(file_of)}


def read_landing_batch(paths: DataPaths, files: list[tuple[Path, datetime, datetime]],
                       expected: list[str], ts_column: str, kinds: dict[str, str] | None = None,
                       id_type: str = "int64", notes: list[str] | None = None) -> pd.DataFrame:
    """Read landing files into one frame of canonical column types.

    Each file's columns and column types are checked (a break names file and column), every
    column is brought to its canonical type (``contracts.canonical_column``) and the writer's
    pandas metadata is dropped, so no file's time zone, unit or dtype reaches the lake.

    Parameters
    ----------
    paths : DataPaths
        The data directory (files are named relative to it).
    files : list of (pathlib.Path, datetime, datetime)
        Each file with the time window its rows must fall in, in landing order
        (``Layout.cover``): rows come back in this order, so of two copies of an id the
        earlier file's stands.
    expected : list of str
        The contract's columns, in order.
    ts_column : str
        The timestamp column (always a timestamp kind).
    kinds : dict, optional
        ``{column: kind}`` (``event_kinds``/``label_kinds``); without it only ``ts_column`` is
        converted and dictionary columns decoded, the rest left to row-level validation.
    id_type : {"int64", "string"}
        The spec's id type, for ``id`` kinds.
    notes : list of str, optional
        Receives a line per defined-but-lossy coercion (sub-µs digits floored).

    Returns
    -------
    pandas.DataFrame
        The rows of every file with ``_source``, ``_row``, ``_lo``, ``_hi``.

    Raises
    ------
    ContractError
        A file is missing, unreadable, or breaks the contract's columns or types.
    """
    kinds = {**(kinds or {}), ts_column: TIMESTAMP}
    notes = [] if notes is None else notes
    root = paths.root.resolve()
    groups: dict[pa.Schema, list[int]] = {}  # by schema: files of one schema concatenate
    tables, sources = [], [str(p.relative_to(paths.root)) for p, _, _ in files]
    for i, ((path, _, _), source) in enumerate(zip(files, sources, strict=True)):
        table = read_landing_table(path, root)
        check_columns(table.column_names, expected, source)
        # a fresh table: the writer's pandas metadata (zone, unit, dtypes) is left behind
        tables.append(pa.table({
            c: canonical_column(table[c], kinds[c], id_type, c, source, notes)
            if c in kinds else table[c].cast(table[c].type.value_type)
            if pa.types.is_dictionary(table[c].type) else table[c] for c in expected}))
        groups.setdefault(tables[-1].schema, []).append(i)
    frames = []
    for members in groups.values():
        grouped = pa.concat_tables([tables[i] for i in members])
        for name, column in _file_columns([tables[i] for i in members], [
                (sources[i], files[i][1], files[i][2]) for i in members]).items():
            grouped = grouped.append_column(name, column)
        frames.append(grouped.to_pandas())
    if not frames:
        return pd.DataFrame(columns=[*expected, "_source", "_row", "_lo", "_hi"])
    if len(frames) == 1:
        return frames[0]
    # back in file order: of two copies of an id the one in the earlier file stands
    order = {source: i for i, source in enumerate(sources)}
    batch = pd.concat(frames, ignore_index=True)
    return batch.iloc[batch["_source"].map(order).argsort(kind="stable")].reset_index(drop=True)


def _partition_of(batch: pd.DataFrame, ts_column: str, grain: timedelta) -> pd.Series:
    """Each landing row's partition start: its timestamp's ``grain`` period when inside its
    file's window, else the window's first period (a file's bad rows belong to one partition,
    so runs over different partitions of one daily file never quarantine a row twice)."""
    if batch.empty:  # no file was read (every partition complete and empty): untyped columns
        return pd.Series(index=batch.index, dtype=CANONICAL_TS.to_pandas_dtype())
    ts = batch[ts_column]
    inside = (ts >= batch["_lo"]) & (ts < batch["_hi"])
    return ts.dt.floor("h" if grain == HOUR else "D").where(inside, batch["_lo"])


def _filed(quarantined: pd.DataFrame, batch: pd.DataFrame, ts_column: str, grain: timedelta,
           starts: list[datetime]) -> pd.DataFrame:
    """The quarantined rows of partitions ``starts``, each with its ``partition`` stem
    (``write_quarantine`` files them by it); rows of a file's other partitions are left to
    the runs of those partitions."""
    parts = pd.DataFrame({"source": batch["_source"].astype("str"),
                          "row": batch["_row"].astype("int64"),
                          "_part": _partition_of(batch, ts_column, grain)})
    out = quarantined.merge(parts, on=["source", "row"], how="left")
    out = out.loc[out["_part"].isin(_index(starts))]
    fmt = HOUR_FILE_FORMAT if grain == HOUR else DAY_FILE_FORMAT
    return out.assign(partition=out["_part"].dt.strftime(fmt).astype("str")).drop(
        columns="_part").reset_index(drop=True)


def _index(starts: list[datetime]) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(starts).tz_convert("UTC") if starts else pd.DatetimeIndex([], tz="UTC")


def _by_window(valid: pd.DataFrame, starts: list[datetime]) -> dict[datetime, pa.Table]:
    return split_rows(valid.drop(columns=["_source", "_row", "_lo", "_hi"]), valid["_lo"], starts)


def events_layout(paths: DataPaths, spec: DatasetSpec, now: datetime | None = None) -> Layout:
    """The event landing files (one listing of ``landing/events``), partitioned by
    ``spec.partition_step``, by ``spec.landing_completeness`` (and ``spec.end``) as of ``now``
    (default: the wall clock)."""
    return Layout.scan(paths.landing / "events", spec.partition_step, spec.landing_completeness,
                       spec.end_utc, now)


def ingest_events(paths: DataPaths, spec: DatasetSpec, hours: list[datetime], now: datetime,
                  notes: list[str] | None = None,
                  ) -> tuple[dict[datetime, pa.Table], pd.DataFrame]:
    """Validate the event landing files of ``hours`` into canonical frames and quarantine.

    Parameters
    ----------
    paths : DataPaths
        The data directory.
    spec : DatasetSpec
        Columns, kinds and checks.
    hours : list of datetime
        The partitions (UTC starts, ``spec.partition_grain``) to ingest. Each is read from
        the file covering it (``landing_layout``; a daily file's rows go to their hours under
        hourly partitions), or is empty when it has no file and is complete by
        ``spec.landing_completeness``.
    now : datetime
        The clock for "in the future".
    notes : list of str, optional
        Receives a line per defined-but-lossy coercion (file, column, count).

    Returns
    -------
    (dict, pandas.DataFrame)
        ``{hour: valid rows}`` (Arrow tables, sorted by time and id: ``lake.split_rows``)
        and the quarantined rows of ``hours``
        with reasons and their hour's ``partition`` stem.

    Raises
    ------
    ContractError
        An hour is not landed yet, or a file is unreadable or breaks the contract's columns
        or types.
    """
    layout = events_layout(paths, spec, now)
    batch = read_landing_batch(paths, layout.cover(hours).files, spec.event_columns,
                               spec.event_ts, event_kinds(spec), spec.id_type, notes)
    valid, quarantined = validate_events(batch, spec, now)
    valid = valid.assign(_lo=_partition_of(valid, spec.event_ts, spec.partition_step))
    valid, later = _ingested_before(paths, spec, hours, valid.loc[valid["_lo"].isin(_index(hours))],
                                    layout)
    valid = valid.sort_values([spec.event_ts, spec.event_id], kind="stable")
    quarantined = pd.concat([q for q in (quarantined, later) if len(q)] or [quarantined],
                            ignore_index=True)
    return _by_window(valid, hours), _filed(quarantined, batch, spec.event_ts, spec.partition_step,
                                            hours)


def _ingested_before(paths: DataPaths, spec: DatasetSpec, hours: list[datetime],
                     valid: pd.DataFrame, layout: Layout) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split off rows whose ``event_id`` is already in another raw_events partition.

    Uniqueness holds across the whole lake, not inside one run: the copy ingested first stands
    (whatever its hour), a later copy is quarantined naming the landing file that holds the
    kept one (``layout`` names the file that covered its hour). The partitions being
    (re)written are left out, so a rerun is not its own duplicate. Only files whose id range
    can hold a batch id are read (``column_ranges``), and of them only the id column.
    """
    catalog = Catalog(paths.lake, spec.partition_grain)
    table = catalog.table(RAW_EVENTS)
    rewritten = {table.stem(h) for h in hours}
    others = [p for p in files_holding(catalog, RAW_EVENTS, spec.event_id, valid[spec.event_id])
              if p.stem not in rewritten]
    if not others:
        return valid, quarantine_rows(valid, pd.Series("", index=valid.index, dtype="object"))
    con = connect()
    con.register("ids", valid[[spec.event_id]])
    eid = quote(spec.event_id)
    listed = ", ".join("'" + str(p).replace("'", "''") + "'" for p in others)
    seen = con.execute(
        f"SELECT {eid}, min(parse_filename(filename, true)) AS part FROM read_parquet([{listed}], "
        f"filename = true) WHERE {eid} IN (SELECT {eid} FROM ids) GROUP BY {eid}").df()
    landed = {p: _landed_as(paths, layout, table.start(p)) for p in seen["part"].unique()}
    first = dict(zip(seen[spec.event_id], seen["part"].map(landed), strict=True))
    where = valid[spec.event_id].map(first).astype("object")
    hit = where.notna()
    reasons = pd.Series("", index=valid.index, dtype="object")
    reasons[hit] = [f"duplicate {spec.event_id}, first seen in {w}" for w in where[hit]]
    return valid.loc[~hit], quarantine_rows(valid, reasons)


def _landed_as(paths: DataPaths, layout: Layout, start: datetime) -> str:
    """The landing file(s) an ingested partition was read from (relative to the data
    directory; a period in parts names each); its would-be hourly name when none covers it
    any more."""
    try:
        found = [p for p, _, _ in layout.covering(start)]
    except ContractError:  # now covered twice: name the partition's hourly file
        found = []
    return " or ".join(str(p.relative_to(paths.root))
                       for p in found or [paths.landing_events_file(start)])


@dataclass(frozen=True)
class LabelFeed:
    """A daily feed of (event id, label, label time) rows: its landing files and lake asset."""

    asset: str
    landing_file: Callable[[DataPaths, datetime], Path]  # the day's file, if landed daily
    description: str

    def layout(self, paths: DataPaths, spec: DatasetSpec, now: datetime | None = None) -> Layout:
        """The feed directory's landing files (one listing), by ``spec.landing_completeness``
        (and ``spec.end``) as of ``now`` (default: the wall clock)."""
        folder = self.landing_file(paths, spec.start_utc).parent
        return Layout.scan(folder, DAY, spec.landing_completeness, spec.end_utc, now)


LABELS = LabelFeed(
    "raw_labels", DataPaths.landing_labels_file,
    "Daily label files (labels that became known that day, by label_ts), joined to their "
    "event's time and entity keys. Unknown events, labels dated before their event and "
    "conflicting duplicates are quarantined.")
# Early positive reports (e.g. card networks' fraud reports): partial and fast, never used as
# training labels - only to watch what the model let through (lib/monitoring/early_labels.py).
EARLY_REPORTS = LabelFeed(
    "raw_early_reports", DataPaths.landing_reports_file,
    "Daily early positive reports (e.g. cardholder/issuer fraud reports, hours after the "
    "event; label_ts = report time). Partial and fast: never training labels, only watched by "
    "early_label_watch. Same contract and quarantine as raw_labels.")


def feeds_of(spec: DatasetSpec) -> list[LabelFeed]:
    """The label feeds this dataset has."""
    return [LABELS] + ([EARLY_REPORTS] if spec.early_reports else [])


def feed_layouts(paths: DataPaths, spec: DatasetSpec, now: datetime | None = None,
                 ) -> list[tuple[str, Layout]]:
    """``(lake table, its landing layout)`` of every feed: events, then each label feed."""
    return [(RAW_EVENTS, events_layout(paths, spec, now)),
            *((f.asset, f.layout(paths, spec, now)) for f in feeds_of(spec))]


def label_feeds(spec: DatasetSpec) -> list[str]:
    """The label-feed asset names this dataset has."""
    return [f.asset for f in feeds_of(spec)]


def _already_labeled(paths: DataPaths, spec: DatasetSpec, days: list[datetime],
                     joined: pd.DataFrame, reasons: pd.Series, feed: LabelFeed) -> None:
    """A label for an event that already has one in another day's partition (a re-sent or
    contradicting label in a later file) is quarantined naming that partition: the first
    ingested label stands, and the training set never holds an event twice."""
    catalog = Catalog(paths.lake)
    rewritten = {catalog.table(feed.asset).stem(d) for d in days}
    others = [p for p in files_holding(catalog, feed.asset, spec.event_id, joined[spec.event_id])
              if p.stem not in rewritten]
    if not others:
        return
    con = connect()
    con.register("lab", joined[[spec.event_id]])
    eid = quote(spec.event_id)
    listed = ", ".join("'" + str(p).replace("'", "''") + "'" for p in others)
    seen = con.execute(
        f"SELECT {eid}, min(parse_filename(filename, true)) AS part FROM read_parquet([{listed}], "
        f"union_by_name = true, filename = true) WHERE {eid} IN (SELECT {eid} FROM lab) "
        f"GROUP BY {eid}").df()
    where = joined[spec.event_id].map(dict(zip(seen[spec.event_id], seen["part"], strict=True)))
    hit = where.notna()
    if hit.any():
        reasons[hit] += (f"event_id already labeled in {feed.asset}/" + where[hit].astype("str")
                         + " (duplicate or conflicting label; the first one stands); ")


AVAILABLE_AT = "available_at"


def recorded_or_on_time(spec: DatasetSpec, label_ts: pd.Series,
                        available: pd.Series | None) -> pd.Series:
    """Each label's availability time: as recorded at ingestion, else (a lake written before
    it was recorded, fixtures) the on-time rule - end of the label's UTC day plus
    ``spec.label_ingest_delay``. The pandas twin of ``features.sql.available_sql``.

    Parameters
    ----------
    spec : DatasetSpec
    label_ts : Series of datetime64 (tz-aware), shape (n,)
    available : Series of datetime64 (tz-aware), shape (n,), or None
        Recorded ``available_at`` (may hold NaT); None when the column is absent.

    Returns
    -------
    Series of datetime64[UTC], shape (n,)
    """
    on_time = (label_ts.dt.tz_convert("UTC").dt.floor("D") + pd.Timedelta(days=1)
               + spec.label_ingest_delay)
    return on_time if available is None else available.fillna(on_time)


def label_availability(paths: DataPaths, spec: DatasetSpec, days: list[datetime],
                       feed: LabelFeed = LABELS, recorded_in: DataPaths | None = None,
                       ) -> dict[datetime, datetime]:
    """When each day's label file could first be used by the pipeline (``available_at``).

    A file of day ``d`` is on time at ``d + 1 day + spec.label_ingest_delay`` (when
    ``daily_labels_schedule`` ingests it); history loaded in bulk counts as on time. A file
    ingested after ``event_features`` partitions later than that were already built is late: it
    is available from the end of the newest built partition, since every one up to there was
    computed without it. A partition already in the lake keeps its recorded value (first sight stands),
    so re-ingesting, backfilling or rebuilding never moves a label's availability.

    Parameters
    ----------
    paths : DataPaths
    spec : DatasetSpec
    days : list of datetime
        UTC day starts being ingested.
    feed : LabelFeed
    recorded_in : DataPaths, optional
        The lake whose recorded availability stands (default: ``paths``); ``reproduce``
        rebuilds in a scratch directory with the live lake's.

    Returns
    -------
    dict of datetime to datetime
        ``{day: available_at}`` (UTC).
    """
    features = Catalog(paths.lake, spec.partition_grain).table(EVENT_FEATURES)
    built = features.latest()
    frontier = built + features.step if built is not None else None
    table = Catalog((recorded_in or paths).lake).table(feed.asset)
    out = {}
    for d in days:
        on_time = d + timedelta(days=1) + spec.label_ingest_delay
        recorded = _recorded_availability(table.path(d))
        out[d] = recorded or (max(on_time, frontier) if frontier else on_time)
    return out


def _recorded_availability(path: Path) -> datetime | None:
    if not path.exists():
        return None
    schema = pq.read_schema(path)
    if AVAILABLE_AT not in schema.names:
        return None  # written before availability was recorded: the on-time rule applies
    col = pq.read_table(path, columns=[AVAILABLE_AT])[AVAILABLE_AT]
    return col[0].as_py() if len(col) else None


def ingest_labels(paths: DataPaths, spec: DatasetSpec, days: list[datetime], now: datetime,
                  feed: LabelFeed = LABELS, recorded_in: DataPaths | None = None,
                  ) -> tuple[dict[datetime, pa.Table], pd.DataFrame]:
    """Validate label files and attach each label's event time and entity keys, so feature
    builds never scan all events, and its ``available_at`` (``label_availability``, recorded
    in ``recorded_in`` if given). Labels for unknown events, or not after their event, are
    quarantined. Returns ``({day: valid rows as an Arrow table}, quarantined rows)``."""
    batch = read_landing_batch(paths, feed.layout(paths, spec, now).cover(days).files,
                               [spec.event_id, spec.label, spec.label_ts], spec.label_ts,
                               label_kinds(spec), spec.id_type)
    ok, bad = validate_labels(batch, spec, now)
    # Only the event files whose id range can hold a label's event id (column_ranges): a
    # day of labels does not read the whole history of events.
    events_files = files_holding(Catalog(paths.lake), RAW_EVENTS, spec.event_id, ok[spec.event_id])
    eid, ets = quote(spec.event_id), quote(spec.event_ts)
    keys = ", ".join(quote(k) for k in spec.entity_keys)
    if events_files and len(ok):
        con = connect()
        con.register("lab", ok)
        joined = con.execute(
            f"SELECT l.*, e.{ets}, {', '.join('e.' + quote(k) for k in spec.entity_keys)} "
            f"FROM lab l LEFT JOIN (SELECT {eid}, {ets}, {keys} FROM "
            f"{parquet_relation(events_files)}) e ON e.{eid} = l.{eid} "
            f"ORDER BY l.{quote(spec.label_ts)}, l.{eid}").df()
    else:
        joined = ok.assign(**{spec.event_ts: pd.Series(pd.NaT, index=ok.index,
                                                       dtype="datetime64[us, UTC]"),
                              **{k: pd.NA for k in spec.entity_keys}})
    reasons = pd.Series("", index=joined.index, dtype="object")
    reasons[joined[spec.event_ts].isna()] += "unknown event_id (not in raw_events); "
    before = (joined[spec.label_ts] <= joined[spec.event_ts]).fillna(False).astype(bool)
    reasons[before] += "label_ts not after the event's event_ts; "
    _already_labeled(paths, spec, days, joined, reasons, feed)
    valid = joined.loc[reasons == ""]
    available = label_availability(paths, spec, days, feed, recorded_in)
    by_day = pd.Series(available, dtype="datetime64[us, UTC]")
    by_day.index = pd.DatetimeIndex(by_day.index, tz="UTC")
    valid = valid.assign(**{AVAILABLE_AT: valid["_lo"].map(by_day).astype("datetime64[us, UTC]")})
    quarantined = pd.concat([q for q in (bad, quarantine_rows(joined, reasons)) if len(q)]
                            or [bad], ignore_index=True)
    return _by_window(valid, days), _filed(quarantined, batch, spec.label_ts, DAY, days)
