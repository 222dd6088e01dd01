"""Input drift against a reference *profile*: PSI per feature and two-sample KS for continuous ones.

The reference profile (bins, counts, exact ECDF; stored per model version) is built in
``drift_profile`` and the statistics are in ``drift_stats``; this module compares a day's rows
against the profile and grades the result. Their public names stay importable from here.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

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
    ks_against_profile,
    psi,
)


def compare(profile: DriftProfile, frame: pd.DataFrame, top_bins: int = 3) -> pd.DataFrame:
    """Today's rows against the reference, one row per profiled feature.

    Parameters
    ----------
    profile : DriftProfile
    frame : DataFrame, shape (n_rows, n_features)
        The day's rows.
    top_bins : int
        How many of the most-moving bins to report.

    Returns
    -------
    DataFrame, one row per feature
        ``psi``, ``ks_stat``/``ks_pvalue`` (NaN for categorical), ``noise_psi``, ``n_ref``/
        ``n_cur`` (rows), missing shares (0-1) and ``top_bins`` (JSON).
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
        cur_share = cur_counts / max(int(cur_counts.sum()), 1)
        contrib = psi(fp.ref_share, cur_share)
        order = np.argsort(-np.abs(contrib))[:top_bins]
        rows.append({
            "feature": name, "kind": fp.kind, "psi": float(contrib.sum()),
            "ks_stat": ks_stat, "ks_pvalue": ks_p,
            "noise_psi": fp.noise_psi, "n_ref": fp.n, "n_cur": int(cur_counts.sum()),
            "missing_share_ref": float(fp.ref_share[-1]), "missing_share_cur": float(cur_share[-1]),
            "top_bins": json.dumps([{"bin": fp.bins[i], "ref_share": round(float(fp.ref_share[i]), 6),
                                     "cur_share": round(float(cur_share[i]), 6),
                                     "psi": round(float(contrib[i]), 6)} for i in order]),
        })
    return pd.DataFrame(rows)


def severity(value: float, warn: float, error: float) -> str:
    """``"error"`` above ``error``, ``"warn"`` above ``warn``, else ``"ok"``.

    Parameters
    ----------
    value : float
        The statistic (e.g. PSI); NaN is ``"ok"``: nothing to say.
    warn, error : float
        Thresholds in the statistic's units.

    Returns
    -------
    {"ok", "warn", "error"}
    """
    if value > error:
        return "error"
    return "warn" if value > warn else "ok"


def effective_thresholds(warn: float, error: float, noise_psi: float,
                         noise_margin: float = 2.0) -> tuple[float, float]:
    """Configured PSI thresholds raised for a feature whose clean reference days already vary more.

    Parameters
    ----------
    warn, error : float
        Configured thresholds (PSI).
    noise_psi : float
        Largest PSI of one clean reference day against the whole reference.
    noise_margin : float
        Multiple of ``noise_psi`` the error threshold must clear.

    Returns
    -------
    warn, error : float
        ``(max(warn, noise_psi), max(error, noise_margin * noise_psi))``.
    """
    return max(warn, noise_psi), max(error, noise_margin * noise_psi)

