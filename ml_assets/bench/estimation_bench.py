"""Estimated AUC before labels, side by side on the same data: our confidence-based estimate
(``lib.monitoring.evaluation``: isotonic ``fit_calibrator`` on a labeled reference, then
``expected_auc`` per chunk) vs NannyML's CBPE (run by the peer tools' Python), each timed from
the frames in memory to one estimate per chunk, each scored by its mean absolute error against
the realized AUC of the chunk's true labels.

The data: a score that ranks a latent risk with noise, labels drawn from the true risk, and a
covariate shift growing over the analysis chunks so the AUC moves and the estimate has work.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from ml_assets.lib.monitoring.evaluation import calibrate, expected_auc, fit_calibrator

from .measure import run_peer


def _frame(rng: np.random.Generator, n: int, shift: np.ndarray) -> pd.DataFrame:
    risk = rng.normal(shift, 1.0, n)
    label = rng.random(n) < 1 / (1 + np.exp(-(risk * 1.5 - 3.0)))
    score = 1 / (1 + np.exp(-(risk * 1.2 - 2.5 + rng.normal(0, 0.8, n))))
    return pd.DataFrame({"score": score, "pred": (score >= 0.5).astype("int64"),
                         "label": label.astype("int64")})


def estimation_data(n_rows: int, chunks: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A labeled reference of ``n_rows // 4`` rows and an analysis of ``n_rows`` (rounded down to
    whole chunks) whose risk shifts by up to 0.6 standard deviations over its ``chunks``."""
    rng = np.random.default_rng(seed)
    size = n_rows // chunks
    shift = np.repeat(np.linspace(0.0, 0.6, chunks), size)
    return _frame(rng, n_rows // 4, np.zeros(n_rows // 4)), _frame(rng, size * chunks, shift)


def ours(reference: pd.DataFrame, analysis: pd.DataFrame, chunks: int) -> list[float | None]:
    """Calibrate on the reference, then the expected AUC of each analysis chunk."""
    calibrator = fit_calibrator(reference["score"].to_numpy(), reference["label"].to_numpy(), 1)
    return [expected_auc(s, calibrate(calibrator, s))
            for s in np.split(analysis["score"].to_numpy(), chunks)]


def _mean_abs_error(estimates: list, realized: list[float]) -> float:
    return float(np.mean(np.abs(np.array(estimates, dtype="float64") - realized)))


def run_estimation_bench(n_rows: int = 1_000_000, chunks: int = 30,
                         peers_python: str | None = None, threads: int = 1) -> dict:
    """Time and score both estimators on the same data (see the module docstring).

    Returns
    -------
    dict
        ``seconds`` (``ml_assets``, ``nannyml`` or None), ``mean_abs_error`` of each vs the
        realized AUC per chunk, ``speedup_vs_nannyml``, and ``nannyml`` (measured, or why not).
    """
    reference, analysis = estimation_data(n_rows, chunks)
    realized = [roc_auc_score(y, s) for y, s in zip(np.split(analysis["label"].to_numpy(), chunks),
                                                    np.split(analysis["score"].to_numpy(), chunks),
                                                    strict=True)]
    t0 = time.perf_counter()
    estimates = ours(reference, analysis, chunks)
    our_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        reference.to_parquet(Path(tmp) / "reference.parquet")
        analysis.to_parquet(Path(tmp) / "analysis.parquet")
        (Path(tmp) / "chunks.json").write_text(json.dumps({"chunks": chunks}))
        peer = run_peer(peers_python, "cbpe", Path(tmp), threads)
    theirs = peer.get("estimated_auc")
    if theirs is not None and len(theirs) != chunks:
        peer, theirs = {"reason": f"nannyml returned {len(theirs)} chunks, not {chunks}"}, None
    errors = {"ml_assets": _mean_abs_error(estimates, realized),
              "nannyml": _mean_abs_error(theirs, realized) if theirs else None}
    return {"rows": len(analysis), "reference_rows": len(reference), "chunks": chunks,
            "seconds": {"ml_assets": our_s, "nannyml": peer.get("seconds") if theirs else None},
            "mean_abs_error": errors,
            "speedup_vs_nannyml": peer["seconds"] / our_s if theirs else None,
            "realized_auc_range": [min(realized), max(realized)],
            "nannyml": f"measured: nannyml {peer['version']} (peer Python)" if theirs
                       else f"skipped: {peer['reason']}"}
