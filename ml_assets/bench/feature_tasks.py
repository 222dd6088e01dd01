"""The two sides of the feature-build comparison, each run in its own subprocess, and the value
comparison of their outputs. Both sides read the same lake and write their features to Parquet.
"""

from __future__ import annotations

import time
from pathlib import Path

import duckdb
import pandas as pd

from ml_assets.lib.core.catalog import RAW_EVENTS, RAW_LABELS, Catalog
from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.lake import quiet
from ml_assets.lib.core.paths import DataPaths, write_parquet_atomic
from ml_assets.lib.features.build import build_features
from ml_assets.lib.ingest.landing import AVAILABLE_AT, recorded_or_on_time
from ml_assets.scenarios.synthetic import SyntheticConfig

from .pandas_features import pandas_features

TOLERANCE = 1e-9  # |a - b| <= TOLERANCE * max(1, |b|)


def ml_assets_side(root: Path, cfg: SyntheticConfig, spec: DatasetSpec, out: Path,
                   threads: int) -> dict:
    """lib.feature_build over the lake: 30-day chunks with look-back, one Parquet per chunk."""
    out.mkdir(parents=True, exist_ok=True)
    t0, rows, chunks = time.perf_counter(), 0, 0
    for _lo, _hi, df in build_features(DataPaths(root), spec, cfg.start, cfg.end,
                                       threads=threads):
        write_parquet_atomic(df, out / f"chunk-{chunks:04d}.parquet")
        rows, chunks = rows + len(df), chunks + 1
    return {"rows": rows, "chunks": chunks, "seconds": time.perf_counter() - t0}


def spark_side(root: Path, cfg: SyntheticConfig, spec: DatasetSpec, threads: int) -> dict:
    """The same features on Spark (``spark_sql.spark_features``, local mode with ``threads``
    cores) over the same lake files, the whole window in one query; the session start (a JVM)
    is timed apart from the query and the Arrow collect.

    Raises
    ------
    RuntimeError
        pyspark or Java is missing (``spark_session``).
    """
    from ml_assets.lib.features.spark_sql import spark_features, spark_session

    catalog = Catalog(DataPaths(root).lake)
    t0 = time.perf_counter()
    spark = spark_session(f"local[{threads}]", app="ml_assets_bench")
    t1 = time.perf_counter()
    try:
        table = spark_features(spark, spec, [str(f) for f in catalog.table(RAW_EVENTS).files()],
                               [str(f) for f in catalog.table(RAW_LABELS).files()],
                               cfg.start, cfg.end)
    finally:
        t2 = time.perf_counter()
        spark.stop()
    return {"rows": table.num_rows, "seconds": t2 - t1, "session_seconds": t1 - t0}


def pandas_side(root: Path, spec: DatasetSpec, out: Path) -> dict:
    """The whole history read into pandas, features computed, one Parquet written."""
    t0 = time.perf_counter()
    catalog = Catalog(DataPaths(root).lake)
    events = pd.read_parquet(catalog.table(RAW_EVENTS).dir)
    labels = pd.read_parquet(catalog.table(RAW_LABELS).dir).rename(
        columns={spec.label_ts: "label_ts", spec.label: "label"})
    labels[AVAILABLE_AT] = recorded_or_on_time(spec, labels["label_ts"], labels.get(AVAILABLE_AT))
    features, per_feature = pandas_features(events, labels, spec)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_parquet_atomic(features, out)
    return {"rows": len(features), "seconds": time.perf_counter() - t0,
            "feature_seconds": per_feature}


def _null_if_nan(expr: str) -> str:
    return f"CASE WHEN isnan({expr}) THEN NULL ELSE {expr} END"


def compare_outputs(ours: list[Path], theirs: Path, spec: DatasetSpec) -> dict:
    """Join both outputs on the event id; per feature: rows out of tolerance (a null on one
    side only counts), the largest absolute difference, and whether the row sets match."""
    con = quiet(duckdb.connect())
    eid = spec.event_id
    listed = ", ".join(f"'{p}'" for p in ours)
    con.execute(f"CREATE TEMP VIEW a AS SELECT * FROM read_parquet([{listed}])")
    con.execute(f"CREATE TEMP VIEW b AS SELECT * FROM read_parquet('{theirs}')")
    parts = []
    for name in spec.feature_names:
        x, y = _null_if_nan(f'a."{name}"'), _null_if_nan(f'b."{name}"')
        parts.append(
            f"SUM(CASE WHEN ({x}) IS NULL AND ({y}) IS NULL THEN 0 "
            f"WHEN ({x}) IS NULL OR ({y}) IS NULL THEN 1 "
            f"WHEN abs(({x}) - ({y})) <= {TOLERANCE} * greatest(1, abs({y})) THEN 0 ELSE 1 END)")
        parts.append(f"COALESCE(MAX(abs(({x}) - ({y}))), 0)")
    row = con.execute(
        f"SELECT (SELECT COUNT(*) FROM a), (SELECT COUNT(*) FROM b), COUNT(*), {', '.join(parts)} "
        f'FROM a JOIN b USING ("{eid}")').fetchone()
    n_a, n_b, joined = row[:3]
    per_feature = {name: {"mismatched_rows": int(row[3 + 2 * i]),
                          "max_abs_diff": float(row[4 + 2 * i])}
                   for i, name in enumerate(spec.feature_names)}
    identical = n_a == n_b == joined and all(v["mismatched_rows"] == 0
                                             for v in per_feature.values())
    return {"identical": bool(identical), "tolerance": TOLERANCE, "rows_ml_assets": int(n_a),
            "rows_pandas": int(n_b), "rows_joined": int(joined),
            "max_abs_diff": max(v["max_abs_diff"] for v in per_feature.values()),
            "features": per_feature}
