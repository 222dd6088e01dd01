"""Microbatch scoring (the 30 s - 5 min case): event files dropped into
``landing/microbatch/`` are validated, featured with the same compiled SQL as the hourly batch
(history = the lake's raw events plus earlier microbatches) and scored by every live model in
batches of 100-1000 rows. Outputs are written atomically; scored files move to ``done/``."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from ml_assets.lib.core.catalog import (
    MICROBATCH_EVENTS,
    MICROBATCH_QUARANTINE,
    MICROBATCH_SCORES,
    RAW_EVENTS,
    RAW_LABELS,
    Catalog,
)
from ml_assets.lib.core.column_ranges import files_overlapping
from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.identifiers import confined
from ml_assets.lib.core.lake import connect, read_parquet_files
from ml_assets.lib.core.paths import DataPaths, write_parquet_atomic
from ml_assets.lib.core.registry import Registry
from ml_assets.lib.features.build import load_labels
from ml_assets.lib.features.online import lookback_start
from ml_assets.lib.features.sql import compute_features
from ml_assets.lib.ingest.contracts import event_kinds, validate_events
from ml_assets.lib.ingest.landing import read_landing_batch
from ml_assets.lib.scoring.batch import (
    check_features_computable,
    live_versions,
    load_live_model,
    score_frame,
)

MIN_ROWS, MAX_ROWS = 100, 1000
MAX_WAIT = timedelta(minutes=2)  # a partial batch waits at most this long for more rows


@dataclass(frozen=True)
class Landed:
    name: str
    rows: int
    mtime_ns: int


def landing_dir(paths: DataPaths) -> Path:
    return paths.landing / "microbatch"


def pending_files(paths: DataPaths) -> list[Landed]:
    """Complete files waiting in the landing folder, oldest first (writers use temp names
    starting with '.', so a half-written file is never picked up)."""
    out = []
    for p in landing_dir(paths).glob("*.parquet"):
        try:
            out.append(Landed(p.name, pq.ParquetFile(p).metadata.num_rows, p.stat().st_mtime_ns))
        except (OSError, ValueError):  # vanished or still being replaced: next tick
            continue
    return sorted(out, key=lambda f: (f.mtime_ns, f.name))


def plan_batches(pending: list[Landed], requested: dict[str, list[int]] | None, now: datetime,
                 min_rows: int = MIN_ROWS, max_rows: int = MAX_ROWS,
                 max_wait: timedelta = MAX_WAIT) -> tuple[list[list[str]], dict[str, list[int]]]:
    """Group the pending files not yet requested into batches of up to ``max_rows`` rows (a
    bigger file is one batch, chunked when scored). A last batch under ``min_rows`` waits for
    more files unless its oldest file has waited ``max_wait``.

    Parameters
    ----------
    pending : list of Landed
        Files in the landing folder (``pending_files``).
    requested : dict, optional
        The previous result: file name to ``[mtime_ns, rows]`` of every file already requested.
    now : datetime

    Returns
    -------
    batches : list of list of str
        File names per run, oldest first.
    requested : dict
        The new state: files requested and still in the landing folder. Keyed by name *and*
        signature, not by a time watermark, so a file that lands with an older mtime than
        files already requested (a copy keeping its mtime) or is re-delivered under a name
        already scored is never skipped; scored files (moved to ``done/``) drop out.
    """
    requested = requested or {}
    kept = {f.name: [f.mtime_ns, f.rows] for f in pending
            if requested.get(f.name) == [f.mtime_ns, f.rows]}
    todo = [f for f in pending if f.name not in kept]
    batches, current, rows = [], [], 0
    for f in todo:
        if current and rows + f.rows > max_rows:
            batches.append(current)
            current, rows = [], 0
        current.append(f)
        rows += f.rows
    if current:
        waited = now - datetime.fromtimestamp(current[0].mtime_ns / 1e9, UTC)
        if rows >= min_rows or waited >= max_wait:
            batches.append(current)
    kept.update({f.name: [f.mtime_ns, f.rows] for b in batches for f in b})
    return [[f.name for f in b] for b in batches], kept


def run_key(files: list[Landed]) -> str:
    """Run key of one batch: its names and their signatures, so the same files give the same
    key (a re-evaluated tick never launches twice) and a re-delivered file a new one."""
    return hashlib.sha256("\n".join(f"{f.name}:{f.mtime_ns}:{f.rows}" for f in files)
                          .encode()).hexdigest()[:16]


def batch_id(names: list[str]) -> str:
    return hashlib.sha256("\n".join(names).encode()).hexdigest()[:16]


def _history(paths: DataPaths, spec: DatasetSpec, lo: datetime, hi: datetime,
             batch: pd.DataFrame) -> pd.DataFrame:
    """Events in the look-back: lake partitions that exist (the current one may not be
    ingested yet), earlier microbatches with events in it, and this batch; each event id
    once."""
    catalog = Catalog(paths.lake, spec.partition_grain)
    raw = catalog.table(RAW_EVENTS).files(lookback_start(spec, lo), hi)
    # Only earlier micro-batches with events in the look-back: every batch ever scored was
    # read on each run, a cost that grew with every 30-second batch.
    micro = files_overlapping(catalog, MICROBATCH_EVENTS, spec.event_ts,
                              lookback_start(spec, lo), hi)
    parts = [read_parquet_files(raw + micro, spec.event_columns)] if raw or micro else []
    frame = pd.concat([*parts, batch[spec.event_columns]], ignore_index=True)
    return frame.drop_duplicates(spec.event_id, keep="last")


def _batch_features(paths: DataPaths, spec: DatasetSpec, catalog: Catalog,
                    valid: pd.DataFrame) -> pd.DataFrame | None:
    """Point-in-time features of every valid row of the batch, computed once: the look-back
    is read once per batch, not once per 1,000-row chunk (at ``--scale 20`` an hour of
    events is 7 chunks, each of which reread 30 days - 5M events - of history). Window
    features count ``[t - w, t)``, so the batch's later rows never reach its earlier ones:
    the values are those of the hourly batch, as before."""
    if valid.empty:
        return None
    lo = valid[spec.event_ts].min()
    hi = valid[spec.event_ts].max() + pd.Timedelta(1, "us")
    con = connect(threads=1)
    con.register("hist", _history(paths, spec, lo, hi, valid))
    labels = load_labels(con, spec, catalog.table(RAW_LABELS).files(lookback_start(spec, lo), hi),
                         hi, "hist")
    features = compute_features(con, spec, "hist", labels, lo, hi)
    return features[features[spec.event_id].isin(valid[spec.event_id])]


def score_files(paths: DataPaths, spec: DatasetSpec, registry: Registry, names: list[str],
                max_rows: int = MAX_ROWS, now: datetime | None = None) -> dict:
    """Validate, feature and score the named landing files; returns the batch's statistics.

    Names come from run config: each must be a bare file name inside ``landing/microbatch/``
    (``UnsafePath`` otherwise, before any file is read or moved)."""
    now = now or datetime.now(UTC)
    folder = landing_dir(paths)
    files = [confined(folder, n, "microbatch file") for n in names]
    landed = {str(p.relative_to(paths.root)): datetime.fromtimestamp(p.stat().st_mtime, UTC)
              for p in files}
    batch = read_landing_batch(paths, [(p, spec.start_utc, now + timedelta(minutes=5))
                                       for p in files], spec.event_columns, spec.event_ts,
                               event_kinds(spec), spec.id_type)
    valid, quarantined = validate_events(batch.copy(), spec, now)
    source = valid["_source"].map(landed) if "_source" in valid else None
    valid = valid.assign(_landed_at=source).sort_values([spec.event_ts, spec.event_id])
    bid = batch_id(names)
    models = []
    for role, version in live_versions(registry, spec):
        card = registry.get_model(version)
        check_features_computable(card, spec)
        models.append((role, card, load_live_model(paths, card)))
    if not models:
        raise RuntimeError("no live model to score with: register a champion first")
    written, latencies, catalog = 0, [], Catalog(paths.lake, spec.partition_grain)
    features = _batch_features(paths, spec, catalog, valid)
    for k, start in enumerate(range(0, len(valid), max_rows)):
        chunk = valid.iloc[start:start + max_rows]
        feats = features[features[spec.event_id].isin(chunk[spec.event_id])]
        scored_at = datetime.now(UTC)
        scores = score_frame(feats, spec, models, scored_at, features_ref=f"microbatch/{bid}")
        landed_at = scores[spec.event_id].map(dict(zip(chunk[spec.event_id],
                                                       chunk["_landed_at"], strict=True)))
        scores = scores.assign(landed_at=landed_at, batch_id=bid,
                               landing_to_score_s=(pd.Timestamp(scored_at) - landed_at)
                               .dt.total_seconds())
        catalog.table(MICROBATCH_SCORES).write(f"{bid}-{k}", scores)
        latencies.append(scores["landing_to_score_s"].to_numpy())
        written += len(feats)
    catalog.table(MICROBATCH_EVENTS).write(bid, valid[spec.event_columns])
    if len(quarantined):
        catalog.table(MICROBATCH_QUARANTINE).write(bid, quarantined)
    done = folder / "done"
    done.mkdir(parents=True, exist_ok=True)
    for p in files:
        os.replace(p, done / p.name)
    lat = np.concatenate(latencies) if latencies else np.zeros(0)
    return {"batch_id": bid, "files": len(files), "events_scored": written,
            "chunks": len(latencies), "quarantined": int(len(quarantined)),
            "versions": [card["version"] for _, card, _ in models],
            "landing_to_score_p50_s": float(np.median(lat)) if len(lat) else 0.0,
            "landing_to_score_max_s": float(lat.max()) if len(lat) else 0.0}


def land_events(paths: DataPaths, events: pd.DataFrame, name: str) -> Path:
    """Drop an event file into the landing folder atomically (what an upstream writer does)."""
    path = confined(landing_dir(paths), f"{name}.parquet", "microbatch file")
    write_parquet_atomic(events, path)
    return path
