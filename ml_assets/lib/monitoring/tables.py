"""Daily label-driven monitoring tables: delayed evaluation gated on label coverage, and the
business metric. One DuckDB read per range; loops only over days and versions. Feature drift
and prediction drift are in ``feature_drift`` and ``prediction_drift``; the lake reads behind
them all (scores with labels as known, the label horizon, label arrival) are in
``scored_events``, whose names stay importable from here."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from ml_assets.lib.core.lake import day_floor
from ml_assets.lib.core.workspace import Workspace
from ml_assets.lib.features.build import MissingUpstreamError
from ml_assets.lib.monitoring.business import business_alerts, compute_business, missed_value_per_1k
from ml_assets.lib.monitoring.evaluation import (
    FINAL,
    auc_alert,
    calibrate,
    evaluate_day,
    fit_calibrator,
    label_status,
)
from ml_assets.lib.monitoring.labelable import label_coverage
from ml_assets.lib.monitoring.prediction_drift import MIN_DISPERSION_DAYS, decision_share_p_value
from ml_assets.lib.monitoring.scored_events import (  # noqa: F401  (re-exported for callers)
    affected_days,
    champion_of,
    contiguous_ranges,
    event_files,
    label_file_state,
    label_horizon,
    load_scores,
)


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
            labels, labelable = g["label"].to_numpy(), g["labelable"].to_numpy()
            coverage = label_coverage(labels, labelable)["label_coverage"]
            status, why = label_status(day.to_pydatetime() + timedelta(days=1), horizon, coverage,
                                       cfg.label_maturity_days, cfg.min_label_coverage)
            res = evaluate_day(labels, g["score"].to_numpy(), status,
                               _calibrator(scores, version, day, horizon, cfg), cfg.min_positives,
                               labelable)
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
        out[day.to_pydatetime()] = pd.DataFrame(rows).assign(day=day)  # "day" even when empty
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
        Per day one row: ``compute_business`` output, ``label_coverage`` (0-1, over labelable
        acted events), ``labelable_events``/``unlabelable_events`` (``labelable.label_coverage``),
        ``status_reason``, ``baseline_decision_rate``, ``baseline_missed_value_per_1k``,
        ``severity`` and ``alert_message``.

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
    daily = acted.groupby("day")["decision"].agg(["sum", "size", "mean"])
    # Missed value per 1k on days whose labels are mature: the baseline a final day is held to.
    matured = acted[acted["day"] + pd.Timedelta(days=1 + cfg.label_maturity_days)
                    <= pd.Timestamp(horizon)]
    daily_missed = missed_value_per_1k(matured, metric)
    out = {}
    for day in pd.date_range(lo, hi, freq="D", inclusive="left"):
        g = acted[acted["day"] == day]
        coverage = label_coverage(g["label"].to_numpy(), g["labelable"].to_numpy())
        status, why = label_status(day.to_pydatetime() + timedelta(days=1), horizon,
                                   coverage["label_coverage"], cfg.label_maturity_days,
                                   cfg.min_label_coverage)
        version = champion_of(g) or (str(g["model_version"].iloc[0]) if len(g) else None)
        p = calibrate(_calibrator(scores, version, day, horizon, cfg), g["score"].to_numpy())
        res = compute_business(g, metric, status == FINAL, p)
        prior = daily[(daily.index >= day - pd.Timedelta(days=cfg.baseline_days))
                      & (daily.index < day)]
        baseline = float(prior["mean"].mean()) if len(prior) else None
        # The rate's move is judged against the baseline days' own dispersion, as score_shift's
        # decision share is: decisions vary from day to day well beyond Poisson noise.
        p_value = (decision_share_p_value(int(res["decisions"]), int(res["events"]),
                                          prior["sum"].to_numpy(), prior["size"].to_numpy())
                   if len(prior) >= MIN_DISPERSION_DAYS and res["events"] else None)
        missed_prior = daily_missed[(daily_missed.index >= day - pd.Timedelta(
            days=cfg.calibration_days)) & (daily_missed.index < day)]
        missed_baseline = float(missed_prior.mean()) if len(missed_prior) >= 7 else None
        alerts = business_alerts(res, metric, baseline, missed_baseline, p_value,
                                 cfg.decision_warn_p)
        level = "error" if any(a == "error" for a, _ in alerts) else "warn" if alerts else "ok"
        out[day.to_pydatetime()] = pd.DataFrame([{
            "day": day, "model_version": version, **res, **coverage,
            "status_reason": why, "baseline_decision_rate": baseline,
            "baseline_missed_value_per_1k": missed_baseline, "severity": level,
            "alert_message": "; ".join(m for _, m in alerts)}])
    return out
