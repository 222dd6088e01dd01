"""Training set as of a cutoff (label delay), seeded determinism across processes, and the
model card fields every registered version must carry."""

import json
import subprocess
import sys
from datetime import timedelta

import pandas as pd
import pytest

from ml_assets.lib.core.lake import read_parquet_files
from ml_assets.lib.core.registry import Registry
from ml_assets.lib.training.train import TrainingWindow, build_training_set


def _labels(paths) -> pd.DataFrame:
    return read_parquet_files(sorted((paths.lake / "raw_labels").glob("*.parquet")))


@pytest.mark.parametrize("cutoff_day", [14, 20, 30])
def test_training_set_holds_only_labels_known_at_the_cutoff_and_no_unlabeled_rows(fraud_world, cutoff_day):
    paths, spec, cfg = fraud_world["paths"], fraud_world["spec"], fraud_world["cfg"]
    cutoff = cfg.start + timedelta(days=cutoff_day)
    window = TrainingWindow(start=cfg.start, end=cutoff, label_cutoff=cutoff)
    ts = build_training_set(paths, spec, window)
    assert len(ts) > 0
    assert (ts["label_ts"] < cutoff).all()
    assert ts["label"].notna().all() and set(ts["label"].unique()) <= {0, 1}
    assert ts["event_id"].is_unique
    # nothing lost: exactly the labeled events of the window whose label was known in time,
    # i.e. dated and available (its file ingested) before the cutoff
    labels = _labels(paths)
    known = labels[(labels["label_ts"] < cutoff) & (labels["available_at"] < cutoff)
                   & (labels["event_ts"] >= cfg.start) & (labels["event_ts"] < cutoff)]
    assert sorted(ts["event_id"]) == sorted(known["event_id"])
    # the previous day's labels are ingested at 02:30 after the cutoff: not known yet
    assert not known["label_ts"].ge(cutoff - timedelta(days=1)).any()
    assert labels["label_ts"].between(cutoff - timedelta(days=1), cutoff,
                                      inclusive="left").any()


def test_an_earlier_cutoff_never_sees_a_later_label(fraud_world):
    paths, spec, cfg = fraud_world["paths"], fraud_world["spec"], fraud_world["cfg"]
    end = cfg.start + timedelta(days=20)
    early = build_training_set(paths, spec, TrainingWindow(cfg.start, end, end))
    late = build_training_set(paths, spec, TrainingWindow(cfg.start, end, end + timedelta(days=9)))
    assert set(early["event_id"]) < set(late["event_id"])  # later labels only add rows


def test_registered_models_carry_every_card_field(fraud_world):
    registry = Registry(fraud_world["paths"].control_db)
    models = registry.list_models("fraud")
    assert [m["version"] for m in models] == ["fraud-v1", "fraud-v2"]
    for m in models:
        for field in ("artifact_sha256", "dataset_sha256", "label_cutoff", "seed",
                      "feature_schema_version", "code_commit", "code_dirty", "lockfile_sha256"):
            assert m[field] not in (None, ""), field
        assert set(m["training_window"]) == {"start", "end", "warm_start", "warm"}
        # 30 days of history against a 60-day warm-up: the card says the window is not warm
        assert m["training_window"]["warm"] is False
        for split in ("held_out", "frozen_reference"):
            assert 0.5 < m["metrics"][split]["auc"] <= 1.0
        # the per-day baseline of delayed evaluation: counts always, quantiles when known
        per_day = m["metrics"]["held_out_per_day"]
        assert {"days", "days_immature", "days_too_few_positives"} <= set(per_day)
        assert all(isinstance(v, int | float) for v in per_day.values())
        if "auc_p50" in per_day:
            assert per_day["auc_p05"] <= per_day["auc_p25"] <= per_day["auc_p50"]
        artifact = fraud_world["paths"].root / m["artifact_path"]
        assert artifact.name.startswith(m["artifact_sha256"])


TRAIN_SCRIPT = """
import hashlib, io, json, sys, warnings
warnings.filterwarnings("ignore")
import pandas as pd
from datetime import datetime
from pathlib import Path
from ml_assets.lib.core import artifacts
from ml_assets.lib.core.paths import DataPaths
from ml_assets.lib.core.registry import Registry
from ml_assets.lib.training.splits import assign_splits
from ml_assets.lib.training.train import TrainingWindow, predict
from ml_assets.lib.training.candidate import train_candidate
from ml_assets.specs.fraud import FRAUD_SPEC as spec
paths = DataPaths(Path(sys.argv[1]))
ts = pd.read_parquet(paths.lake / "training_set.parquet")
splits = pd.DataFrame({"event_id": ts["event_id"],
                       "split": assign_splits(ts["event_id"], spec.model.split_salt, spec.model.split_fractions)})
ref_meta = Registry(paths.control_db).reference_set("fraud")
ref = pd.read_parquet(io.BytesIO(artifacts.read_verified(paths.root / ref_meta["path"], ref_meta["sha256"])))
w = ts.attrs["window"]
card = train_candidate(paths, spec, ts, splits, ref, TrainingWindow(
    datetime.fromisoformat(w["start"]), datetime.fromisoformat(w["end"]), datetime.fromisoformat(w["label_cutoff"])),
    artifacts.dataset_sha256(ts))
bundle = artifacts.load_model(paths.root / card["artifact_path"], card["artifact_sha256"])
scores = predict(bundle["model"], spec, ref)
print(json.dumps({"artifact": card["artifact_sha256"], "dataset": card["dataset_sha256"],
                  "scores": hashlib.sha256(scores.tobytes()).hexdigest()}))
"""


def test_same_config_trains_bit_identical_models_in_separate_processes(fraud_world):
    root = str(fraud_world["paths"].root)
    runs = [json.loads(subprocess.run([sys.executable, "-c", TRAIN_SCRIPT, root], check=True,
                                      capture_output=True, text=True).stdout) for _ in range(2)]
    assert runs[0] == runs[1]
    # and it is the model the pipeline registered for this training set
    latest = Registry(fraud_world["paths"].control_db).list_models("fraud")[-1]
    assert runs[0]["artifact"] == latest["artifact_sha256"]
    assert runs[0]["dataset"] == latest["dataset_sha256"]


def test_a_feature_missing_in_every_training_row_is_named_not_a_numpy_error():
    """scikit-learn 1.9's binning fails on an all-missing column with "window shape cannot be
    larger than input array shape"; a tiny demo world hit it. One value is enough to train."""
    import numpy as np

    from ml_assets.lib.training.train import fit_model
    from ml_assets.specs.fraud import FRAUD_SPEC

    rng = np.random.default_rng(0)
    train = pd.DataFrame(rng.random((60, len(FRAUD_SPEC.feature_names))),
                         columns=list(FRAUD_SPEC.feature_names))
    train[FRAUD_SPEC.label] = np.arange(60) % 2
    name = FRAUD_SPEC.feature_names[3]
    train.loc[1:, name] = np.nan
    fit_model(FRAUD_SPEC, train, seed=1, threads=1)  # one value: trains
    train[name] = np.nan
    with pytest.raises(ValueError, match=rf"\['{name}'\] are missing in all 60 training rows"):
        fit_model(FRAUD_SPEC, train, seed=1, threads=1)
