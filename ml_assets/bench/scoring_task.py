"""Batch scoring end to end (features read from the lake, predict, every row tagged with its
version, atomic Parquet per partition as one batch — what ``batch_scores`` does) against bare
``predict_proba`` on an in-memory array, with the same model and thread cap. The write is timed
at both partition grains a spec can choose: hourly (one file per hour, what the demo writes)
and daily."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from ml_assets.lib.core.catalog import RAW_LABELS, Catalog
from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.lake import (
    DAY,
    DAY_FILE_FORMAT,
    HOUR,
    HOUR_FILE_FORMAT,
    connect,
    parquet_relation,
    periods_in,
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
    X = features[spec.feature_names].to_numpy(dtype="float64")
    with threadpool_limits(limits=threads, user_api="openmp"):
        model.predict_proba(X[:1000])  # warm both sides alike: OpenMP pool, predictor set-up
    score_s, scores = _timed(lambda: score_frame(features, spec, models, datetime.now(UTC),
                                                 "bench", threads))
    written = {}
    for grain, step, fmt in (("hourly", HOUR, HOUR_FILE_FORMAT), ("daily", DAY, DAY_FILE_FORMAT)):
        def write(step=step, fmt=fmt, grain=grain) -> int:
            parts = split_by_period(scores, spec.event_ts, periods_in(cfg.start, cfg.end, step),
                                    step)
            write_parquet_files_atomic((out / grain / f"{p.strftime(fmt)}.parquet", rows)
                                       for p, rows in parts.items())
            return len(parts)
        written[grain] = _timed(write)
    with threadpool_limits(limits=threads, user_api="openmp"):
        bare_s, proba = _timed(lambda: model.predict_proba(X)[:, 1])
    end_to_end = {g: read_s + score_s + w for g, (w, _) in written.items()}
    return {
        "rows": len(features), "features": len(spec.feature_names),
        "partitions_written": {g: n for g, (_, n) in written.items()},
        "training_rows": training_rows, "training_seconds": train_s,
        "seconds": {"read": read_s, "predict_and_tag": score_s,
                    **{f"atomic_write_{g}": w for g, (w, _) in written.items()},
                    **{f"end_to_end_{g}": t for g, t in end_to_end.items()},
                    "bare_predict_proba": bare_s},
        "rows_per_second_bare": len(features) / bare_s,
        "overhead_vs_bare_predict": {g: t / bare_s for g, t in end_to_end.items()},
        "scores_match_bare": bool(np.array_equal(scores["score"].to_numpy(), proba)),
        "every_row_has_version": bool(scores["model_version"].notna().all()),
    }
