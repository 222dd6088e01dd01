"""Daily prediction drift: each live version's score quantiles and decision share, judged
against the same version's trailing baseline (``baseline_days``, the pooling period).

Two questions per day and version, each against the baseline's own clean variability rather
than fixed levels alone (scores that move with outside conditions from day to day would
otherwise alarm on ordinary days):

- score PSI: the configured ``prediction_psi_warn``/``error`` raised to the largest excess PSI of
  one baseline day against the rest of the baseline (``prediction_noise_margin`` times it for
  the error level; ``drift.effective_thresholds``), plus what a clean sample of the day's size
  reaches by chance (``drift_stats.psi_null_quantile``), as feature drift is graded;
- decision share: the day's decisions against the baseline's share with a two-sided negative
  binomial test whose dispersion is the baseline days' own (``decision_share_p_value``), so a
  collapse of decisions is an alarm even when the score distribution barely moves; at most a
  WARN while the baseline has fewer than ``MIN_DISPERSION_DAYS`` days (a version's first days).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from scipy import stats

from ml_assets.lib.core.policies import MonitoringConfig
from ml_assets.lib.core.workspace import Workspace
from ml_assets.lib.monitoring import drift
from ml_assets.lib.monitoring.scored_events import load_scores

QUANTILES = (0.1, 0.5, 0.9)
MIN_NOISE_DAY_ROWS = 100  # smaller baseline days say little about day-to-day variability
# Fewer baseline days leave the decision share's dispersion unknown (under two degrees of
# freedom): its verdict is then at most a WARN.
MIN_DISPERSION_DAYS = 3
LEVELS = ("ok", "warn", "error")  # in rising order


def prediction_drift(ws: Workspace, lo: datetime, hi: datetime) -> dict[datetime, pd.DataFrame]:
    """Per day and live version: score quantiles, mean and decision share, judged against the
    same version's trailing ``baseline_days`` (``score_shift``).

    Parameters
    ----------
    ws : Workspace
    lo, hi : datetime
        Days in [lo, hi), UTC.

    Returns
    -------
    dict of datetime to DataFrame
        Per day one row per (model_version, role): ``rows``, score quantiles ``p..``, ``mean``,
        ``decision_share`` (0-1), ``baseline_rows``/``baseline_days`` and, with a baseline,
        ``baseline_p..`` and the columns of ``score_shift`` (NaN or "ok" without one);
        ``severity`` and ``alert_message`` always.

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
            b = base[base["model_version"] == version]
            row = {"model_version": version, "role": role, "rows": len(s),
                   **{f"p{int(q * 100)}": float(v) for q, v in zip(QUANTILES, np.quantile(s, QUANTILES),
                                                                   strict=True)},
                   "mean": float(s.mean()), "decision_share": float(g["decision"].mean()),
                   "baseline_rows": len(b), "baseline_days": int(b["day"].nunique()),
                   "severity": "ok", "alert_message": ""}
            if len(b):
                bs = b["score"].to_numpy()
                row |= {f"baseline_p{int(q * 100)}": float(v) for q, v in
                        zip(QUANTILES, np.quantile(bs, QUANTILES), strict=True)}
                row |= score_shift(s, g["decision"].to_numpy(bool), bs,
                                   b["decision"].to_numpy(bool),
                                   # day numbers: tz-aware days would become an object array
                                   b["day"].array.asi8, cfg)
            rows.append(row)
        frame = pd.DataFrame(rows)
        if len(frame):
            frame["psi"] = frame.get("psi", pd.Series(np.nan, index=frame.index))
        out[day.to_pydatetime()] = frame.assign(day=day)
    return out


def score_shift(scores: np.ndarray, decisions: np.ndarray, base_scores: np.ndarray,
                base_decisions: np.ndarray, base_day: np.ndarray, cfg: MonitoringConfig) -> dict:
    """One day's scores and decisions of one version against its baseline: PSI and decision
    share, each with its thresholds, and the verdict.

    Parameters
    ----------
    scores, decisions : ndarray, shape (n,)
        The day's scores (probabilities) and whether each was acted on (bool); n > 0.
    base_scores, base_decisions, base_day : ndarray, shape (m,)
        The baseline's scores, decisions and the day of each row (any hashable labels); m > 0.
    cfg : MonitoringConfig
        ``psi_bins``, ``prediction_psi_warn``/``error``, ``prediction_noise_margin``,
        ``psi_null_quantile`` and ``decision_warn_p``/``error_p``.

    Returns
    -------
    dict
        ``psi``; ``psi_noise`` (largest excess PSI of one baseline day vs the rest,
        ``baseline_psi_noise``), ``psi_null`` (the sample-size allowance for n rows) and
        ``psi_warn_threshold``/``psi_error_threshold`` (PSI); ``decision_share_baseline`` (0-1),
        ``decision_share_p_value`` (two-sided, ``decision_share_p_value``); ``psi_severity``,
        ``decision_severity`` (at most "warn" with fewer than ``MIN_DISPERSION_DAYS`` baseline
        days) and ``severity`` (the worse: "ok", "warn" or "error") with an ``alert_message``
        saying why ("" when ok).
    """
    fp = drift.continuous_profile("score", base_scores, cfg.psi_bins)
    cur = drift.bin_counts(fp, scores)
    psi = float(drift.psi(fp.ref_share, cur / len(scores)).sum())
    noise = baseline_psi_noise(fp, base_scores, base_day)
    warn, error = drift.effective_thresholds(cfg.prediction_psi_warn, cfg.prediction_psi_error,
                                             noise, cfg.prediction_noise_margin)
    null = float(drift.psi_null_quantile(fp.ref_counts, len(scores), cfg.psi_null_quantile)[0])
    warn, error = float(warn) + null, float(error) + null
    psi_level = drift.severity(psi, warn, error)

    days, day_idx = np.unique(base_day, return_inverse=True)
    base_counts = np.bincount(day_idx, weights=base_decisions, minlength=len(days))
    base_rows = np.bincount(day_idx, minlength=len(days))
    x, n = int(decisions.sum()), len(decisions)
    p = decision_share_p_value(x, n, base_counts, base_rows)
    decision_level = ("error" if p < cfg.decision_error_p else
                      "warn" if p < cfg.decision_warn_p else "ok")
    few_days = len(days) < MIN_DISPERSION_DAYS
    if few_days and decision_level == "error":
        decision_level = "warn"
    base_share = float(base_counts.sum() / base_rows.sum())

    reasons = []
    if psi_level != "ok":
        limit = error if psi_level == "error" else warn
        reasons.append(f"score PSI {psi:.3f} vs the {len(days)}-day baseline above its "
                       f"{psi_level} threshold {limit:.3f} (clean day-to-day PSI {noise:.3f}, "
                       f"sample allowance {null:.3f} for {n} rows)")
    if decision_level != "ok":
        limit = cfg.decision_error_p if decision_level == "error" else cfg.decision_warn_p
        reasons.append(f"decision share {x / n:.3%} ({x} of {n}) vs the baseline's "
                       f"{base_share:.3%}: p={p:.2g} ({decision_level} below {limit:g}, "
                       "allowing the baseline's day-to-day dispersion)"
                       + (f"; only {len(days)} baseline day(s), too few to know that dispersion: "
                          "at most a WARN" if few_days else ""))
    return {"psi": psi, "psi_noise": noise, "psi_null": null, "psi_warn_threshold": warn,
            "psi_error_threshold": error, "psi_severity": psi_level,
            "decision_share_baseline": base_share, "decision_share_p_value": p,
            "decision_severity": decision_level,
            "severity": max(psi_level, decision_level, key=LEVELS.index),
            "alert_message": "; ".join(reasons)}


def baseline_psi_noise(fp: drift.FeatureProfile, base_scores: np.ndarray,
                       base_day: np.ndarray) -> float:
    """Largest PSI of one baseline day against the rest of the baseline beyond the PSI its row
    counts alone would show (``drift_stats.expected_null_psi``): the day-to-day variability of
    clean scores. Leave-one-out, so a week's day is not compared partly with itself; the bins
    are ``fp``'s, those the day is judged on.

    Parameters
    ----------
    fp : FeatureProfile
        The whole baseline's score profile.
    base_scores, base_day : ndarray, shape (m,)
        The baseline's scores and the day of each.

    Returns
    -------
    float
        Excess PSI (>= 0); 0 with fewer than two days of ``MIN_NOISE_DAY_ROWS`` rows.
    """
    _, day_idx = np.unique(base_day, return_inverse=True)
    nb = len(fp.bins)
    counts = np.bincount(day_idx * nb + drift.continuous_bins(fp.edges, base_scores),
                         minlength=(day_idx.max() + 1) * nb).reshape(-1, nb)
    counts = counts[counts.sum(axis=1) >= MIN_NOISE_DAY_ROWS]
    if len(counts) < 2:
        return 0.0
    rest = counts.sum(axis=0) - counts
    n_day, n_rest = counts.sum(axis=1), rest.sum(axis=1)
    day_psi = drift.psi(rest / n_rest[:, None], counts / n_day[:, None]).sum(axis=1)
    sampling = drift.expected_null_psi((rest > 0).sum(axis=1), n_day, n_rest)
    return float(max(0.0, (day_psi - sampling).max()))


def decision_share_p_value(x: int, n: int, base_counts: np.ndarray, base_rows: np.ndarray) -> float:
    """Two-sided p-value of ``x`` decisions among ``n`` rows given the baseline days' decisions.

    The day's count is negative binomial: Poisson at the baseline's share times a gamma
    multiplier whose squared coefficient of variation is the day-to-day dispersion plus the
    share's own uncertainty. The dispersion is the method-of-moments quasi-Poisson one
    (Pearson chi-square over k - 1 degrees of freedom, floored at 1; McCullagh & Nelder 1989,
    sec. 4.5), turned into a gamma variance at the baseline's mean day (Var = mu + tau^2 mu^2,
    the negative binomial). A share with no baseline decisions counts half a decision
    (Jeffreys). Two-sided: twice the smaller tail, capped at 1.

    Seven baseline days estimate the dispersion loosely. Simulated at 60 decisions a day: with
    Poisson variation no clean day reaches p < 1e-6 and every collapse to 4 decisions does; with
    decisions varying about 27% from day to day beyond Poisson (gamma, lognormal or
    compromised-card bursts), 0.1-0.4% of clean days reach it and 60-70% of such collapses
    (nearly all reach p < 1e-4). A longer ``baseline_days`` tightens both.

    Parameters
    ----------
    x, n : int
        The day's decisions and rows (n > 0).
    base_counts, base_rows : ndarray, shape (k,)
        Decisions and rows of each baseline day (rows > 0).

    Returns
    -------
    float
        p-value in (0, 1].
    """
    counts, rows = np.asarray(base_counts, dtype="float64"), np.asarray(base_rows, dtype="float64")
    total = max(counts.sum(), 0.5)
    share = total / rows.sum()
    k = len(counts)
    expected = rows * share
    tau2 = max(0.0, drift.pearson_dispersion(counts, expected) - 1) / expected.mean()
    # A new day varies by tau2; the share it is compared with is a mean over k days (tau2 / k)
    # of ``total`` decisions (Poisson: 1 / total).
    cv2 = tau2 * (1 + 1 / k) + 1 / total
    mu = n * share
    size = 1 / cv2
    dist = stats.nbinom(size, size / (size + mu))
    return float(min(1.0, 2 * min(dist.cdf(x), dist.sf(x - 1))))
