"""Landing files -> validated frames + quarantine. All files of a batch are read and validated
before anything is written, so a batch is applied whole or not at all."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ml_assets.lib.core.catalog import RAW_EVENTS, Catalog, parquet_relation
from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.identifiers import quote
from ml_assets.lib.core.lake import connect
from ml_assets.lib.core.paths import DataPaths
from ml_assets.lib.ingest.contracts import (
    ContractError,
    check_columns,
    check_timestamp_type,
    quarantine_rows,
    validate_events,
    validate_labels,
)


def read_landing_table(path: Path, root: Path) -> pa.Table:
    """Read one landing file; a missing, empty, corrupt or escaping path is a ContractError."""
    if not path.resolve().is_relative_to(root.resolve()):
        raise ContractError(f"{path}: resolves outside the data directory; refusing to read it")
    if not path.exists():
        others = sorted(p.name for p in path.parent.glob(f"{path.stem}.*") if p != path)
        if others:  # e.g. a CSV export: refuse it by name rather than report "no file"
            raise ContractError(f"{path}: not found, but {others} is there; landing files must "
                                "be Parquet (CSV and other formats are refused: they lose "
                                "types and time zones). Convert it and re-deliver.")
        raise ContractError(f"{path}: no landing file for this partition. If the period truly "
                            "had no data, land an empty file with the contract's columns.")
    if path.stat().st_size == 0:
        raise ContractError(f"{path}: file is empty (0 bytes); re-deliver it")
    try:
        return pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for corrupt input
        raise ContractError(f"{path}: unreadable Parquet ({type(exc).__name__}: {exc}); "
                            "re-deliver the file") from exc


def read_landing_batch(paths: DataPaths, files: list[tuple[Path, datetime, datetime]],
                       expected: list[str], ts_column: str) -> pd.DataFrame:
    """Read files, check each one's columns and timestamp type (naming the file on failure),
    and stack them with where each row came from (``_source``, ``_row``, ``_lo``, ``_hi``)."""
    groups: dict[pa.Schema, list[pa.Table]] = {}
    for path, lo, hi in files:
        table = read_landing_table(path, paths.root)
        source = str(path.relative_to(paths.root))
        check_columns(table.column_names, expected, source)
        check_timestamp_type(table.schema.field(ts_column).type.to_pandas_dtype()
                             if not pa.types.is_timestamp(table.schema.field(ts_column).type)
                             or table.schema.field(ts_column).type.tz is None
                             else pd.DatetimeTZDtype(tz="UTC"), ts_column, source)
        n = table.num_rows
        table = table.select(expected).append_column("_source", pa.array([source] * n, pa.string()))
        table = table.append_column("_row", pa.array(range(n), pa.int64()))
        table = table.append_column("_lo", pa.array([lo] * n, pa.timestamp("us", tz="UTC")))
        table = table.append_column("_hi", pa.array([hi] * n, pa.timestamp("us", tz="UTC")))
        table = table.set_column(table.schema.get_field_index(ts_column), ts_column,
                                 table[ts_column].cast(pa.timestamp("us", tz="UTC")))
        groups.setdefault(table.schema, []).append(table)
    frames = [pa.concat_tables(tables).to_pandas() for tables in groups.values()]
    if not frames:
        return pd.DataFrame(columns=[*expected, "_source", "_row", "_lo", "_hi"])
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def _by_window(valid: pd.DataFrame, starts: list[datetime]) -> dict[datetime, pd.DataFrame]:
    groups = dict(tuple(valid.groupby("_lo", sort=False))) if len(valid) else {}
    meta = ["_source", "_row", "_lo", "_hi"]
    empty = valid.iloc[0:0].drop(columns=meta)
    return {s: groups[pd.Timestamp(s)].drop(columns=meta).reset_index(drop=True)
            if pd.Timestamp(s) in groups else empty for s in starts}


def ingest_events(paths: DataPaths, spec: DatasetSpec, hours: list[datetime], now: datetime,
                  ) -> tuple[dict[datetime, pd.DataFrame], pd.DataFrame]:
    files = [(paths.landing_events_file(h), h, h + timedelta(hours=1)) for h in hours]
    batch = read_landing_batch(paths, files, spec.event_columns, spec.event_ts)
    valid, quarantined = validate_events(batch, spec, now)
    valid = valid.sort_values([spec.event_ts, spec.event_id], kind="stable")
    return _by_window(valid, hours), quarantined


@dataclass(frozen=True)
class LabelFeed:
    """A daily feed of (event id, label, label time) rows: its landing files and lake asset."""

    asset: str
    landing_file: Callable[[DataPaths, datetime], Path]
    description: str


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


def label_feeds(spec: DatasetSpec) -> list[str]:
    """The label-feed asset names this dataset has."""
    return [f.asset for f in feeds_of(spec)]


def _already_labeled(paths: DataPaths, spec: DatasetSpec, days: list[datetime],
                     joined: pd.DataFrame, reasons: pd.Series, feed: LabelFeed) -> None:
    """A label for an event that already has one in another day's partition (a re-sent or
    contradicting label in a later file) is quarantined naming that partition: the first
    ingested label stands, and the training set never holds an event twice."""
    table = Catalog(paths.lake).table(feed.asset)
    rewritten = {table.stem(d) for d in days}
    others = [p for p in table.files() if p.stem not in rewritten]
    if not others or not len(joined):
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


def ingest_labels(paths: DataPaths, spec: DatasetSpec, days: list[datetime], now: datetime,
                  feed: LabelFeed = LABELS) -> tuple[dict[datetime, pd.DataFrame], pd.DataFrame]:
    """Validate label files and attach each label's event time and entity keys, so feature
    builds never scan all events. Labels for unknown events, or not after their event, are
    quarantined."""
    files = [(feed.landing_file(paths, d), d, d + timedelta(days=1)) for d in days]
    batch = read_landing_batch(paths, files, [spec.event_id, spec.label, spec.label_ts],
                               spec.label_ts)
    ok, bad = validate_labels(batch, spec, now)
    events_files = Catalog(paths.lake).table(RAW_EVENTS).files()
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
    quarantined = pd.concat([q for q in (bad, quarantine_rows(joined, reasons)) if len(q)]
                            or [bad], ignore_index=True)
    return _by_window(valid, days), quarantined
