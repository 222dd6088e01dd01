"""Event ingest at data speed, without Dagster: an export of the world's events goes through
``lib.ingest.importing.land`` (what ``ml-assets land`` runs: export -> daily landing files),
then ``lib.ingest.landing.ingest_events`` + one batch of atomic partition writes (what the
``raw_events`` asset runs: landing files -> ``raw_events``), into a fresh data directory, once
with hourly and once with daily partitions."""

from __future__ import annotations

import dataclasses
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

from ml_assets.lib.core.catalog import RAW_EVENTS, Catalog
from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.identifiers import quote
from ml_assets.lib.core.lake import connect, parquet_relation
from ml_assets.lib.core.paths import DataPaths
from ml_assets.lib.ingest.importing import land
from ml_assets.lib.ingest.landing import ingest_events
from ml_assets.scenarios.synthetic import SyntheticConfig

from .world import ingest_world_events


def _one_hour_runs(paths: DataPaths, spec: DatasetSpec, cfg: SyntheticConfig) -> dict:
    """Seconds of one hourly ingest run (validate, duplicate-id check across the lake, write)
    on the full lake, twice: the first reads the id ranges of the files the range ingest
    wrote last (``lib.core.column_ranges``), the next is what every later hourly run pays.
    Before that cache the check opened every partition (0.5 ms each) on every run."""
    table = Catalog(paths.lake, spec.partition_grain).table(RAW_EVENTS)
    hour = table.latest()
    out = {}
    for run in ("first", "next"):
        t0 = time.perf_counter()
        valid, _ = ingest_events(paths, spec, [hour], datetime.now(UTC))
        table.write_many(valid)
        out[f"hourly_run_{run}"] = time.perf_counter() - t0
    return out


def ingest_task(root: Path, cfg: SyntheticConfig, spec: DatasetSpec, work: Path) -> dict:
    """Land the world's events again under ``work``, then ingest them at each partition grain
    (hourly: one ``raw_events`` file per hour, what the demo writes; daily).

    Returns
    -------
    dict
        ``rows`` exported, ``rows_ingested`` and ``partitions`` per grain, ``seconds`` per step
        (``land``, ``ingest_hourly``, ``ingest_daily``, and ``hourly_run_first``/``_next``:
        one hourly run on the full hourly lake) and rows per second of each; the export itself
        is not timed.
    """
    export, fresh = work / "export" / "events.parquet", DataPaths(work / "data")
    export.parent.mkdir(parents=True)
    events = Catalog(DataPaths(root).lake).table(RAW_EVENTS).files()
    connect().execute(f"COPY (SELECT {', '.join(map(quote, spec.event_columns))} FROM "
                      f"{parquet_relation(events)}) TO '{export}' (FORMAT parquet)")
    rows = connect().execute(f"SELECT count(*) FROM '{export}'").fetchone()[0]
    t0 = time.perf_counter()
    land(fresh, spec, {"events": [str(export)]})
    seconds, ingested, partitions = {"land": time.perf_counter() - t0}, {}, {}
    for grain in ("hourly", "daily"):  # runner.GRAINS
        data = DataPaths(work / grain)
        shutil.copytree(fresh.landing, data.landing)  # the same landing files, a fresh lake
        grained = dataclasses.replace(spec, partition_grain=grain)
        t0 = time.perf_counter()
        ingested[grain] = ingest_world_events(data, grained, cfg, datetime.now(UTC))
        seconds[f"ingest_{grain}"] = time.perf_counter() - t0
        partitions[grain] = len(Catalog(data.lake, grain).table(RAW_EVENTS).files())
        if grain == "hourly":
            seconds.update(_one_hour_runs(data, grained, cfg))
    return {"rows": rows, "rows_ingested": ingested, "partitions": partitions,
            "seconds": seconds,
            "rows_per_second": {"land": rows / seconds["land"],
                                **{f"ingest_{g}": n / seconds[f"ingest_{g}"]
                                   for g, n in ingested.items()}}}
