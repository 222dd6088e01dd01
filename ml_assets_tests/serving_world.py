"""A small fraud world for the serving tests, built with the plain lib modules (no Dagster
run: seconds, not minutes) and copied per test module, because those tests flip aliases,
tamper with artifacts and delete files.

State: raw events, labels and features for 40 days; fraud-v1 (trained at day 25) is
``previous``, fraud-v2 (day 40) ``champion``, fraud-v3 (day 40, another seed) ``challenger``;
all three scored every event from day 25 on, as the hourly batch does."""

import os
import shutil
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

from ml_assets.lib.artifacts import dataset_sha256  # noqa: E402
from ml_assets.lib.feature_build import build_features, split_by_hour  # noqa: E402
from ml_assets.lib.ingest import ingest_events, ingest_labels  # noqa: E402
from ml_assets.lib.lake import days_between, hours_between, read_parquet_files  # noqa: E402
from ml_assets.lib.model_building import train_candidate  # noqa: E402
from ml_assets.lib.paths import DataPaths, write_parquet_atomic  # noqa: E402
from ml_assets.lib.registry import Registry  # noqa: E402
from ml_assets.lib.rollback import promote  # noqa: E402
from ml_assets.lib.scoring import live_versions, load_live_model, score_frame  # noqa: E402
from ml_assets.lib.splits import assign_splits  # noqa: E402
from ml_assets.lib.synthetic import SyntheticConfig, write_landing  # noqa: E402
from ml_assets.lib.training import (  # noqa: E402
    TrainingWindow,
    build_training_set,
    reference_rows,
    split_frame,
)
from ml_assets.specs.fraud import FRAUD_SPEC  # noqa: E402

CFG = SyntheticConfig(seed=11, days=40, scale=0.05)
SPEC = FRAUD_SPEC
SCORED_FROM = CFG.start + timedelta(days=25)
_BASE: Path | None = None


def _key(h: datetime, fmt: str) -> str:
    return h.strftime(fmt)


def _train(paths: DataPaths, registry: Registry, as_of: datetime, seed: int) -> str:
    window = TrainingWindow(CFG.start, as_of, as_of)
    training = build_training_set(paths, SPEC, window)
    splits = training[[SPEC.event_id]].assign(
        split=assign_splits(training[SPEC.event_id], SPEC.model.split_salt,
                            SPEC.model.split_fractions))
    reference = reference_rows(split_frame(training, splits, SPEC)["test"], SPEC)
    card = train_candidate(paths, SPEC, training, splits, reference, window,
                           dataset_sha256(training), seed=seed)
    version, _ = registry.register_model(SPEC.model_name, card, actor="tests")
    return version


def score_range(paths: DataPaths, registry: Registry, start: datetime, end: datetime) -> None:
    """What the hourly batch_scores asset does: every live model scores every event."""
    models = [(role, registry.get_model(v), load_live_model(paths, registry.get_model(v)))
              for role, v in live_versions(registry, SPEC)]
    hours = hours_between(start, end)
    feats = read_parquet_files([paths.lake_file("event_features", _key(h, "%Y-%m-%d-%H:00"))
                                for h in hours])
    scores = score_frame(feats, SPEC, models, datetime.now(UTC), features_ref="tests")
    for h, df in split_by_hour(scores, SPEC.event_ts, hours).items():
        write_parquet_atomic(df, paths.lake_file("batch_scores", _key(h, "%Y-%m-%d-%H:00")))


def build_world(root: Path) -> DataPaths:
    paths = DataPaths(root).ensure()
    write_landing(CFG, paths)
    now = datetime.now(UTC)
    events, _ = ingest_events(paths, SPEC, hours_between(CFG.start, CFG.end), now)
    for h, df in events.items():
        write_parquet_atomic(df, paths.lake_file("raw_events", _key(h, "%Y-%m-%d-%H:00")))
    labels, _ = ingest_labels(paths, SPEC, days_between(CFG.start, CFG.end), now)
    for d, df in labels.items():
        write_parquet_atomic(df, paths.lake_file("raw_labels", _key(d, "%Y-%m-%d")))
    for lo, hi, chunk in build_features(paths, SPEC, CFG.start, CFG.end, threads=1):
        for h, df in split_by_hour(chunk, SPEC.event_ts, hours_between(lo, hi)).items():
            write_parquet_atomic(df, paths.lake_file("event_features", _key(h, "%Y-%m-%d-%H:00")))
    registry = Registry(paths.control_db)
    _train(paths, registry, SCORED_FROM, SPEC.model.seed)
    v2 = _train(paths, registry, CFG.end, SPEC.model.seed)
    promote(registry, paths, SPEC, v2, actor="tests", reason="world: v1 becomes previous")
    _train(paths, registry, CFG.end, SPEC.model.seed + 1)  # challenger
    score_range(paths, registry, SCORED_FROM, CFG.end)
    return paths


def world_copy(dest: Path) -> DataPaths:
    """A private copy of the session's world (built on first use)."""
    global _BASE
    if _BASE is None:
        _BASE = Path(tempfile.mkdtemp(prefix="serving_world_")) / "world"
        build_world(_BASE)
    shutil.copytree(_BASE, dest)
    return DataPaths(dest)
