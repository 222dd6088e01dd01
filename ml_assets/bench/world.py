"""A benchmark world: synthetic landing data ingested into the lake without Dagster (the same
``lib.ingest`` functions the assets call), cached on disk by its config."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ml_assets.lib.core.catalog import RAW_EVENTS, RAW_LABELS, Catalog
from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.lake import days_between, periods_in
from ml_assets.lib.core.paths import DataPaths
from ml_assets.lib.ingest.landing import ingest_events, ingest_labels
from ml_assets.scenarios.synthetic import SyntheticConfig, write_landing

MARKER = "_bench_world.json"
INGEST_BATCH = timedelta(days=30)


def world_config(size: float, days: int) -> SyntheticConfig:
    return SyntheticConfig(days=days, scale=size)


def world_dir(cache: Path, cfg: SyntheticConfig) -> Path:
    return cache / f"world-d{cfg.days}-s{cfg.scale:g}-seed{cfg.seed}"


def _config_key(cfg: SyntheticConfig) -> dict:
    return {**asdict(cfg), "start": cfg.start.isoformat(), "incidents": []}


def load_world(root: Path, cfg: SyntheticConfig) -> dict | None:
    marker = root / MARKER
    if not marker.exists():
        return None
    info = json.loads(marker.read_text())
    return info if info["config"] == _config_key(cfg) else None


def _batches(start: datetime, end: datetime):
    lo = start
    while lo < end:
        hi = min(lo + INGEST_BATCH, end)
        yield lo, hi
        lo = hi


def ingest_world_events(paths: DataPaths, spec: DatasetSpec, cfg: SyntheticConfig,
                        now: datetime) -> int:
    """Landing files -> ``raw_events`` partitions in 30-day batches, as the ingest asset does
    (validate, quarantine, one atomic Parquet per partition); returns the rows written."""
    table, rows = Catalog(paths.lake, spec.partition_grain).table(RAW_EVENTS), 0
    for lo, hi in _batches(cfg.start, cfg.end):
        valid, _ = ingest_events(paths, spec, periods_in(lo, hi, spec.partition_step), now)
        table.write_many(valid)
        rows += sum(len(t) for t in valid.values())
    return rows


def build_world(root: Path, cfg: SyntheticConfig, spec: DatasetSpec) -> dict:
    """Generate and ingest (or reuse) the world; return its sizes and how long each step took."""
    cached = load_world(root, cfg)
    if cached:
        return {**cached, "cached": True}
    paths = DataPaths(root)
    t0 = time.perf_counter()
    manifest = write_landing(cfg, paths)
    generated = time.perf_counter() - t0
    now = datetime.now(UTC)
    t1 = time.perf_counter()
    ingest_world_events(paths, spec, cfg, now)
    catalog = Catalog(paths.lake, spec.partition_grain)
    for lo, hi in _batches(cfg.start, cfg.end):  # labels join to every ingested event
        valid, _ = ingest_labels(paths, spec, days_between(lo, hi), now)
        catalog.table(RAW_LABELS).write_many(valid)
    info = {"config": _config_key(cfg), "root": str(root), "events": manifest["events"],
            "labels": manifest["labels"], "generation_seconds": generated,
            "ingest_seconds": time.perf_counter() - t1,
            "built_at": datetime.now(UTC).isoformat(timespec="seconds")}
    (root / MARKER).write_text(json.dumps(info, indent=1))
    return {**info, "cached": False}
