"""Batch scoring end to end (features read from the lake, predict, every row tagged with its
version, atomic Parquet per hourly partition — what ``batch_scores`` does) against bare
``predict_proba`` on an in-memory array, with the same model and thread cap."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from ml_assets.lib.core.catalog import RAW_LABELS, Catalog
from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.lake import (
    HOUR,
    HOUR_FILE_FORMAT,
    connect,
    hours_between,
    parquet_relation,
    read_parquet_files,
)
from ml_assets.lib.core.paths import DataPaths, write_parquet_files_atomic
from ml_assets.lib.features.build import split_by_period
from ml_assets.lib.scoring.batch import score_frame
from ml_assets.lib.training.train import fit_model
from ml_assets.scenarios.synthetic import SyntheticConfig


def _training_rows(root: Path, feature_files: list[Path], spec: DatasetSpec,
                   cfg: SyntheticConfig):
    """Labeled feature rows of the default training window (the last 60 days)."""
    start = cfg.end - timedelta(days=spec.model.training_window_days)
    labels = Catalog(DataPaths(root).lake).table(RAW_LABELS).files()
    return connect().execute(
        f"SELECT f.*, l.{spec.label} FROM {parquet_relation(feature_files)} f JOIN "
        f"(SELECT {spec.event_id}, {spec.label} FROM {parquet_relation(labels)}) l "
        f"USING ({spec.event_id}) WHERE f.{spec.event_ts} >= ? ORDER BY f.{spec.event_id}",
        [start]).df()


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def scoring_task(root: Path, cfg: SyntheticConfig, spec: DatasetSpec, feature_files: list[Path],
                 out: Path, threads: int) -> dict:
    train = _training_rows(root, feature_files, spec, cfg)
    t0 = time.perf_counter()
    model = fit_model(spec, train, spec.model.seed, threads)
    train_s, training_rows = time.perf_counter() - t0, len(train)
    del train  # the training frame is not part of scoring's memory
    card = {"version": "bench-v1", "feature_schema_version": spec.schema_version}
    models = [("champion", card, {"model": model,
                                  "decision_threshold": spec.model.decision_threshold})]

    read_s, features = _timed(lambda: read_parquet_files(feature_files))
    score_s, scores = _timed(lambda: score_frame(features, spec, models, datetime.now(UTC),
                                                 "bench", threads))
    hours = hours_between(cfg.start, cfg.end)

    def write() -> int:
        parts = split_by_period(scores, spec.event_ts, hours, HOUR)
        write_parquet_files_atomic((out / f"{hour.strftime(HOUR_FILE_FORMAT)}.parquet", rows)
                                   for hour, rows in parts.items())
        return len(hours)

    write_s, files = _timed(write)
    X = features[spec.feature_names].to_numpy(dtype="float64")
    with threadpool_limits(limits=threads, user_api="openmp"):
        bare_s, proba = _timed(lambda: model.predict_proba(X)[:, 1])
    end_to_end = read_s + score_s + write_s
    return {
        "rows": len(features), "features": len(spec.feature_names), "partitions_written": files,
        "training_rows": training_rows, "training_seconds": train_s,
        "seconds": {"read": read_s, "predict_and_tag": score_s, "atomic_write": write_s,
                    "end_to_end": end_to_end, "bare_predict_proba": bare_s},
        "rows_per_second_end_to_end": len(features) / end_to_end,
        "rows_per_second_bare": len(features) / bare_s,
        "overhead_vs_bare_predict": end_to_end / bare_s,
        "scores_match_bare": bool(np.array_equal(scores["score"].to_numpy(), proba)),
        "every_row_has_version": bool(scores["model_version"].notna().all()),
    }
