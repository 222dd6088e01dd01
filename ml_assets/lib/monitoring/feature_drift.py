"""Daily feature drift: each day's feature rows against the acting champion's reference
profile (built once per model version from its training window, content-addressed), graded by
``drift.grade``."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pandas as pd

from ml_assets.lib.core.artifacts import read_verified, recorded_file
from ml_assets.lib.core.catalog import EVENT_FEATURES
from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.identifiers import confined
from ml_assets.lib.core.lake import read_parquet_files
from ml_assets.lib.core.paths import DataPaths, atomic_write_bytes
from ml_assets.lib.core.workspace import Workspace
from ml_assets.lib.features.definitions import UNKNOWN_CATEGORY, Categorical
from ml_assets.lib.monitoring import drift
from ml_assets.lib.monitoring.scored_events import champion_of, hourly_files, load_scores


def _profile_pointer(paths: DataPaths, version: str, spec: DatasetSpec) -> Path:
    return confined(paths.artifacts / "drift_profiles",
                    f"{version}-{spec.monitoring.psi_bins}bins.json", "model version")


def reference_profile(paths: DataPaths, spec: DatasetSpec, card: dict) -> tuple[drift.DriftProfile, str]:
    """The version's drift profile: built once from its training window, then loaded (verified).

    Rows before the spec's warm-up (``DatasetSpec.warm_start``) are skipped when the window allows.

    Parameters
    ----------
    paths : DataPaths
    spec : DatasetSpec
    card : dict
        The version's model card (``version``, ``training_window``).

    Returns
    -------
    profile : DriftProfile
    sha256 : str
        Of the stored profile artifact.

    Raises
    ------
    MissingUpstreamError
        An ``event_features`` hour of the training window is missing.
    ArtifactIntegrityError
        A stored profile does not hash to its recorded SHA-256.
    """
    pointer = _profile_pointer(paths, card["version"], spec)
    if pointer.exists():
        ref = json.loads(pointer.read_text())
        path = recorded_file(paths, ref["path"], "drift profile path")  # pointer: data dir
        return drift.DriftProfile.from_bytes(read_verified(path, ref["sha256"])), ref["sha256"]
    w = card["training_window"]
    lo, hi = datetime.fromisoformat(w["start"]), datetime.fromisoformat(w["end"])
    # Rows before warm-up (windows still filling, label features still gaining late labels)
    # are not what steady-state traffic looks like: the reference skips them when it can.
    warm = spec.warm_start
    lo = warm if lo < warm < hi else lo
    frame = read_parquet_files(hourly_files(paths, EVENT_FEATURES, lo, hi, True))
    cats = [f for f in spec.features if isinstance(f, Categorical)]
    profile = drift.build_profile(
        frame, [f.name for f in spec.features if not isinstance(f, Categorical)],
        [f.name for f in cats], n_bins=spec.monitoring.psi_bins,
        category_labels={f.name: dict(enumerate([*f.vocabulary, UNKNOWN_CATEGORY])) for f in cats},
        period=frame[spec.event_ts].dt.floor("D").to_numpy(),
        meta={"model_version": card["version"], "window_start": lo.isoformat(),
              "window_end": hi.isoformat(), "feature_schema_version": spec.schema_version})
    sha, path = drift.store_profile(paths.artifacts, profile)
    atomic_write_bytes(pointer, json.dumps({"sha256": sha, "path": str(path.relative_to(
        paths.root))}).encode())
    return profile, sha


def feature_drift(ws: Workspace, lo: datetime, hi: datetime) -> dict[datetime, pd.DataFrame]:
    """Per day: one row per feature with PSI, KS, thresholds and severity against the champion's profile.

    PSI after Yurdakul 2018, KS as ``scipy.stats.ks_2samp`` (see ``drift``); thresholds raised for
    features whose clean reference days already vary and by what a clean sample of the day's
    size reaches by chance, with effectively unmonitored features flagged (``drift.grade``).

    Parameters
    ----------
    ws : Workspace
        Its registry gives the champion's model card.
    lo, hi : datetime
        Days in [lo, hi), UTC.

    Returns
    -------
    dict of datetime to DataFrame
        Per day the rows of ``drift.compare`` plus ``warn_threshold``/``error_threshold`` (PSI),
        ``severity``, ``unmonitored``/``unmonitored_reason`` (``drift.grade``), ``day``,
        ``model_version`` and ``profile_sha256``.

    Raises
    ------
    MissingUpstreamError
        An ``event_features`` or ``batch_scores`` hour is missing.
    """
    paths, spec = ws.paths, ws.spec
    cfg = spec.monitoring
    features = read_parquet_files(hourly_files(paths, EVENT_FEATURES, lo, hi, True))
    scores = load_scores(paths, spec, lo, hi, None)
    registry, profiles, out = ws.registry, {}, {}
    feat_day = features[spec.event_ts].dt.floor("D")
    for day, day_scores in scores.groupby("day"):
        version = champion_of(day_scores)
        if version not in profiles:
            profiles[version] = reference_profile(paths, spec, registry.get_model(version))
        profile, sha = profiles[version]
        rows = drift.grade(drift.compare(profile, features[feat_day == day],
                                         null_quantile=cfg.psi_null_quantile), cfg)
        out[day.to_pydatetime()] = rows.assign(day=day, model_version=version, profile_sha256=sha)
    return out
