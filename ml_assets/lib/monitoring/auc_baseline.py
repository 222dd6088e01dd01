"""The baseline a mature day's AUC is held to: the per-day AUC over the held-out days of the
training window, recorded on the model card at training time.

Why not the pooled held-out AUC: a pooled AUC also ranks pairs drawn from different days. When
days differ in base rate and score level together (a day with more fraud also scores higher),
those cross-day pairs are easy, so the pooled AUC exceeds the AUC of a typical single day - on
a real year of data a pooled 0.766 against a per-day median of 0.718 - and one day's AUC held
to the pooled figure pages on normal days. A day is compared with the same statistic over the
same period: the AUC of one held-out day.

Held-out days are smaller than production days (the test split is a share of each day), so
their spread mixes day-to-day variation with a larger sampling noise. The noise is taken out:
the between-day variance is the held-out days' robust variance minus their mean squared
Hanley-McNeil standard error (the method-of-moments estimate of a random-effects meta-analysis,
DerSimonian & Laird 1986, "Meta-analysis in clinical trials", Controlled Clinical Trials
7:177-188), and a production day brings its own standard error (``evaluation.auc_alert``).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from ml_assets.lib.monitoring.evaluation import auc_standard_error

MIN_BASELINE_DAYS = 7  # fewer usable held-out days and no per-day baseline is recorded
IQR_TO_SD = 1.349  # interquartile range of a normal distribution, in standard deviations
MEDIAN_SE_FACTOR = float(np.sqrt(np.pi / 2))  # SE of a normal sample's median: this * sd / sqrt(k)
# SE of the IQR-based SD of a normal sample: this * sd / sqrt(k) (asymptotic variance of the
# 25% and 75% sample quantiles and their covariance: sqrt(2.474) / 1.349).
IQR_SD_SE_FACTOR = 1.166
Z95 = 1.6448536269514722  # one-sided 95% normal quantile


def per_day_auc(days: np.ndarray, y: np.ndarray, scores: np.ndarray,
                min_positives: int) -> pd.DataFrame:
    """AUC of each day, from within-day ranks (Mann-Whitney; ties count one half, as in
    ``sklearn.metrics.roc_auc_score``), with its Hanley-McNeil standard error.

    Parameters
    ----------
    days : array-like of datetime64, shape (n_rows,)
        The UTC day of each row.
    y : array-like of {0, 1}, shape (n_rows,)
    scores : array-like of float, shape (n_rows,)
    min_positives : int
        A day needs this many positives (and one negative) for an AUC, as on a production day
        (``evaluation.evaluate_day``).

    Returns
    -------
    DataFrame
        One row per day with an AUC, sorted by day: ``day``, ``rows``, ``positives``, ``auc``
        (0-1) and ``auc_se`` (AUC units).
    """
    df = pd.DataFrame({"day": pd.array(days),  # tz-aware days stay datetimes, not objects
                       "y": np.asarray(y, dtype="int64"),
                       "s": np.asarray(scores, dtype="float64")})
    df["r"] = df.groupby("day")["s"].rank(method="average")
    g = df.assign(rp=df["r"] * df["y"]).groupby("day").agg(
        rows=("y", "size"), positives=("y", "sum"), rank_sum=("rp", "sum")).reset_index()
    g = g[(g["positives"] >= max(min_positives, 1)) & (g["positives"] < g["rows"])].copy()
    n1, n0 = g["positives"], g["rows"] - g["positives"]
    g["auc"] = (g["rank_sum"] - n1 * (n1 + 1) / 2) / (n1 * n0)
    g["auc_se"] = [auc_standard_error(a, int(p), int(n))
                   for a, p, n in zip(g["auc"], n1, n0, strict=True)]
    return g.drop(columns="rank_sum").reset_index(drop=True)


def held_out_per_day(event_ts: pd.Series, y: np.ndarray, scores: np.ndarray,
                     label_cutoff: datetime, maturity_days: int, min_positives: int) -> dict:
    """The distribution of the per-day AUC over the held-out days whose labels were mature at
    the label cutoff (the gate a production day passes before its AUC counts).

    Parameters
    ----------
    event_ts : Series of tz-aware datetime, shape (n_rows,)
        Event time of each held-out row (UTC days are cut from it).
    y : array-like of {0, 1}, shape (n_rows,)
    scores : array-like of float, shape (n_rows,)
        The candidate's scores on those rows.
    label_cutoff : datetime
        Labels known before this (UTC); a day is mature once ``maturity_days`` have passed after
        its end.
    maturity_days : int
        ``monitoring.label_maturity_days``.
    min_positives : int
        ``monitoring.min_positives``: a day with fewer positives has no AUC.

    Returns
    -------
    dict
        Plain numbers; always ``days`` (held-out days with an AUC), ``days_immature`` and
        ``days_too_few_positives``, ``min_positives``. With at least ``MIN_BASELINE_DAYS`` days
        also: ``auc_p05``, ``auc_p25``, ``auc_p50``, ``auc_p75`` (per-day AUC quantiles),
        ``positives_p50`` and ``rows_p50`` (per-day sizes), ``day_se_rms`` (root mean square
        Hanley-McNeil SE of a held-out day), ``between_day_sd`` (day-to-day SD of the AUC with
        that sampling noise removed, floored at 0), ``between_day_sd_upper`` (its one-sided 95%
        upper confidence bound: a few noisy held-out days estimate it poorly, and a low
        estimate would page on ordinary days) and ``median_se`` (SE of ``auc_p50``), all in AUC
        units. Unknown values are omitted, never filled in.
    """
    ts = pd.to_datetime(pd.Series(event_ts).reset_index(drop=True), utc=True)
    day = ts.dt.floor("D")
    mature = (day + pd.Timedelta(days=1) + timedelta(days=maturity_days)
              <= pd.Timestamp(label_cutoff)).to_numpy()
    auc = per_day_auc(day[mature].array, np.asarray(y)[mature], np.asarray(scores)[mature],
                      min_positives)
    out = {"days": int(len(auc)), "days_immature": int(day[~mature].nunique()),
           "days_too_few_positives": int(day[mature].nunique() - len(auc)),
           "min_positives": int(min_positives)}
    if len(auc) < MIN_BASELINE_DAYS:
        return out
    q05, q25, q50, q75 = np.quantile(auc["auc"], [0.05, 0.25, 0.5, 0.75])
    spread = (q75 - q25) / IQR_TO_SD  # robust: one odd held-out day does not widen it
    se2 = float(np.mean(np.square(auc["auc_se"])))
    spread_upper = spread * (1 + Z95 * IQR_SD_SE_FACTOR / np.sqrt(len(auc)))
    return out | {
        "auc_p05": float(q05), "auc_p25": float(q25), "auc_p50": float(q50), "auc_p75": float(q75),
        "positives_p50": float(auc["positives"].median()), "rows_p50": float(auc["rows"].median()),
        "day_se_rms": float(np.sqrt(se2)),
        "between_day_sd": float(np.sqrt(max(spread ** 2 - se2, 0.0))),
        "between_day_sd_upper": float(np.sqrt(max(spread_upper ** 2 - se2, 0.0))),
        "median_se": float(MEDIAN_SE_FACTOR * spread / np.sqrt(len(auc))),
    }
