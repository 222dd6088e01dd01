"""A small world for the shadow, rollout and document tests, written straight into a lake
through the plain modules (seconds, not a Dagster run per hour).

fraud-v1 (trained on days 0-30) is champion. Four candidates were trained as of day 38 and
every model scored every event from day 30 on, so any of them can be made the challenger:

- ``identical``: fraud-v1's model re-packaged (other bytes, same predictions);
- ``honest``: the same recipe on later data;
- ``leaky``: trained with a feature computed from the label itself;
- ``bad``: trained on shuffled labels (catches no fraud).

Labels are known up to the end (day 75), so stage comparisons after day 45 are measurable.
"""

import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

from dataclasses import replace  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ml_assets.lib import artifacts  # noqa: E402
from ml_assets.lib.model_building import train_candidate  # noqa: E402
from ml_assets.lib.paths import DAY_FILE_FORMAT, HOUR_FILE_FORMAT, DataPaths  # noqa: E402
from ml_assets.lib.registry import Registry  # noqa: E402
from ml_assets.lib.scoring import load_live_model, score_frame  # noqa: E402
from ml_assets.lib.splits import assign_splits  # noqa: E402
from ml_assets.lib.synthetic import SyntheticConfig  # noqa: E402
from ml_assets.lib.training import TrainingWindow, reference_rows, split_frame  # noqa: E402
from ml_assets.specs.fraud import FRAUD_SPEC  # noqa: E402
from ml_assets_tests.monitoring_world import synthetic_features  # noqa: E402

SPEC = replace(FRAUD_SPEC, model=replace(FRAUD_SPEC.model, max_iter=80))  # fast fits
CFG = SyntheticConfig(seed=5, days=75, scale=0.15)
CHAMPION_CUTOFF, CANDIDATE_CUTOFF = 30, 38
LEAK_FEATURE = "card_chargebacks_30d"
_BASE: Path | None = None
_VERSIONS: dict[str, str] = {}


def day(i: int) -> datetime:
    return CFG.start + timedelta(days=i)


@dataclass
class ShadowWorld:
    paths: DataPaths
    versions: dict[str, str]  # candidate kind -> version; "champion" -> fraud-v1

    @property
    def registry(self) -> Registry:
        return Registry(self.paths.control_db)

    def use_challenger(self, kind: str) -> str:
        version = self.versions[kind]
        self.registry.move_aliases(SPEC.model_name, {"challenger": version}, "tests",
                                   "alias:challenger", f"test challenger: {kind}")
        return version


def _write_by(df: pd.DataFrame, directory: Path, ts: str, freq: str, fmt: str, lo, hi) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    groups = dict(tuple(df.groupby(df[ts].dt.floor(freq))))
    for stamp in pd.date_range(lo, hi, freq=freq, inclusive="left"):
        groups.get(stamp, df.iloc[0:0]).reset_index(drop=True).to_parquet(
            directory / f"{stamp.strftime(fmt)}.parquet", index=False)


def _train(paths, registry, frame: pd.DataFrame, cutoff: int, seed: int) -> str:
    window = TrainingWindow(CFG.start, day(cutoff), day(cutoff))
    splits = pd.DataFrame({SPEC.event_id: frame[SPEC.event_id],
                           "split": assign_splits(frame[SPEC.event_id], SPEC.model.split_salt,
                                                  SPEC.model.split_fractions)})
    ref = reference_rows(split_frame(frame, splits, SPEC)["test"], SPEC)
    card = train_candidate(paths, SPEC, frame, splits, ref, window,
                           artifacts.dataset_sha256(frame), seed=seed)
    version, _ = registry.register_model(SPEC.model_name, card, actor="tests")
    return version


def _repackaged(paths: DataPaths, registry: Registry, version: str) -> str:
    """The same fitted model in a new artifact: identical predictions, a new version."""
    card = registry.get_model(version)
    bundle = {**load_live_model(paths, card), "repackaged_from": version}
    sha, path = artifacts.store_model(paths.artifacts, bundle)
    card = {k: v for k, v in card.items() if k not in ("version", "registered_at")}
    card |= {"artifact_sha256": sha, "artifact_path": str(path.relative_to(paths.root))}
    return registry.register_model(SPEC.model_name, card, actor="tests")[0]


def build(root: Path) -> dict[str, str]:
    paths = DataPaths(root).ensure()
    events, labels, _, features = synthetic_features(SPEC, CFG)
    ts = SPEC.event_ts
    lo = day(CHAMPION_CUTOFF)
    _write_by(features, paths.lake / "event_features", ts, "h", HOUR_FILE_FORMAT, lo, CFG.end)
    _write_by(events[events[ts] >= lo], paths.lake / "raw_events", ts, "h", HOUR_FILE_FORMAT,
              lo, CFG.end)
    _write_by(labels, paths.lake / "raw_labels", SPEC.label_ts, "D", DAY_FILE_FORMAT,
              CFG.start, CFG.end)

    def training(cutoff: int) -> pd.DataFrame:
        known = labels[labels[SPEC.label_ts] < day(cutoff)][[SPEC.event_id, SPEC.label]]
        f = features[features[ts] < day(cutoff)].merge(known, on=SPEC.event_id)
        f[SPEC.label] = f[SPEC.label].astype("int32")
        return f.sort_values(SPEC.event_id).reset_index(drop=True)

    registry = Registry(paths.control_db)
    seed = SPEC.model.seed
    versions = {"champion": _train(paths, registry, training(CHAMPION_CUTOFF), CHAMPION_CUTOFF,
                                   seed)}
    later = training(CANDIDATE_CUTOFF)
    versions["identical"] = _repackaged(paths, registry, versions["champion"])
    versions["honest"] = _train(paths, registry, later, CANDIDATE_CUTOFF, seed)
    leaky = later.assign(**{LEAK_FEATURE: later[SPEC.label].astype("float64") * 3})
    versions["leaky"] = _train(paths, registry, leaky, CANDIDATE_CUTOFF, seed)
    shuffled = later.assign(**{SPEC.label: np.random.default_rng(0).permutation(
        later[SPEC.label].to_numpy())})
    versions["bad"] = _train(paths, registry, shuffled, CANDIDATE_CUTOFF, seed)

    roles = [("champion", versions["champion"])] + [
        ("challenger", v) for k, v in versions.items() if k != "champion"]
    models = [(r, registry.get_model(v), load_live_model(paths, registry.get_model(v)))
              for r, v in roles]
    scored = features[features[ts] >= lo]
    scores = score_frame(scored, SPEC, models, datetime.now(UTC), features_ref="tests")
    _write_by(scores, paths.lake / "batch_scores", ts, "h", HOUR_FILE_FORMAT, lo, CFG.end)
    return versions


def world_copy(dest: Path) -> ShadowWorld:
    """A private copy of the session's world (built on first use)."""
    global _BASE
    if _BASE is None:
        _BASE = Path(tempfile.mkdtemp(prefix="shadow_world_")) / "world"
        _VERSIONS.update(build(_BASE))
    shutil.copytree(_BASE, dest)
    return ShadowWorld(DataPaths(dest), dict(_VERSIONS))
