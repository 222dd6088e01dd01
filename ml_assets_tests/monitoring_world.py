"""A small scored world written straight into a lake through the plain modules (no Dagster):
hourly features, events and scores, daily labels and a registered champion. Building it this
way takes seconds, where materializing hundreds of hourly partitions takes minutes."""

import getpass
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from ml_assets.lib import artifacts
from ml_assets.lib.datasets import DatasetSpec
from ml_assets.lib.feature_sql import compute_features, labels_with_entities_sql
from ml_assets.lib.lake import connect
from ml_assets.lib.model_building import train_candidate
from ml_assets.lib.paths import DAY_FILE_FORMAT, HOUR_FILE_FORMAT, DataPaths
from ml_assets.lib.registry import Registry
from ml_assets.lib.scoring import load_live_model, score_frame
from ml_assets.lib.splits import assign_splits
from ml_assets.lib.synthetic import SyntheticConfig, generate_all
from ml_assets.lib.training import TrainingWindow, reference_rows, split_frame


def synthetic_features(spec: DatasetSpec, cfg: SyntheticConfig) -> tuple[pd.DataFrame, pd.DataFrame,
                                                                       pd.DataFrame]:
    """(events, labels and early reports with event time and keys, point-in-time features)
    for the whole config."""
    events, labels, reports = generate_all(cfg)
    con = connect(1)
    con.register("events_t", events)
    con.register("labels_t", labels)
    lb = f"({labels_with_entities_sql(spec, 'events_t', 'labels_t')})"
    features = compute_features(con, spec, "events_t", lb, cfg.start, cfg.end)
    ev = events.to_pandas()
    lab, rep = (t.to_pandas().merge(ev[[spec.event_id, spec.event_ts, *spec.entity_keys]],
                                    on=spec.event_id) for t in (labels, reports))
    return ev, lab, rep, features


def _write_by(df: pd.DataFrame, directory: Path, ts: str, freq: str, fmt: str,
              lo: datetime, hi: datetime) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    keys = df[ts].dt.floor(freq)
    groups = dict(tuple(df.groupby(keys))) if len(df) else {}
    for stamp in pd.date_range(lo, hi, freq=freq, inclusive="left"):
        part = groups.get(stamp, df.iloc[0:0])
        part.reset_index(drop=True).to_parquet(directory / f"{stamp.strftime(fmt)}.parquet",
                                               index=False)


@dataclass
class World:
    paths: DataPaths
    spec: DatasetSpec
    cfg: SyntheticConfig
    champion: str
    scored_from: datetime  # first scored day

    def day(self, i: int) -> datetime:
        return self.cfg.start + timedelta(days=i)


def build_world(root: Path, spec: DatasetSpec, cfg: SyntheticConfig, train_days: tuple[int, int],
                labels_until: int | None = None) -> World:
    """Champion trained on ``train_days`` [a, b) with labels known at day b; every later day
    scored. Label files are written up to day ``labels_until`` (default: the end)."""
    paths = DataPaths(root).ensure()
    events, labels, reports, features = synthetic_features(spec, cfg)
    a, b = (cfg.start + timedelta(days=d) for d in train_days)
    end, ts = cfg.end, spec.event_ts
    label_end = cfg.start + timedelta(days=labels_until) if labels_until is not None else end
    _write_by(features, paths.lake / "event_features", ts, "h", HOUR_FILE_FORMAT, a, end)
    _write_by(events[events[ts] >= b], paths.lake / "raw_events", ts, "h", HOUR_FILE_FORMAT, b, end)
    for feed, rows in (("raw_labels", labels), ("raw_early_reports", reports)):
        _write_by(rows[rows[spec.label_ts] < label_end], paths.lake / feed, spec.label_ts, "D",
                  DAY_FILE_FORMAT, cfg.start, label_end)

    window = TrainingWindow(a, b, b)
    known = labels[labels[spec.label_ts] < b][[spec.event_id, spec.label, spec.label_ts]]
    train = features[(features[ts] >= a) & (features[ts] < b)].merge(known, on=spec.event_id)
    train = train.sort_values(spec.event_id).reset_index(drop=True)
    train[spec.label] = train[spec.label].astype("int32")
    splits = pd.DataFrame({spec.event_id: train[spec.event_id],
                           "split": assign_splits(train[spec.event_id], spec.model.split_salt,
                                                  spec.model.split_fractions)})
    ref = reference_rows(split_frame(train, splits, spec)["test"], spec)
    card = train_candidate(paths, spec, train, splits, ref, window, artifacts.dataset_sha256(train))
    registry = Registry(paths.control_db)
    version, _ = registry.register_model(spec.model_name, card, actor=getpass.getuser())
    card = registry.get_model(version)
    scores = score_frame(features[features[ts] >= b], spec,
                         [("champion", card, load_live_model(paths, card))],
                         datetime.now(UTC), features_ref="test")
    _write_by(scores, paths.lake / "batch_scores", ts, "h", HOUR_FILE_FORMAT, b, end)
    return World(paths, spec, cfg, version, b)


def corrupt_features(world: World, day: int, column: str, share: float, seed: int = 0) -> None:
    """Blank ``share`` of a feature's values on one day, in the lake, hour file by hour file."""
    rng = np.random.default_rng(seed)
    start = world.day(day)
    for h in range(24):
        path = world.paths.lake / "event_features" / \
            f"{(start + timedelta(hours=h)).strftime(HOUR_FILE_FORMAT)}.parquet"
        df = pd.read_parquet(path)
        df.loc[rng.random(len(df)) < share, column] = np.nan
        df.to_parquet(path, index=False)
