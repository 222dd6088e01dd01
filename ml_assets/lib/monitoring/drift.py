"""Input drift against a reference *profile*: PSI per feature and two-sample KS for continuous ones.

The reference profile (bins, counts, exact ECDF; stored per model version) is built in
``drift_profile`` and the statistics are in ``drift_stats``; this module compares a day's rows
against the profile and grades the result. Their public names stay importable from here.

Grading: a feature's PSI is judged against the configured WARN/ERROR levels (raised to its clean
day-to-day variability beyond sampling noise, ``noise_psi``) plus what a clean sample of the day's
size reaches by chance (``psi_null``, the PSI quantile under no drift). For large samples the
allowance vanishes and the configured levels apply as they are; for small ones it keeps a clean
day from alarming. A threshold so high that no realistic shift could pass it leaves the feature
*effectively unmonitored*: ``grade`` flags it with the reason instead of reporting "ok".
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from ml_assets.lib.core.policies import MonitoringConfig
from ml_assets.lib.monitoring.drift_profile import (  # noqa: F401  (re-exported for callers)
    MISSING,
    OTHER,
    DriftProfile,
    FeatureProfile,
    bin_counts,
    build_profile,
    categorical_profile,
    continuous_bins,
    continuous_profile,
    load_profile,
    store_profile,
)
from ml_assets.lib.monitoring.drift_stats import (  # noqa: F401  (re-exported for callers)
    EXACT_KS_MAX_N,
    PSI_EPS,
    expected_null_psi,
    ks_against_profile,
    pearson_dispersion,
    psi,
    psi_null_quantile,
)


def compare(profile: DriftProfile, frame: pd.DataFrame, top_bins: int = 3,
            null_quantile: float = 0.99) -> pd.DataFrame:
    """Today's rows against the reference, one row per profiled feature.

    Parameters
    ----------
    profile : DriftProfile
    frame : DataFrame, shape (n_rows, n_features)
        The day's rows.
    top_bins : int
        How many of the most-moving bins to report.
    null_quantile : float
        Quantile (0-1) of a clean sample's PSI reported as ``psi_null``.

    Returns
    -------
    DataFrame, one row per feature
        ``psi``, ``ks_stat``/``ks_pvalue`` (NaN for categorical; all NaN when ``frame`` has
        no rows: nothing to compare), ``noise_psi``, ``n_ref``/
        ``n_cur`` (rows), ``psi_expected`` (mean PSI of a clean sample of ``n_cur`` rows,
        ``drift_stats.expected_null_psi``), ``psi_null`` (its ``null_quantile``,
        ``drift_stats.psi_null_quantile``), missing shares (0-1) and ``top_bins`` (JSON).
    """
    rows = []
    for name, fp in profile.features.items():
        if fp.kind == "continuous":
            values = frame[name].to_numpy(dtype="float64")
            ks_stat, ks_p = ks_against_profile(fp, values)
        else:
            values = frame[name]
            ks_stat = ks_p = float("nan")
        cur_counts = bin_counts(fp, values)
        n = int(cur_counts.sum())
        cur_share = cur_counts / max(n, 1)
        contrib = psi(fp.ref_share, cur_share)
        # An empty sample has no distribution: its "PSI" would be the smoothing constant's.
        order = np.argsort(-np.abs(contrib))[:top_bins] if n else []
        rows.append({
            "feature": name, "kind": fp.kind, "psi": float(contrib.sum()) if n else np.nan,
            "ks_stat": ks_stat, "ks_pvalue": ks_p,
            "noise_psi": fp.noise_psi, "n_ref": fp.n, "n_cur": n,
            "missing_share_ref": float(fp.ref_share[-1]),
            "missing_share_cur": float(cur_share[-1]) if n else np.nan,
            "top_bins": json.dumps([{"bin": fp.bins[i], "ref_share": round(float(fp.ref_share[i]), 6),
                                     "cur_share": round(float(cur_share[i]), 6),
                                     "psi": round(float(contrib[i]), 6)} for i in order]),
        })
    out = pd.DataFrame(rows)
    if len(out):
        fps = list(profile.features.values())
        width = max(len(fp.bins) for fp in fps)
        counts = np.stack([np.pad(fp.ref_counts, (0, width - len(fp.bins))) for fp in fps])
        n_cur = int(out["n_cur"].iloc[0])  # every feature bins every row (missing included)
        out["psi_expected"] = expected_null_psi((counts > 0).sum(axis=1), max(n_cur, 1),
                                                np.maximum(out["n_ref"].to_numpy(), 1))
        out["psi_null"] = psi_null_quantile(counts, n_cur, null_quantile)
    return out


def severity(value, warn, error):
    """``"error"`` above ``error``, ``"warn"`` above ``warn``, else ``"ok"``; element-wise.

    Parameters
    ----------
    value : float or array-like of float, shape (n,)
        The statistic (e.g. PSI); NaN is ``"ok"``: nothing to say.
    warn, error : float or array-like of float, broadcastable to ``value``
        Thresholds in the statistic's units.

    Returns
    -------
    str or ndarray of str, shape (n,)
        ``"ok"``, ``"warn"`` or ``"error"``: a ``str`` for scalar input.
    """
    v = np.asarray(value, dtype="float64")
    level = np.where(v > error, "error", np.where(v > warn, "warn", "ok"))
    return str(level) if level.ndim == 0 else level.astype(object)


def effective_thresholds(warn: float, error: float, noise_psi, noise_margin: float = 2.0):
    """Configured PSI thresholds raised for features whose clean reference days already vary more.

    Parameters
    ----------
    warn, error : float
        Configured thresholds (PSI).
    noise_psi : float or array-like of float, shape (n,)
        Largest excess PSI of one clean reference day against the whole reference
        (``FeatureProfile.noise_psi``).
    noise_margin : float
        Multiple of ``noise_psi`` the error threshold must clear.

    Returns
    -------
    warn, error : float or ndarray of float, shape (n,)
        ``(max(warn, noise_psi), max(error, noise_margin * noise_psi))``.
    """
    noise = np.asarray(noise_psi, dtype="float64")
    return np.maximum(warn, noise), np.maximum(error, noise_margin * noise)


def grade(rows: pd.DataFrame, cfg: MonitoringConfig) -> pd.DataFrame:
    """Thresholds, severity and monitoring coverage of one day's ``compare`` rows.

    Each threshold is the configured level raised to the feature's clean day-to-day noise
    (``effective_thresholds``) plus ``psi_null``: the PSI a clean sample of the day's row count
    reaches on ``1 - cfg.psi_null_quantile`` of days (``drift_stats.psi_null_quantile``; about
    chi2.ppf(q, bins - 1) * (1/n + 1/N), Yurdakul 2018). A feature whose error threshold exceeds
    ``cfg.unmonitored_factor * cfg.psi_error`` (by default 4 x 0.25 = PSI 1) is *effectively
    unmonitored* that day: PSI 1 is four times the playbook's "no longer the same distribution"
    level - over decile bins, a normal feature whose mean moved by about one standard deviation
    (PSI ~ 0.24 at half a standard deviation, ~0.9 at one) - so real drift passes such a
    threshold unflagged.

    Parameters
    ----------
    rows : DataFrame, one row per feature
        The output of ``compare`` (``psi``, ``noise_psi``, ``n_cur``, ``psi_null``).
    cfg : MonitoringConfig
        ``psi_warn``/``psi_error``, ``noise_margin``, ``psi_null_quantile`` and
        ``unmonitored_factor``.

    Returns
    -------
    DataFrame
        ``rows`` plus ``warn_threshold``/``error_threshold`` (PSI), ``severity`` (the PSI verdict:
        "ok", "warn" or "error"), ``unmonitored`` (bool) and ``unmonitored_reason`` ("" when
        monitored).
    """
    warn, error = effective_thresholds(cfg.psi_warn, cfg.psi_error, rows["noise_psi"].to_numpy(),
                                       cfg.noise_margin)
    allowance = rows["psi_null"].to_numpy()
    out = rows.assign(warn_threshold=warn + allowance, error_threshold=error + allowance)
    out["severity"] = severity(out["psi"].to_numpy(), out["warn_threshold"].to_numpy(),
                               out["error_threshold"].to_numpy())
    out["unmonitored"] = out["error_threshold"].to_numpy() > cfg.unmonitored_factor * cfg.psi_error
    out["unmonitored_reason"] = [
        _unmonitored_reason(r, noise_error, cfg) if r.unmonitored else ""
        for r, noise_error in zip(out.itertuples(), error, strict=True)]
    return out


def _unmonitored_reason(r, noise_error: float, cfg: MonitoringConfig) -> str:
    bound = cfg.unmonitored_factor * cfg.psi_error
    head = (f"effectively unmonitored: error threshold {r.error_threshold:.3g} is above PSI "
            f"{bound:.3g} ({cfg.unmonitored_factor:g} x the configured {cfg.psi_error:g}) because ")
    if noise_error > bound:
        return head + (f"its clean reference days already differ from the reference by PSI "
                       f"{r.noise_psi:.3g} beyond sampling noise (x{cfg.noise_margin:g} margin): "
                       "a value many of a day's rows share (one dominant entity, a calendar "
                       "field) moves whole days across bin edges, as does a label-derived "
                       "feature still warming up in the reference window")
    return head + (f"the day has only {int(r.n_cur)} rows: a clean sample that small reaches "
                   f"PSI {r.psi_null:.3g} on {1 - cfg.psi_null_quantile:.0%} of days")
