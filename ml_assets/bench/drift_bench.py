"""Drift speed, side by side in one run: PSI (10 reference-quantile bins) + two-sample KS for
``n_features`` over an ``n_ref``-row reference and an ``n_cur``-row day.

- ``numpy_scipy``: the vectorized floor, recomputing edges from the reference every time and
  calling ``scipy.stats.ks_2samp`` per feature;
- ``profile_cold``: building our reference profile and comparing (first day of a version);
- ``profile_warm``: comparing against the stored profile (every later day), load included;
- ``evidently``: Evidently's per-column PSI and KS, run by the peer tools' Python
  (``--peers-python``; Evidently 0.7 does not import on pandas 3.1) on the same data as Parquet.

``python -m ml_assets.bench.drift_bench`` prints the report as JSON.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats
from threadpoolctl import threadpool_info

from ml_assets.lib.monitoring import drift

from .measure import run_peer


def _data(n_ref: int, n_cur: int, n_features: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    cols = [f"f{i:02d}" for i in range(n_features)]
    ref = pd.DataFrame(rng.lognormal(0, 1, (n_ref, n_features)), columns=cols)
    cur = pd.DataFrame(rng.lognormal(0.05, 1.05, (n_cur, n_features)), columns=cols)
    return ref, cur


def numpy_scipy(ref: pd.DataFrame, cur: pd.DataFrame, bins: int = 10) -> pd.DataFrame:
    rows = []
    for c in ref.columns:
        r, x = ref[c].to_numpy(), cur[c].to_numpy()
        inner = np.unique(np.quantile(r, np.linspace(0, 1, bins + 1)[1:-1]))
        rs = np.bincount(np.searchsorted(inner, r, "left"), minlength=len(inner) + 1) / len(r)
        cs = np.bincount(np.searchsorted(inner, x, "left"), minlength=len(inner) + 1) / len(x)
        ks = stats.ks_2samp(r, x)
        rows.append({"feature": c, "psi": float(drift.psi(rs, cs).sum()),
                     "ks_stat": float(ks.statistic), "ks_pvalue": float(ks.pvalue)})
    return pd.DataFrame(rows)


def _timed(fn, repeats: int):
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def run_drift_bench(n_ref: int = 1_000_000, n_cur: int = 100_000, n_features: int = 20,
                    repeats: int = 3, seed: int = 0, peers_python: str | None = None,
                    threads: int = 1) -> dict:
    """Time each drift implementation on the same generated data (best of ``repeats``; the
    peer once) and check our values against numpy/scipy."""
    ref, cur = _data(n_ref, n_cur, n_features, seed)
    cols = list(ref.columns)
    floor_s, floor = _timed(lambda: numpy_scipy(ref, cur), repeats)
    cold_s, _ = _timed(lambda: drift.compare(drift.build_profile(ref, cols, []), cur), repeats)
    with tempfile.TemporaryDirectory() as tmp:
        sha, path = drift.store_profile(Path(tmp), drift.build_profile(ref, cols, []))
        warm_s, ours = _timed(lambda: drift.compare(drift.load_profile(path, sha), cur), repeats)
        size = path.stat().st_size
        ref.to_parquet(Path(tmp) / "ref.parquet")
        cur.to_parquet(Path(tmp) / "cur.parquet")
        peer = run_peer(peers_python, "drift", Path(tmp), threads)
    ev_s = peer.get("seconds")
    diff = {k: float(np.max(np.abs(ours[k].to_numpy() - floor[k].to_numpy())))
            for k in ("psi", "ks_stat", "ks_pvalue")}
    seconds = {"numpy_scipy": floor_s, "profile_cold": cold_s, "profile_warm": warm_s,
               "evidently": ev_s}
    return {
        "n_ref": n_ref, "n_cur": n_cur, "n_features": n_features, "repeats": repeats,
        "threads": {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
                    "pools": [(p["internal_api"], p["num_threads"]) for p in threadpool_info()]},
        "seconds": seconds,
        "profile_bytes": size,
        "warm_vs_numpy_scipy": floor_s / warm_s,
        "cold_vs_numpy_scipy": floor_s / cold_s,
        "warm_vs_evidently": ev_s / warm_s if ev_s else None,
        "evidently": f"measured: evidently {peer['version']} (peer Python)" if ev_s else
                     f"skipped: {peer['reason']}",
        "max_abs_diff": diff,
    }


if __name__ == "__main__":
    print(json.dumps(run_drift_bench(), indent=2))
