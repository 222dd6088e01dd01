"""Event ingest at data speed, without Dagster: an export of the world's events goes through
``lib.ingest.importing.land`` (what ``ml-assets land`` runs: export -> daily landing files),
then ``lib.ingest.landing.ingest_events`` + one atomic write per partition (what the
``raw_events`` asset runs: landing files -> ``raw_events``), into a fresh data directory."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

from ml_assets.lib.core.catalog import RAW_EVENTS, Catalog
from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.identifiers import quote
from ml_assets.lib.core.lake import connect, parquet_relation
from ml_assets.lib.core.paths import DataPaths
from ml_assets.lib.ingest.importing import land
from ml_assets.scenarios.synthetic import SyntheticConfig

from .world import ingest_world_events


def ingest_task(root: Path, cfg: SyntheticConfig, spec: DatasetSpec, work: Path) -> dict:
    """Land and ingest the world's events again under ``work``.

    Returns
    -------
    dict
        ``rows`` exported, ``rows_ingested``, ``seconds`` per step (``land``, ``ingest``) and
        rows per second of each; the export itself is not timed.
    """
    export, fresh = work / "export" / "events.parquet", DataPaths(work / "data")
    export.parent.mkdir(parents=True)
    events = Catalog(DataPaths(root).lake).table(RAW_EVENTS).files()
    connect().execute(f"COPY (SELECT {', '.join(map(quote, spec.event_columns))} FROM "
                      f"{parquet_relation(events)}) TO '{export}' (FORMAT parquet)")
    rows = connect().execute(f"SELECT count(*) FROM '{export}'").fetchone()[0]
    t0 = time.perf_counter()
    land(fresh, spec, {"events": [str(export)]})
    t1 = time.perf_counter()
    ingested = ingest_world_events(fresh, spec, cfg, datetime.now(UTC))
    t2 = time.perf_counter()
    return {"rows": rows, "rows_ingested": ingested,
            "seconds": {"land": t1 - t0, "ingest": t2 - t1},
            "rows_per_second": {"land": rows / (t1 - t0), "ingest": ingested / (t2 - t1),
                                "land_and_ingest": ingested / (t2 - t0)}}
