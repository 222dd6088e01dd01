"""Daily monitoring tables computed from the lake: feature drift against the acting champion's
reference profile, prediction drift against a trailing baseline, delayed evaluation gated on
label coverage, and the business metric. One DuckDB read per range; loops only over days,
versions and features. The lake reads behind them (scores with labels as known, the label
horizon, label arrival) are in ``scored_events``; their names stay importable from here."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from ml_assets.lib.core.artifacts import read_verified, recorded_file
from ml_assets.lib.core.catalog import EVENT_FEATURES
from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.identifiers import confined
from ml_assets.lib.core.lake import day_floor, read_parquet_files
from ml_assets.lib.core.paths import DataPaths, atomic_write_bytes
from ml_assets.lib.core.workspace import Workspace
from ml_assets.lib.features.build import MissingUpstreamError
from ml_assets.lib.features.definitions import UNKNOWN_CATEGORY, Categorical
from ml_assets.lib.monitoring import drift
from ml_assets.lib.monitoring.business import business_alerts, compute_business, missed_value_per_1k
from ml_assets.lib.monitoring.evaluation import (
    FINAL,
    auc_alert,
    calibrate,
    evaluate_day,
    fit_calibrator,
    label_status,
)
from ml_assets.lib.monitoring.scored_events import (  # noqa: F401  (re-exported for callers)
    affected_days,
    champion_of,
    contiguous_ranges,
    hourly_files,
    label_file_state,
    label_horizon,
    load_scores,
)

QUANTILES = (0.1, 0.5, 0.9)



# -- feature drift ------------------------------------------------------------------------
def _profile_pointer(paths: DataPaths, version: str, spec: DatasetSpec) -> Path:
    return confined(paths.artifacts / "drift_profiles",
                    f"{version}-{spec.monitoring.psi_bins}bins.json", "model version")


def reference_profile(paths: DataPaths, spec: DatasetSpec, card: dict) -> tuple[drift.DriftProfile, str]:
    """The version's drift profile: built once from its training window, then loaded (verified).

    Rows whose look-back reaches before the data starts are skipped when the window allows.

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
    # Rows whose look-back reaches before the data starts have truncated windows; they are
    # not what steady-state traffic looks like, so the reference skips them when it can.
    warm = spec.start_utc + spec.lookback
    lo = warm if warm < hi and warm > lo else lo
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


# -- prediction drift ---------------------------------------------------------------------
def prediction_drift(ws: Workspace, lo: datetime, hi: datetime) -> dict[datetime, pd.DataFrame]:
    """Per day and live version: score quantiles, mean and decision share, and the PSI of the
    day's scores against the same version's trailing ``baseline_days``.

    Parameters
    ----------
    ws : Workspace
    lo, hi : datetime
        Days in [lo, hi), UTC.

    Returns
    -------
    dict of datetime to DataFrame
        Per day one row per (model_version, role): ``rows``, score quantiles ``p..``, ``mean``,
        ``decision_share`` (0-1), ``baseline_*`` and ``psi`` (NaN without a baseline) with its
        ``severity``.

    Raises
    ------
    MissingUpstreamError
        A ``batch_scores`` hour in [lo, hi) is missing.
    """
    paths, spec = ws.paths, ws.spec
    cfg = spec.monitoring
    base_lo = lo - timedelta(days=cfg.baseline_days)
    scores = load_scores(paths, spec, base_lo, hi, None, strict_lo=lo)
    out = {}
    for day in pd.date_range(lo, hi, freq="D", inclusive="left"):
        today = scores[scores["day"] == day]
        base = scores[(scores["day"] >= day - pd.Timedelta(days=cfg.baseline_days))
                      & (scores["day"] < day)]
        rows = []
        for (version, role), g in today.groupby(["model_version", "role"]):
            s = g["score"].to_numpy()
            b = base.loc[base["model_version"] == version, "score"].to_numpy()
            row = {"model_version": version, "role": role, "rows": len(s),
                   **{f"p{int(q * 100)}": float(v) for q, v in zip(QUANTILES, np.quantile(s, QUANTILES),
                                                                   strict=True)},
                   "mean": float(s.mean()), "decision_share": float(g["decision"].mean()),
                   "baseline_rows": len(b), "baseline_days": int(base.loc[
                       base["model_version"] == version, "day"].nunique())}
            if len(b):
                fp = drift.continuous_profile("score", b, cfg.psi_bins)
                cur = np.bincount(drift.continuous_bins(fp.edges, s), minlength=len(fp.bins))
                row |= {f"baseline_p{int(q * 100)}": float(v) for q, v in
                        zip(QUANTILES, np.quantile(b, QUANTILES), strict=True)}
                row["psi"] = float(drift.psi(fp.ref_share, cur / len(s)).sum())
            rows.append(row)
        frame = pd.DataFrame(rows)
        if len(frame):
            frame["psi"] = frame.get("psi", pd.Series(np.nan, index=frame.index))
            frame["severity"] = [drift.severity(p, cfg.prediction_psi_warn, cfg.prediction_psi_error)
                                 for p in frame["psi"]]
        out[day.to_pydatetime()] = frame.assign(day=day)
    return out


# -- delayed evaluation and business metric -------------------------------------------------
def _calibration_window(day: pd.Timestamp, horizon: datetime, cfg) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Mature days before ``day``: labels there are (nearly) complete, so they can calibrate."""
    hi = min(day, pd.Timestamp(day_floor(horizon)) - pd.Timedelta(days=cfg.label_maturity_days))
    return hi - pd.Timedelta(days=cfg.calibration_days), hi


def _calibrator(scores: pd.DataFrame, version: str, day: pd.Timestamp, horizon, cfg):
    lo, hi = _calibration_window(day, horizon, cfg)
    cal = scores[(scores["model_version"] == version) & (scores["day"] >= lo)
                 & (scores["day"] < hi) & scores["label"].notna()]
    return fit_calibrator(cal["score"].to_numpy(), cal["label"].to_numpy(), cfg.min_positives)


def _load_labeled(paths, spec, lo, hi) -> tuple[pd.DataFrame, datetime]:
    horizon = label_horizon(paths)
    if horizon is None:
        raise MissingUpstreamError("no raw_labels partitions yet: materialize raw_labels first")
    cfg = spec.monitoring
    cal_lo = lo - timedelta(days=cfg.calibration_days + cfg.label_maturity_days)
    return load_scores(paths, spec, max(cal_lo, spec.start_utc), hi, horizon, strict_lo=lo), horizon


def delayed_evaluation(ws: Workspace, lo: datetime, hi: datetime) -> dict[datetime, pd.DataFrame]:
    """Per day and version: AUC and calibration once labels are mature, against the version's
    per-day held-out AUC (``evaluation.auc_alert``; the pooled held-out AUC on older cards).

    Parameters
    ----------
    ws : Workspace
        Its registry gives each version's held-out AUC.
    lo, hi : datetime
        Days in [lo, hi), UTC.

    Returns
    -------
    dict of datetime to DataFrame
        Per day one row per (model_version, role): the result of ``evaluation.evaluate_day``,
        ``status_reason``, ``reference_auc`` (pooled held-out AUC), ``reference_auc_per_day_p50``
        (median per-day held-out AUC; NaN on cards without it), ``label_horizon``, ``severity``
        and ``alert_message`` (``evaluation.auc_alert``).

    Raises
    ------
    MissingUpstreamError
        No ``raw_labels`` partition yet, or a ``batch_scores`` hour in [lo, hi) is missing.
    """
    paths, spec = ws.paths, ws.spec
    cfg = spec.monitoring
    scores, horizon = _load_labeled(paths, spec, lo, hi)
    registry, out = ws.registry, {}
    for day in pd.date_range(lo, hi, freq="D", inclusive="left"):
        rows = []
        for (version, role), g in scores[scores["day"] == day].groupby(["model_version", "role"]):
            labels = g["label"].to_numpy()
            coverage = float(np.mean(~np.isnan(labels))) if len(labels) else 0.0
            status, why = label_status(day.to_pydatetime() + timedelta(days=1), horizon, coverage,
                                       cfg.label_maturity_days, cfg.min_label_coverage)
            res = evaluate_day(labels, g["score"].to_numpy(), status,
                               _calibrator(scores, version, day, horizon, cfg), cfg.min_positives)
            metrics = registry.get_model(version)["metrics"]
            ref_auc, per_day = metrics["held_out"]["auc"], metrics.get("held_out_per_day")
            level, message = auc_alert(res, ref_auc, cfg.auc_drop_warn, cfg.auc_drop_error,
                                       per_day=per_day)
            rows.append({"day": day, "model_version": version, "role": role, **res,
                         "status_reason": why, "reference_auc": ref_auc,
                         "reference_auc_per_day_p50": float((per_day or {}).get("auc_p50",
                                                                                 np.nan)),
                         "label_horizon": pd.Timestamp(horizon), "severity": level,
                         "alert_message": message})
        out[day.to_pydatetime()] = pd.DataFrame(rows)
    return out


def business_metric(ws: Workspace, lo: datetime, hi: datetime) -> dict[datetime, pd.DataFrame]:
    """Per day: the spec's business metric over acted decisions, with its own alert levels.

    Parameters
    ----------
    ws : Workspace
    lo, hi : datetime
        Days in [lo, hi), UTC.

    Returns
    -------
    dict of datetime to DataFrame
        Per day one row: ``compute_business`` output, ``label_coverage`` (0-1), ``status_reason``,
        ``baseline_decision_rate``, ``baseline_missed_value_per_1k``, ``severity`` and
        ``alert_message``.

    Raises
    ------
    ValueError
        The spec defines no business metric.
    MissingUpstreamError
        No ``raw_labels`` partition yet, or a needed lake hour is missing.
    """
    paths, spec = ws.paths, ws.spec
    metric, cfg = spec.business_metric, spec.monitoring
    if metric is None:
        raise ValueError(f"dataset {spec.name!r} defines no business_metric")
    scores, horizon = _load_labeled(paths, spec, lo, hi)
    acted = scores[scores["acted"]]
    daily_rate = acted.groupby("day")["decision"].mean()
    # Missed value per 1k on days whose labels are mature: the baseline a final day is held to.
    matured = acted[acted["day"] + pd.Timedelta(days=1 + cfg.label_maturity_days)
                    <= pd.Timestamp(horizon)]
    daily_missed = missed_value_per_1k(matured, metric)
    out = {}
    for day in pd.date_range(lo, hi, freq="D", inclusive="left"):
        g = acted[acted["day"] == day]
        coverage = float(g["label"].notna().mean()) if len(g) else 0.0
        status, why = label_status(day.to_pydatetime() + timedelta(days=1), horizon, coverage,
                                   cfg.label_maturity_days, cfg.min_label_coverage)
        version = champion_of(g) or (str(g["model_version"].iloc[0]) if len(g) else None)
        p = calibrate(_calibrator(scores, version, day, horizon, cfg), g["score"].to_numpy())
        res = compute_business(g, metric, status == FINAL, p)
        prior = daily_rate[(daily_rate.index >= day - pd.Timedelta(days=cfg.baseline_days))
                           & (daily_rate.index < day)]
        baseline = float(prior.mean()) if len(prior) else None
        missed_prior = daily_missed[(daily_missed.index >= day - pd.Timedelta(
            days=cfg.calibration_days)) & (daily_missed.index < day)]
        missed_baseline = float(missed_prior.mean()) if len(missed_prior) >= 7 else None
        alerts = business_alerts(res, metric, baseline, missed_baseline)
        level = "error" if any(a == "error" for a, _ in alerts) else "warn" if alerts else "ok"
        out[day.to_pydatetime()] = pd.DataFrame([{
            "day": day, "model_version": version, **res, "label_coverage": coverage,
            "status_reason": why, "baseline_decision_rate": baseline,
            "baseline_missed_value_per_1k": missed_baseline, "severity": level,
            "alert_message": "; ".join(m for _, m in alerts)}])
    return out
