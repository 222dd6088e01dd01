"""Score feature rows with every live model (champion, challenger, previous), so a flip of the
kill switch or an alias needs no recompute. Every row carries its model version."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

from ml_assets.lib.core.artifacts import load_model, recorded_file
from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.paths import DataPaths
from ml_assets.lib.core.registry import ALIASES, Registry
from ml_assets.lib.features.definitions import feature_fingerprint
from ml_assets.lib.training.train import predict

SCORE_COLUMNS = ["model_version", "role", "score", "decision", "acted", "rollout_arm",
                 "scored_at", "feature_schema_version", "features_ref"]


class NotScorableError(RuntimeError):
    """A model cannot score with the current feature definitions."""


def live_versions(registry: Registry, spec: DatasetSpec) -> list[tuple[str, str]]:
    """(role, version) for each alias that is set; one version scores once, under its first role.

    Parameters
    ----------
    registry : Registry
    spec : DatasetSpec
        Its ``model_name`` picks the aliases.

    Returns
    -------
    list of (str, str)
        In ``ALIASES`` order (champion, challenger, previous).
    """
    seen, out = set(), []
    for role, version in registry.aliases(spec.model_name).items():
        if version and version not in seen:
            seen.add(version)
            out.append((role, version))
    return sorted(out, key=lambda rv: ALIASES.index(rv[0]))


def check_features_computable(card: dict, spec: DatasetSpec) -> None:
    """A model can score only if every feature it used is still defined identically.

    Parameters
    ----------
    card : dict
        Model card with ``feature_fingerprints``.
    spec : DatasetSpec
        The current feature definitions.

    Raises
    ------
    NotScorableError
        A feature's fingerprint changed or the feature is gone.
    """
    current = {f.name: feature_fingerprint(f) for f in spec.features}
    changed = [n for n, fp in card["feature_fingerprints"].items() if current.get(n) != fp]
    if changed:
        raise NotScorableError(
            f"{card['version']}: feature(s) {changed} are no longer defined as at training "
            f"time (schema {card['feature_schema_version']} vs current {spec.schema_version})")


def load_live_model(paths: DataPaths, card: dict) -> dict:
    """The verified model bundle of ``card`` (see ``artifacts.load_model``).

    Parameters
    ----------
    paths : DataPaths
        Root the recorded ``artifact_path`` is confined to.
    card : dict
        Model card with ``artifact_path`` and ``artifact_sha256``.

    Returns
    -------
    dict
        ``model``, ``feature_names``, ``feature_fingerprints``, ``feature_schema_version``,
        ``decision_threshold``.

    Raises
    ------
    UnsafePath
        The recorded path leaves ``artifacts/``.
    ArtifactIntegrityError
        The file is missing or its SHA-256 does not match.
    """
    return load_model(recorded_file(paths, card["artifact_path"]), card["artifact_sha256"])


def score_frame(features: pd.DataFrame, spec: DatasetSpec,
                models: list[tuple[str, dict, dict]], scored_at: datetime,
                features_ref: str, threads: int = 1,
                challenger_arm: np.ndarray | None = None) -> pd.DataFrame:
    """Long format: one row per (event, live model). ``models`` is [(role, card, bundle)].
    ``challenger_arm`` (bool per event, from ``rollout.in_challenger_arm``) marks the events
    on which the challenger's decision acts during a staged rollout.

    Parameters
    ----------
    features : DataFrame, shape (n_events, n_columns)
        Feature rows with the event id, event time and entity keys.
    spec : DatasetSpec
    models : list of (str, dict, dict)
        Role, model card and loaded bundle per live model.
    scored_at : datetime
        Stamped on every row (UTC).
    features_ref : str
        Which feature rows were scored (lineage), stamped on every row.
    threads : int
        OpenMP threads for prediction.
    challenger_arm : ndarray of bool, shape (n_events,), optional
        None: the champion acts on every event.

    Returns
    -------
    DataFrame, shape (n_events * n_models, ...)
        The key columns plus ``SCORE_COLUMNS``; empty (with those columns) without models.

    Raises
    ------
    ValueError
        A model produced a NaN or infinite score.
    """
    base = features[[spec.event_id, spec.event_ts, *spec.entity_keys]]
    arm = np.zeros(len(base), bool) if challenger_arm is None else np.asarray(challenger_arm)
    frames = []
    for role, card, bundle in models:
        scores = predict(bundle["model"], spec, features, threads)
        if not np.all(np.isfinite(scores)):
            raise ValueError(f"{card['version']} produced non-finite scores")
        frames.append(base.assign(
            model_version=card["version"],
            role=role,
            score=scores.astype("float64"),
            decision=scores >= bundle["decision_threshold"],
            acted=arm if role == "challenger" else (~arm if role == "champion" else False),
            rollout_arm=np.where(arm, "challenger", "champion"),
            scored_at=pd.Timestamp(scored_at),
            feature_schema_version=card["feature_schema_version"],
            features_ref=features_ref,
        ))
    if not frames:
        return base.iloc[0:0].assign(**{c: pd.Series(dtype="object") for c in SCORE_COLUMNS})
    out = pd.concat(frames, ignore_index=True)
    return out.astype({"rollout_arm": "str", "model_version": "str", "role": "str"})


def score_contract_problems(df: pd.DataFrame, spec: DatasetSpec) -> list[str]:
    """What breaks the ``batch_scores`` contract: a missing version, a score outside [0, 1],
    not exactly one champion row per event.

    Parameters
    ----------
    df : DataFrame
        ``score_frame`` output.
    spec : DatasetSpec

    Returns
    -------
    list of str
        One message per broken rule; empty when the frame is valid.
    """
    problems = []
    if df["model_version"].isna().any():
        problems.append(f"{int(df['model_version'].isna().sum())} row(s) without model_version")
    bad = ~np.isfinite(df["score"]) | (df["score"] < 0) | (df["score"] > 1)
    if bad.any():
        problems.append(f"{int(bad.sum())} score(s) not finite or outside [0, 1]")
    champ = df[df["role"] == "champion"][spec.event_id]
    if champ.duplicated().any() or champ.nunique() != df[spec.event_id].nunique():
        problems.append("not exactly one champion score per event")
    return problems
