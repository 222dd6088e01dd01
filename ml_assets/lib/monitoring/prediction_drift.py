"""Daily prediction drift: each live version's score quantiles and decision share, and the
PSI of its day's scores against the same version's trailing baseline."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from ml_assets.lib.core.workspace import Workspace
from ml_assets.lib.monitoring import drift
from ml_assets.lib.monitoring.scored_events import load_scores

QUANTILES = (0.1, 0.5, 0.9)


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
