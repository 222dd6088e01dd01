"""A feature backfill on Spark: what the Spark driver of ``spark_event_features`` does.

The driver is ``python -m ml_assets.pipes.spark_backfill``, started through Dagster Pipes
(``defs/features/spark.py``); this module is its plain-Python half. Local mode, or a client of a
cluster's master (``ML_ASSETS_SPARK_MASTER=spark://host:7077``): it reads the lake's
``raw_events``/``raw_labels`` Parquet of the window and its look-back, computes the spec's
features with the Spark SQL dialect (``spark_sql.py``) and writes one Parquet file per
partition of ``spark_event_features``.

What it computes comes from the Pipes extras: the spec reference with the SHA-256 of its source
(a spec file changed since the run started is refused, as a model card pins it), the data
directory and the UTC window. Data crosses as Parquet in and Arrow out, never pandas.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

from ml_assets.lib.core.catalog import SPARK_EVENT_FEATURES, Catalog
from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.identifiers import SpecError
from ml_assets.lib.core.lake import periods_in, split_table
from ml_assets.lib.core.paths import DataPaths
from ml_assets.lib.features.build import lookback_inputs
from ml_assets.lib.features.spark_sql import spark_features, spark_session
from ml_assets.specs.loading import load_spec


def pinned_spec(ref: str, sha256: str) -> DatasetSpec:
    """The spec ``ref`` loads, if its source still hashes to ``sha256``.

    Raises
    ------
    SpecError
        The reference does not load (``load_spec``) or its source changed.
    """
    spec = load_spec(ref, "spec_ref")
    if spec.origin is None or spec.origin.sha256 != sha256:
        raise SpecError(f"spec {ref}: its source changed since the run started "
                        f"(SHA-256 {spec.origin.sha256 if spec.origin else None}, "
                        f"the run pinned {sha256})")
    return spec


def split_by_start(table: pa.Table, ts_column: str, starts: list[datetime],
                   step: timedelta) -> dict[datetime, pa.Table]:
    """Zero-copy slices of ``table`` per partition start (``lake.split_table``).

    Parameters
    ----------
    table : pyarrow.Table, shape (n, k)
        Ordered by ``ts_column`` (``spark_features``' order).
    ts_column : str
        A UTC timestamp column.
    starts : list of datetime
        Partition starts (UTC) on the ``step`` grain; every one gets a table, maybe empty.
    step : timedelta
        An hour or a day (``DatasetSpec.partition_step``).

    Raises
    ------
    ValueError
        ``table`` is not ordered by ``ts_column``.
    """
    us = table.column(ts_column).cast(pa.timestamp("us", "UTC")).cast(pa.int64()).to_numpy()
    if len(us) > 1 and np.any(us[1:] < us[:-1]):
        raise ValueError(f"split_by_start: rows are not ordered by {ts_column}")
    return split_table(table, us - us % (step // timedelta(microseconds=1)), starts)


def run_backfill(extras: Mapping[str, str]) -> dict:
    """Compute and write ``spark_event_features`` for one window.

    Parameters
    ----------
    extras : mapping
        ``spec_ref``, ``spec_sha256``, ``data_dir``, ``start``, ``end`` (ISO 8601, UTC) and
        optionally ``master``.

    Returns
    -------
    dict
        ``rows`` (``{partition key: rows written}``), ``spark_seconds`` (query and collect),
        ``session_seconds`` (starting the session, a JVM in local mode), ``spark_master`` and
        ``spark_version``.

    Raises
    ------
    SpecError, MissingUpstreamError
        A changed spec; a ``raw_events`` partition of the look-back missing.
    """
    spec = pinned_spec(extras["spec_ref"], extras["spec_sha256"])
    start, end = (datetime.fromisoformat(extras[k]) for k in ("start", "end"))
    catalog = Catalog(DataPaths(Path(extras["data_dir"])).lake, spec.partition_grain)
    event_files, label_files = lookback_inputs(catalog, spec, start, end)
    t0 = time.perf_counter()
    spark = spark_session(extras.get("master") or None, app="ml_assets_spark_backfill")
    t1 = time.perf_counter()
    try:
        table = spark_features(spark, spec, [str(f) for f in event_files],
                               [str(f) for f in label_files], start, end)
        t2 = time.perf_counter()
        out = catalog.table(SPARK_EVENT_FEATURES)
        parts = split_by_start(table, spec.event_ts, periods_in(start, end, spec.partition_step),
                               spec.partition_step)
        out.write_many(parts)
        return {"rows": {out.key(p): t.num_rows for p, t in parts.items()},
                "spark_seconds": round(t2 - t1, 3), "session_seconds": round(t1 - t0, 3),
                "spark_master": spark.sparkContext.master, "spark_version": spark.version}
    finally:
        spark.stop()
