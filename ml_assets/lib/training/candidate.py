"""Train, evaluate and register one candidate model with every model-card field."""

from __future__ import annotations

import dataclasses
import platform
from datetime import UTC, datetime

import pandas as pd
import sklearn

from ml_assets.lib.core import artifacts
from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.paths import DataPaths
from ml_assets.lib.features.definitions import feature_fingerprint
from ml_assets.lib.monitoring.auc_baseline import held_out_per_day
from ml_assets.lib.training.provenance import code_commit, lockfile_sha256
from ml_assets.lib.training.train import TrainingWindow, evaluate, fit_model, predict, split_frame


def train_candidate(paths: DataPaths, spec: DatasetSpec, training_set: pd.DataFrame,
                    splits: pd.DataFrame, reference: pd.DataFrame, window: TrainingWindow,
                    dataset_sha256: str, seed: int | None = None, threads: int = 1) -> dict:
    """Fit on train, evaluate on test (held out) and the frozen reference; return the card
    (not yet registered) with the model bundle stored as a content-addressed artifact.

    Parameters
    ----------
    paths : DataPaths
        Data root; the bundle goes under ``paths.artifacts``.
    spec : DatasetSpec
        Features, label and model hyperparameters.
    training_set : DataFrame
        One row per labelled event (``build_training_set``).
    splits : DataFrame
        Columns ``spec.event_id`` and ``split`` (train / valid / test).
    reference : DataFrame
        The frozen reference rows, with the label column.
    window : TrainingWindow
        Event window, label cutoff and held-out period, if any (UTC), recorded on the card.
    dataset_sha256 : str
        SHA-256 of the training set, recorded on the card.
    seed : int, optional
        RNG seed; ``spec.model.seed`` when None.
    threads : int
        OpenMP threads for fit and predict.

    Returns
    -------
    dict
        The model card: artifact SHA-256 and path, provenance (``spec``: the spec's ``ref`` and
        source ``sha256``, see ``DatasetSpec.origin``; None for a spec built in code), row
        counts per split, ``held_out_period`` (start, end) when the test split is a held-out
        period rather than hashed, and
        ``metrics`` (held_out, validation, frozen_reference; see ``evaluate``; and
        held_out_per_day, the per-day AUC distribution over the mature held-out days that a
        production day's AUC is compared with, see ``auc_baseline.held_out_per_day``).

    Raises
    ------
    ValueError
        The train split has only one class.
    """
    seed = spec.model.seed if seed is None else seed
    parts = split_frame(training_set, splits, spec)
    if parts["train"][spec.label].nunique() < 2:
        raise ValueError(f"training split has {len(parts['train'])} rows and only one class; "
                         "widen the training window or wait for more labels")
    model = fit_model(spec, parts["train"], seed, threads)
    threshold = spec.model.decision_threshold
    bundle = {
        "model": model,
        "feature_names": spec.feature_names,
        "feature_fingerprints": {f.name: feature_fingerprint(f) for f in spec.features},
        "feature_schema_version": spec.schema_version,
        "decision_threshold": threshold,
    }
    sha, path = artifacts.store_model(paths.artifacts, bundle)
    commit, dirty = code_commit()
    test_scores = predict(model, spec, parts["test"], threads)
    mon = spec.monitoring
    return {
        "artifact_sha256": sha,
        "artifact_path": str(path.relative_to(paths.root)),
        "dataset_sha256": dataset_sha256,
        # A window starting before warm-up learns label features still filling with late
        # labels: their later values will read as drift. Recorded so the card says so.
        "training_window": {"start": window.start.isoformat(), "end": window.end.isoformat(),
                            "warm_start": spec.warm_start.isoformat(),
                            "warm": window.start >= spec.warm_start},
        "label_cutoff": window.label_cutoff.isoformat(),
        **({"held_out_period": {"start": window.test_start.isoformat(),
                                "end": window.test_end.isoformat()}} if window.held_out else {}),
        "seed": seed,
        "feature_schema_version": spec.schema_version,
        "feature_fingerprints": bundle["feature_fingerprints"],
        "feature_names": spec.feature_names,
        "decision_threshold": threshold,
        # The spec is versioned by its own file's hash: a user's spec outside this checkout
        # leaves code_dirty alone, and a change to it is still visible here.
        "spec": dataclasses.asdict(spec.origin) if spec.origin else None,
        "code_commit": commit,
        "code_dirty": dirty,
        "lockfile_sha256": lockfile_sha256(),
        "library_versions": {"scikit-learn": sklearn.__version__, "pandas": pd.__version__,
                             "python": platform.python_version()},
        "rows": {k: int(len(v)) for k, v in parts.items()},
        "metrics": {
            "held_out": evaluate(parts["test"][spec.label].to_numpy(), test_scores, threshold),
            "held_out_per_day": held_out_per_day(
                parts["test"][spec.event_ts], parts["test"][spec.label].to_numpy(), test_scores,
                window.label_cutoff, mon.label_maturity_days, mon.min_positives),
            "validation": evaluate(parts["valid"][spec.label].to_numpy(),
                                   predict(model, spec, parts["valid"], threads), threshold),
            "frozen_reference": evaluate(reference[spec.label].to_numpy(),
                                         predict(model, spec, reference, threads), threshold),
        },
        "owner": spec.owner,
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }

