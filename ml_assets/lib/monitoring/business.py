"""The business metric: what the model's acted decisions are worth, defined in the dataset spec.

A definition prices each acted decision by its outcome: acting on a positive earns
``tp_fixed + tp_rate * value``, acting on a negative costs ``fp_fixed + fp_rate * value``, where
``value`` is an event attribute (e.g. the transaction amount). The decision rate is known the
moment scores land; realized value needs labels, so until a day's labels are mature the value
is an *estimate* from calibrated probabilities and never raises an alarm.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml_assets.lib.monitoring.labelable import label_coverage


@dataclass(frozen=True)
class BusinessMetric:
    """The business metric of a dataset: how acted decisions are priced and when it alerts.

    Acting on a positive earns ``tp_fixed + tp_rate * value``, on a negative costs
    ``fp_fixed + fp_rate * value``, in ``unit`` (e.g. USD), ``value`` being the event attribute
    ``value_column`` (1 without one). Limits: ``max_decision_rate`` (share of events, ERROR),
    ``decision_rate_change`` (relative move vs the trailing baseline, WARN), ``min_value_per_1k``
    (realized value per 1,000 events on final days, ERROR beyond ``floor_noise_sigmas`` standard
    errors) and ``max_missed_value_change`` (relative rise of missed positive value per 1,000 events).
    """
    name: str
    unit: str
    description: str
    decision_rate_name: str = "decision_rate"
    value_column: str | None = None  # numeric event attribute scaling the values; None = 1
    tp_fixed: float = 0.0
    tp_rate: float = 0.0
    fp_fixed: float = 0.0
    fp_rate: float = 0.0
    max_decision_rate: float = 1.0  # ERROR: acting on more than this share of events
    decision_rate_change: float = 0.5  # WARN: relative move vs the trailing baseline
    min_value_per_1k: float | None = None  # ERROR: realized value per 1,000 events (final days)
    floor_noise_sigmas: float = 2.0  # ... when below the floor by more than this many std errors
    # ERROR: value of positives the model did not act on (missed fraud), per 1,000 events, up
    # by more than this share over the trailing final days (and beyond the noise above).
    max_missed_value_change: float | None = None


def value_per_row(frame: pd.DataFrame, metric: BusinessMetric) -> tuple[np.ndarray, np.ndarray]:
    """Gain if positive and cost if negative of acting on each row.

    Parameters
    ----------
    frame : DataFrame, one row per event
        With a ``value`` column when ``metric.value_column`` is set (NaN counts as 0).
    metric : BusinessMetric

    Returns
    -------
    gain, cost : ndarray of float, shape (n_rows,)
        In ``metric.unit``.
    """
    v = (frame["value"].to_numpy(dtype="float64") if metric.value_column
         else np.ones(len(frame)))
    v = np.nan_to_num(v)
    return metric.tp_fixed + metric.tp_rate * v, metric.fp_fixed + metric.fp_rate * v


def compute_business(frame: pd.DataFrame, metric: BusinessMetric, final: bool,
                     calibrated: np.ndarray | None = None) -> dict:
    """The business metric of one day of scored events.

    Parameters
    ----------
    frame : DataFrame, one row per event
        Columns ``decision`` (acted on), ``label`` (NaN when unknown), ``score`` and ``value``;
        optional ``labelable`` (bool, ``scored_events.load_scores``; default every row).
    metric : BusinessMetric
    final : bool
        Whether the day's labels are mature: realized value and per-1k figures only then.
    calibrated : ndarray of float, shape (n_rows,), optional
        Calibrated probabilities for the estimated value (defaults to the scores).

    Returns
    -------
    dict
        ``events``/``decisions`` (rows), the decision rate (0-1), ``decided_label_coverage``
        (0-1, labelled share of the labelable acted-on rows; 1.0 with none), ``estimated_value``,
        ``value_prevented``, ``cost_of_false_decisions``, ``missed_positive_value`` (``unit``);
        ``value``, ``value_per_1k``, ``missed_value_per_1k`` and their standard errors
        (``*_se``, per-event standard deviation / sqrt(n)) are None unless ``final``.
    """
    acted = frame["decision"].to_numpy(dtype=bool)
    label = frame["label"].to_numpy(dtype="float64")
    gain, cost = value_per_row(frame, metric)
    p = frame["score"].to_numpy(dtype="float64") if calibrated is None else calibrated
    known = ~np.isnan(label)
    labelable = (frame["labelable"].to_numpy(dtype=bool) if "labelable" in frame
                 else np.ones(len(frame), bool))
    pos, neg = known & (label == 1), known & (label == 0)
    n = len(frame)
    realized = float(gain[acted & pos].sum() - cost[acted & neg].sum())
    out = {
        "metric": metric.name,
        "unit": metric.unit,
        "status": "final" if final else "pending",
        "events": int(n),
        "decisions": int(acted.sum()),
        metric.decision_rate_name: float(acted.mean()) if n else 0.0,
        "decided_label_coverage": label_coverage(
            label[acted], labelable[acted])["label_coverage"] if acted.any() else 1.0,
        "estimated_value": float((p * gain - (1 - p) * cost)[acted].sum()),
        "value_prevented": float(gain[acted & pos].sum()),
        "cost_of_false_decisions": float(cost[acted & neg].sum()),
        "missed_positive_value": float(gain[~acted & pos].sum()),
    }
    # Realized value is reported only once the day's labels are mature, with its standard
    # error (per-event contributions), so a small day's bad luck is not read as a loss.
    per_event = np.where(acted & pos, gain, 0.0) - np.where(acted & neg, cost, 0.0)
    missed = missed_per_event(frame, metric)
    out["value"] = realized if final else None
    for name, x in (("value_per_1k", per_event), ("missed_value_per_1k", missed)):
        out[name] = float(x.mean() * 1000) if final and n else None
        out[f"{name}_se"] = float(x.std(ddof=1) / np.sqrt(n) * 1000) if final and n > 1 else None
    return out


def missed_per_event(frame: pd.DataFrame, metric: BusinessMetric) -> np.ndarray:
    """Per row: the value of a positive the model did not act on (missed fraud), else 0.

    Parameters
    ----------
    frame : DataFrame, one row per event
        Columns ``decision``, ``label`` and ``value``.
    metric : BusinessMetric

    Returns
    -------
    ndarray of float, shape (n_rows,)
        In ``metric.unit``.
    """
    gain, _ = value_per_row(frame, metric)
    missed = ~frame["decision"].to_numpy(dtype=bool) & (frame["label"].to_numpy() == 1)
    return np.where(missed, gain, 0.0)


def missed_value_per_1k(frame: pd.DataFrame, metric: BusinessMetric) -> pd.Series:
    """Per ``day``: value of the positives not acted on, per 1,000 events (labels as known).

    Parameters
    ----------
    frame : DataFrame, one row per event
        Columns ``day``, ``decision``, ``label`` and ``value``.
    metric : BusinessMetric

    Returns
    -------
    Series indexed by day
        ``metric.unit`` per 1,000 events.
    """
    return pd.Series(missed_per_event(frame, metric), index=frame.index).groupby(
        frame["day"]).mean() * 1000


def business_alerts(result: dict, metric: BusinessMetric, baseline_rate: float | None,
                    missed_baseline: float | None = None, rate_p_value: float | None = None,
                    rate_warn_p: float = 1e-3) -> list[tuple[str, str]]:
    """Alerts of one day's business result: decision-rate limits always; realized and missed value
    only on final days.

    A decision-rate move past ``decision_rate_change`` counts only when it is also beyond the
    baseline days' own day-to-day dispersion (``rate_p_value`` below ``rate_warn_p``; the
    negative binomial test of ``prediction_drift.decision_share_p_value``), or, without enough
    baseline days for that, beyond 3 sigma of Poisson noise on the expected decisions; value
    below the floor is an ERROR only beyond ``floor_noise_sigmas`` standard errors.

    Parameters
    ----------
    result : dict
        Output of ``compute_business``.
    metric : BusinessMetric
    baseline_rate : float or None
        Decision rate (0-1) over the trailing baseline days.
    missed_baseline : float, optional
        Missed value per 1,000 events on the trailing final days (``metric.unit``).
    rate_p_value : float, optional
        Two-sided p-value of the day's decisions against the baseline days'.
    rate_warn_p : float
        A rate move counts below this p-value (``monitoring.decision_warn_p``).

    Returns
    -------
    list of (level, message)
        ``level`` is ``"warn"`` or ``"error"``; empty when all is well.
    """
    rate, n = result[metric.decision_rate_name], result["events"]
    alerts = []
    if rate > metric.max_decision_rate:
        alerts.append(("error", f"{metric.decision_rate_name} {rate:.2%} above the "
                                f"{metric.max_decision_rate:.2%} limit"))
    expected = (baseline_rate or 0.0) * n
    # A relative move counts only beyond Poisson noise (3 sigma) of the expected decisions.
    beyond = (rate_p_value < rate_warn_p if rate_p_value is not None
              else abs(result["decisions"] - expected) > 3 * np.sqrt(expected))
    if baseline_rate and abs(rate / baseline_rate - 1) > metric.decision_rate_change and beyond:
        alerts.append(("warn", f"{metric.decision_rate_name} {rate:.2%} vs {baseline_rate:.2%} "
                               f"over the trailing baseline (> {metric.decision_rate_change:.0%} move)"))
    per_1k, floor = result.get("value_per_1k"), metric.min_value_per_1k
    if per_1k is not None and floor is not None and per_1k < floor:
        # ERROR (pages) only when below the floor beyond noise; within noise it is a WARN.
        se = result.get("value_per_1k_se") or 0.0
        beyond = per_1k + metric.floor_noise_sigmas * se < floor
        alerts.append(("error" if beyond else "warn",
                       f"{metric.name} {per_1k:,.2f} {metric.unit} per 1k events below the "
                       f"{floor:,.2f} floor ({'beyond' if beyond else 'within'} "
                       f"{metric.floor_noise_sigmas:g} standard errors of {se:,.2f})"))
    missed, change = result.get("missed_value_per_1k"), metric.max_missed_value_change
    if missed is not None and change is not None and missed_baseline:
        limit = missed_baseline * (1 + change)
        se = result.get("missed_value_per_1k_se") or 0.0
        if missed - metric.floor_noise_sigmas * se > limit:
            alerts.append(("error", f"missed positives worth {missed:,.2f} {metric.unit} per 1k "
                                    f"events vs {missed_baseline:,.2f} on the trailing final days "
                                    f"(limit +{change:.0%}, beyond noise of {se:,.2f})"))
    return alerts
