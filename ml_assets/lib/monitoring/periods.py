"""Monitoring pooled over calendar periods (day, ISO week, month) instead of one day at a time:
AUC, PR-AUC, the business metric and feature PSI of each period, for `ml-assets monitor --by`.

One day is a small sample for a ranking metric or a rare-event business figure; a week or a month
pools enough labelled rows to read a trend. A whole day's figures are the daily monitoring assets'
own (``business_metric``, ``feature_drift``: ``day_figures``), so ``monitor --by day`` and
``monitor`` agree on a day. A period only partly inside the requested window, or
past the newest scored partition, is reported as incomplete rather than judged."""

from __future__ import annotations

import numbers
from datetime import datetime

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

from ml_assets.lib.core.catalog import BATCH_SCORES, EVENT_FEATURES
from ml_assets.lib.core.lake import read_parquet_files
from ml_assets.lib.core.workspace import Workspace
from ml_assets.lib.monitoring import drift
from ml_assets.lib.monitoring.business import compute_business
from ml_assets.lib.monitoring.evaluation import FINAL, auc_standard_error, label_status
from ml_assets.lib.monitoring.feature_drift import feature_drift, reference_profile
from ml_assets.lib.monitoring.labelable import label_coverage
from ml_assets.lib.monitoring.scored_events import (
    champion_of,
    event_files,
    label_horizon,
    load_scores,
)
from ml_assets.lib.monitoring.tables import business_metric

PERIODS = ("day", "week", "month")


def json_value(v):
    """A numpy or pandas scalar as a JSON-native value (NaN -> None)."""
    if isinstance(v, numbers.Integral) and not isinstance(v, bool):
        return int(v)
    if isinstance(v, numbers.Real) and not isinstance(v, bool):
        return None if pd.isna(v) else float(v)
    return v


def day_figures(business: pd.DataFrame, drifted: pd.DataFrame) -> tuple[dict | None, dict]:
    """A day's business metric and PSI from the rows of the daily ``business_metric`` and
    ``feature_drift`` assets: what ``monitor`` reads from the lake and ``period_report``
    computes with the same code for a whole day.

    Parameters
    ----------
    business : DataFrame
        The day's ``business_metric`` row (none without a business metric).
    drifted : DataFrame
        The day's ``feature_drift`` rows, one per feature.

    Returns
    -------
    business : dict or None
        The row's figures, JSON-native (``day`` left out); None without a row.
    psi : dict of str to float
        Per feature judged that day: its period complete (a week to date is not a verdict,
        ``drift_periods``) and its PSI finite.
    """
    figures = None if business.empty else {
        k: json_value(v) for k, v in business.iloc[0].items() if k not in ("day", "_day")}
    return figures, {r.feature: float(r.psi) for r in drifted.itertuples()
                     if pd.notna(r.psi) and getattr(r, "period_complete", True)}


def period_start(ts: pd.Series, by: str) -> pd.Series:
    """The UTC start of the calendar period holding each timestamp.

    Parameters
    ----------
    ts : Series of tz-aware datetime
    by : {"day", "week", "month"}
        Weeks are ISO weeks (Monday 00:00 UTC).

    Returns
    -------
    Series of datetime64[us, UTC], same index as ``ts``

    Raises
    ------
    ValueError
        ``by`` is not one of ``PERIODS``.
    """
    if by not in PERIODS:
        raise ValueError(f"period {by!r} is not one of {PERIODS}")
    day = ts.dt.tz_convert("UTC").dt.floor("D")
    if by == "day":
        return day
    if by == "week":
        return day - pd.to_timedelta(day.dt.day_of_week, unit="D")
    return day - pd.to_timedelta(day.dt.day - 1, unit="D")


def _period_end(start: pd.Timestamp, by: str) -> pd.Timestamp:
    step = {"day": pd.Timedelta(days=1), "week": pd.Timedelta(days=7),
            "month": pd.DateOffset(months=1)}[by]
    return start + step


def _ranking(rows: pd.DataFrame, final: bool) -> dict:
    """AUC (with its Hanley-McNeil standard error) and PR-AUC over the rows with a known label,
    once the period's labels are final: before that the known labels are the quickly reported
    ones, a biased sample. Omitted too when the known labels hold one class only."""
    known = rows[rows["label"].notna()]
    y, s = known["label"].to_numpy(dtype=int), known["score"].to_numpy(dtype="float64")
    positives = int(y.sum())
    out = {"labelled_rows": int(len(known)), "positives": positives}
    if final and 0 < positives < len(y):
        auc = float(roc_auc_score(y, s))
        out |= {"auc": auc, "auc_se": auc_standard_error(auc, positives, len(y) - positives),
                "pr_auc": float(average_precision_score(y, s))}
    return out


def period_report(ws: Workspace, lo: datetime, hi: datetime, by: str) -> list[dict]:
    """Monitoring figures of every ``by`` period overlapping ``[lo, hi)``, pooled over the period.

    Parameters
    ----------
    ws : Workspace
        Its registry gives the acting champion's model card (for the drift profile).
    lo, hi : datetime
        Event-time window, UTC; clipped to the partitions ``batch_scores`` holds.
    by : {"day", "week", "month"}

    Returns
    -------
    list of dict, one per period, oldest first
        ``period`` (start date), ``start``/``end`` (ISO, UTC), ``complete`` (the whole period lies
        in the clipped window), ``events`` (acted rows), ``label_status``/``label_why``
        (``evaluation.label_status`` over the period: final only when its last day is mature),
        ``label_coverage`` (0-1, over labelable acted rows) with ``labelable_events`` and
        ``unlabelable_events`` (``labelable.label_coverage``), ``models`` (per version: ``role``,
        ``rows``, ``decision_rate`` and ``_ranking``'s AUC/PR-AUC figures, final periods only), ``business_metric`` (``compute_business`` over the
        period's acted rows; absent when the spec has none) and ``psi`` (per feature: PSI of the
        period's feature rows against the period's champion's reference profile, Yurdakul 2018).
        A whole day inside the window has the daily assets' figures instead (``day_figures``):
        the ``business_metric`` row (estimate calibrated as the asset does) and the PSI of each
        feature judged that day over its own drift period.

    Raises
    ------
    ValueError
        ``by`` is unknown, ``hi <= lo``, or no scored partition lies in ``[lo, hi)``.
    MissingUpstreamError
        A ``batch_scores`` or ``event_features`` partition inside the clipped window is missing.
    """
    if by not in PERIODS:
        raise ValueError(f"period {by!r} is not one of {PERIODS}")
    if hi <= lo:
        raise ValueError(f"empty window: --to {hi:%Y-%m-%d} is not after --from {lo:%Y-%m-%d}")
    paths, spec, cfg = ws.paths, ws.spec, ws.spec.monitoring
    scored = ws.catalog.table(BATCH_SCORES)
    files = scored.files()
    if not files:
        raise ValueError("no batch_scores yet: nothing to report")
    first, last = scored.start(files[0].stem), scored.latest() + scored.step
    lo, hi = max(pd.Timestamp(lo), pd.Timestamp(first)), min(pd.Timestamp(hi), pd.Timestamp(last))
    if hi <= lo:
        raise ValueError(f"no scored partition in the window: batch_scores covers {first:%Y-%m-%d %H:%M}"
                         f" to {last:%Y-%m-%d %H:%M} UTC")
    horizon = label_horizon(paths)
    scores = load_scores(paths, spec, lo, hi, horizon)
    scores["period"] = period_start(scores["event_ts"], by)
    features = read_parquet_files(event_files(paths, spec, EVENT_FEATURES, lo, hi, True))
    feature_period = period_start(features[spec.event_ts], by)
    profiles: dict[str, drift.DriftProfile] = {}
    # Whole days: the daily monitoring assets' own computation, so a day reads as `monitor` does.
    days = (pd.Timestamp(lo).ceil("D"), pd.Timestamp(hi).floor("D"))
    whole = by == "day" and days[0] < days[1]
    day_drift = feature_drift(ws, *days) if whole else {}
    day_business = (business_metric(ws, *days) if whole and horizon is not None
                    and spec.business_metric is not None else {})
    out = []
    for start, rows in scores.groupby("period"):
        end = _period_end(start, by)
        acted = rows[rows["acted"]]
        coverage = label_coverage(acted["label"].to_numpy(), acted["labelable"].to_numpy())
        status, why = (label_status(end.to_pydatetime(), horizon, coverage["label_coverage"],
                                    cfg.label_maturity_days, cfg.min_label_coverage)
                       if horizon is not None else ("pending", "no labels yet"))
        entry = {"period": f"{start:%Y-%m-%d}", "start": start.isoformat(), "end": end.isoformat(),
                 "complete": bool(start >= lo and end <= hi), "events": int(len(acted)),
                 "label_status": status, "label_why": why, **coverage,
                 "models": {str(v): {"role": str(g["role"].iloc[0]), "rows": int(len(g)),
                                     "decision_rate": float(g["decision"].mean()),
                                     **_ranking(g, status == FINAL)}
                            for v, g in rows.groupby("model_version")}}
        day = start.to_pydatetime()
        if day in day_drift:
            business, entry["psi"] = day_figures(day_business.get(day, pd.DataFrame()),
                                                 day_drift[day])
            entry["psi_model_version"] = str(day_drift[day]["model_version"].iloc[0])
            if business is not None:
                entry["business_metric"] = business
        if spec.business_metric is not None and "business_metric" not in entry:
            entry["business_metric"] = compute_business(acted, spec.business_metric,
                                                        status == FINAL)
        version = champion_of(rows)
        if version is not None and day not in day_drift:
            if version not in profiles:
                profiles[version] = reference_profile(paths, spec,
                                                      ws.registry.get_model(version))[0]
            drifted = drift.compare(profiles[version], features[feature_period == start])
            entry["psi_model_version"] = version
            entry["psi"] = {r.feature: float(r.psi) for r in drifted.itertuples()
                            if np.isfinite(r.psi)}
        out.append(entry)
    return out
