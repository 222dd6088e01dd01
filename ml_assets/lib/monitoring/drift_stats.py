"""The two drift statistics: the population stability index over bins and the two-sample
Kolmogorov-Smirnov test against a profile's exact reference ECDF.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy import stats

if TYPE_CHECKING:
    from ml_assets.lib.monitoring.drift_profile import FeatureProfile

PSI_EPS = 1e-4  # shares are floored here so an empty bin gives a large but finite PSI
EXACT_KS_MAX_N = 10_000  # scipy's 'auto' switches from exact to asymptotic p-values here


def psi(ref_share: np.ndarray, cur_share: np.ndarray, eps: float = PSI_EPS) -> np.ndarray:
    """Per-bin contributions to the population stability index:
    (cur - ref) * ln(cur / ref), shares floored at ``eps`` (credit-scoring practice; see
    Yurdakul 2018, "Statistical properties of the population stability index").

    Parameters
    ----------
    ref_share, cur_share : array-like of float, shape (..., n_bins)
        Shares per bin, each summing to 1 over the last axis.

    Returns
    -------
    ndarray of float, shape (..., n_bins)
        PSI contributions; their sum over the last axis is the PSI.
    """
    r = np.maximum(np.asarray(ref_share, dtype="float64"), eps)
    c = np.maximum(np.asarray(cur_share, dtype="float64"), eps)
    return (c - r) * np.log(c / r)


def ks_against_profile(fp: FeatureProfile, current: np.ndarray) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov test of ``current`` against the reference ECDF of ``fp``.

    Equal to ``scipy.stats.ks_2samp`` on the raw samples (NaNs excluded): exact p-values up to
    ``EXACT_KS_MAX_N`` rows, else ``scipy.stats.kstwo`` at the effective size m*n/(m+n), as
    ``ks_2samp`` does for large samples; the reference is never rescanned.

    Parameters
    ----------
    fp : FeatureProfile
        A continuous feature's profile (``values`` and ``counts``).
    current : ndarray of float, shape (n_rows,)

    Returns
    -------
    statistic, pvalue : float
        Largest ECDF distance in [0, 1] and its two-sided p-value; NaN when a sample is empty.
    """
    cur = np.sort(current[~np.isnan(current)])
    n_ref, n_cur = int(fp.counts.sum()), len(cur)
    if n_ref == 0 or n_cur == 0:
        return float("nan"), float("nan")
    if max(n_ref, n_cur) <= EXACT_KS_MAX_N:  # small samples: scipy's exact p-value
        res = stats.ks_2samp(np.repeat(fp.values, fp.counts), cur)
        return float(res.statistic), float(res.pvalue)
    cum = np.concatenate([[0], np.cumsum(fp.counts)]) / n_ref
    uniq, first = np.unique(cur, return_index=True)
    f_cur_right = np.append(first[1:], n_cur) / n_cur
    f_cur_left = first / n_cur
    # Between two current values the current ECDF is flat and the reference one monotone, so
    # the supremum is reached at a current value or just before it.
    f_ref_right = cum[np.searchsorted(fp.values, uniq, side="right")]
    f_ref_left = cum[np.searchsorted(fp.values, uniq, side="left")]
    d = float(max(np.abs(f_ref_right - f_cur_right).max(), np.abs(f_ref_left - f_cur_left).max()))
    m, n = sorted([float(n_ref), float(n_cur)], reverse=True)
    pvalue = float(np.clip(stats.kstwo.sf(d, np.round(m * n / (m + n))), 0, 1))
    return d, pvalue

