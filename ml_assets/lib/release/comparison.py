"""The paired measurements of a shadow window: champion and challenger scored the same events,
so their scores, decisions, failures, latency and online lift are compared row by row. The gate
that turns these into a promotion decision is in ``shadow.py``."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.metrics import roc_auc_score
from threadpoolctl import threadpool_limits

from ml_assets.lib.core.datasets import DatasetSpec, ShadowConfig
from ml_assets.lib.core.paths import DataPaths
from ml_assets.lib.features.definitions import Categorical, Numeric
from ml_assets.lib.monitoring.drift_stats import psi
from ml_assets.lib.monitoring.evaluation import auc_standard_error
from ml_assets.lib.scoring.batch import load_live_model


def edge_case_masks(features: pd.DataFrame, spec: DatasetSpec) -> dict[str, np.ndarray]:
    """Rows on the long tail: a missing input attribute, a category outside the vocabulary,
    or no history for a history feature (a first-seen card or merchant).

    Parameters
    ----------
    features : DataFrame, shape (n_rows, n_columns)
        Feature rows, with every feature of ``spec`` (categoricals as codes).
    spec : DatasetSpec

    Returns
    -------
    dict of str to ndarray of bool, shape (n_rows,)
        Keys ``missing_input``, ``unknown_category``, ``no_history``.
    """
    numeric = [f.name for f in spec.features if isinstance(f, Numeric)]
    history = [f.name for f in spec.features if not isinstance(f, Numeric | Categorical)]
    unknown = np.zeros(len(features), dtype=bool)
    for f in spec.features:
        if isinstance(f, Categorical):  # the unknown bucket is the last code
            unknown |= features[f.name].to_numpy(dtype="float64") == len(f.vocabulary)
    return {"missing_input": features[numeric].isna().any(axis=1).to_numpy(),
            "unknown_category": unknown,
            "no_history": features[history].isna().any(axis=1).to_numpy()}


def band_psi(reference: np.ndarray, current: np.ndarray, bands: tuple[float, ...]) -> float:
    """PSI of ``current`` scores against ``reference`` scores over fixed probability bands.

    Fixed bands, not the reference's deciles: on an imbalanced problem nine deciles of the
    champion's scores sit among clear negatives a few 1e-5 apart, and an honest retrain that
    reorders them moves a decile PSI past 0.25 without changing one decision (measured on the
    shadow test world: decile PSI 0.30, band PSI 0.02; a model fit on shuffled labels 4.6 and
    1.6). The bands read scores as the business does, as probabilities.

    Parameters
    ----------
    reference, current : ndarray of float, shape (n,) and (m,)
        Finite scores in [0, 1]: the champion's and the challenger's.
    bands : tuple of float
        Band edges, strictly increasing from 0 to 1 (``ShadowConfig.score_bands``).

    Returns
    -------
    float
        Sum over bands of (cur - ref) * ln(cur / ref), shares floored at ``PSI_EPS``
        (Yurdakul 2018); NaN when either side is empty.
    """
    if len(reference) == 0 or len(current) == 0:
        return float("nan")
    edges = np.asarray(bands, dtype="float64")
    ref = np.histogram(np.clip(reference, 0.0, 1.0), edges)[0] / len(reference)
    cur = np.histogram(np.clip(current, 0.0, 1.0), edges)[0] / len(current)
    return float(psi(ref, cur).sum())


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return 1.0 if len(a) and np.array_equal(a, b) else float("nan")
    return float(stats.spearmanr(a, b).statistic)


def _auc(y: np.ndarray, s: np.ndarray) -> float | None:
    return float(roc_auc_score(y, s)) if len(np.unique(y)) == 2 else None


def compare(pairs: pd.DataFrame, score_bands: tuple[float, ...] = ShadowConfig.score_bands
            ) -> dict:
    """Paired comparison of one window: coverage, errors, disagreement, distribution overlap.

    Parameters
    ----------
    pairs : DataFrame
        One row per event with ``champion_score``, ``challenger_score`` (NaN when not scored),
        ``champion_decision``, ``challenger_decision`` and ``source``.
    score_bands : tuple of float
        Probability band edges for ``score_psi`` (see ``band_psi``).

    Returns
    -------
    dict
        Counts and rates over the events the champion scored; ``score_psi`` is the PSI of
        the challenger's scores against the champion's over ``score_bands`` (``band_psi``),
        ``rank_correlation`` the Spearman correlation (``scipy.stats.spearmanr``; NaN under
        3 pairs or constant scores), ``mean_abs_score_diff`` in score units.
    """
    champ = pairs["champion_score"].to_numpy(dtype="float64")
    chal = pairs["challenger_score"].to_numpy(dtype="float64")
    n = len(pairs)
    champ_scored = ~np.isnan(champ)
    missing = champ_scored & pairs["challenger_score"].isna().to_numpy()
    nonfinite = champ_scored & ~missing & ~np.isfinite(chal)
    both = champ_scored & np.isfinite(chal)
    dc = pairs["champion_decision"].to_numpy(dtype=bool, na_value=False)
    dx = pairs["challenger_decision"].to_numpy(dtype=bool, na_value=False)
    differ = (dc != dx) & both
    flagged = (dc | dx) & both
    return {
        "events": int(n),
        "paired_events": int(both.sum()),
        "realtime_events": int((pairs["source"] == "realtime").sum()),
        "missing_challenger_scores": int(missing.sum()),
        "nan_inf_scores": int(nonfinite.sum()),
        "error_rate": float((missing | nonfinite).sum() / max(int(champ_scored.sum()), 1)),
        "nan_inf_rate": float(nonfinite.sum() / max(int(champ_scored.sum()), 1)),
        "disagreements": int(differ.sum()),
        "disagreement_rate": float(differ.sum() / max(int(both.sum()), 1)),
        "flagged_disagreement_rate": float(differ.sum() / max(int(flagged.sum()), 1)),
        "champion_decision_rate": float(dc[both].mean()) if both.any() else 0.0,
        "challenger_decision_rate": float(dx[both].mean()) if both.any() else 0.0,
        "score_psi": band_psi(champ[both], chal[both], score_bands),
        "rank_correlation": _spearman(champ[both], chal[both]),
        "mean_abs_score_diff": float(np.abs(champ[both] - chal[both]).mean()) if both.any() else 0.0,
    }


def edge_cases(pairs: pd.DataFrame, features: pd.DataFrame, spec: DatasetSpec) -> dict:
    """Per edge-case kind: rows, challenger failures and disagreement on those rows.

    Parameters
    ----------
    pairs : DataFrame
        As for ``compare``, with ``spec.event_id``.
    features : DataFrame
        Feature rows of the same events, joined on ``spec.event_id``.
    spec : DatasetSpec

    Returns
    -------
    dict of str to dict
        Per ``edge_case_masks`` kind: ``rows``, ``challenger_failures``,
        ``disagreement_rate`` and ``mean_abs_score_diff``.
    """
    joined = pairs.merge(features, on=spec.event_id, how="inner")
    out = {}
    for kind, mask in edge_case_masks(joined, spec).items():
        part = compare(joined[mask]) if mask.any() else None
        out[kind] = {"rows": int(mask.sum()),
                     "challenger_failures": 0 if part is None else
                     part["missing_challenger_scores"] + part["nan_inf_scores"],
                     "disagreement_rate": 0.0 if part is None else part["disagreement_rate"],
                     "mean_abs_score_diff": 0.0 if part is None else part["mean_abs_score_diff"]}
    return out


def measure_latency(paths: DataPaths, spec: DatasetSpec, cards: dict[str, dict],
                    features: pd.DataFrame, logged: pd.DataFrame, samples: int) -> dict:
    """p50/p95/p99 per model: from realtime logs where the model was logged, else timed
    single-row model calls on the window's own feature rows (one call = one request).

    Parameters
    ----------
    paths : DataPaths
    spec : DatasetSpec
    cards : dict of str to dict
        Model card per version.
    features : DataFrame
        The window's feature rows; up to ``samples`` are timed (``random_state=0``).
    logged : DataFrame
        Prediction-log rows with ``model_version`` and ``latency_ms``.
    samples : int
        Rows to time when a version has no logged latency.

    Returns
    -------
    dict of str to dict
        Per version: ``p50_ms``, ``p95_ms``, ``p99_ms`` (milliseconds; NaN without samples),
        ``samples`` and ``source``.

    Raises
    ------
    ArtifactIntegrityError
        A model artifact that must be timed fails verification.
    """
    out = {}
    rows = features.sample(min(samples, len(features)), random_state=0)
    x = rows[spec.feature_names].to_numpy(dtype="float64")
    for version, card in cards.items():
        ms = logged.loc[logged["model_version"] == version, "latency_ms"].to_numpy(dtype=float)
        source = "prediction_log (end-to-end request)"
        if len(ms) == 0 and len(x):
            model = load_live_model(paths, card)["model"]
            ms = np.empty(len(x))
            with threadpool_limits(limits=1, user_api="openmp"):
                for i in range(len(x)):  # timing individual calls is the measurement itself
                    t0 = time.perf_counter()
                    model.predict_proba(x[i:i + 1])
                    ms[i] = (time.perf_counter() - t0) * 1e3
            source = "single-row model call, in-process"
        q = np.percentile(ms, [50, 95, 99]) if len(ms) else [float("nan")] * 3
        out[version] = {"p50_ms": float(q[0]), "p95_ms": float(q[1]), "p99_ms": float(q[2]),
                        "samples": int(len(ms)), "source": source}
    return out


def offline_online(pairs: pd.DataFrame, champion_card: dict, challenger_card: dict,
                   cfg: ShadowConfig) -> dict:
    """Does shadow confirm the held-out story? Decision rate vs the held-out one at once; the
    lift over the champion (AUC, same labeled events) vs the held-out lift once labels land.
    Both comparisons allow for the sampling noise of small held-out sets.

    The decision rates differ when the relative gap exceeds ``cfg.decision_rate_tolerance``
    and the absolute gap exceeds 3 pooled two-proportion standard errors. Possible leakage is
    flagged when the held-out lift exceeds the online lift by more than ``cfg.max_lift_gap``
    and 2 standard errors, each AUC's SE after Hanley & McNeil (1982).

    Parameters
    ----------
    pairs : DataFrame
        As for ``compare``, plus ``label`` (NaN until known).
    champion_card, challenger_card : dict
        Model cards with ``metrics.held_out`` (``rows``, ``positive_rate``, ``auc``,
        ``decision_rate``).
    cfg : ShadowConfig
        Tolerances and ``min_labeled_positives``.

    Returns
    -------
    dict
        Decision rates, AUCs and lifts; ``lift_status`` is ``"pending"`` until enough
        labelled positives arrived.
    """
    both = pairs.dropna(subset=["champion_score", "challenger_score"])
    held, champ_held = challenger_card["metrics"]["held_out"], champion_card["metrics"]["held_out"]
    n1, n2 = held["rows"], len(both)
    r1 = held["decision_rate"]
    r2 = float(both["challenger_decision"].astype(bool).mean()) if n2 else 0.0
    pooled = (r1 * n1 + r2 * n2) / max(n1 + n2, 1)
    noise = np.sqrt(pooled * (1 - pooled) * (1 / max(n1, 1) + 1 / max(n2, 1)))
    rel = r2 / r1 - 1 if r1 > 0 else (0.0 if r2 == 0 else float("inf"))
    labeled = both[both["label"].notna()]
    y = labeled["label"].to_numpy(dtype=int)
    pos, neg = int(y.sum()), int(len(y) - y.sum())
    online = {m: _auc(y, labeled[f"{m}_score"].to_numpy()) for m in ("champion", "challenger")}
    offline_lift = (held["auc"] or 0.0) - (champ_held["auc"] or 0.0)
    pending = pos < cfg.min_labeled_positives or None in online.values()
    online_lift = None if pending else online["challenger"] - online["champion"]
    gap = None if pending else offline_lift - online_lift

    def held_se(card_metrics: dict) -> float:
        p = round(card_metrics["positive_rate"] * card_metrics["rows"])
        return auc_standard_error(card_metrics["auc"], p, card_metrics["rows"] - p)

    gap_se = None if pending else float(np.sqrt(
        held_se(held) ** 2 + held_se(champ_held) ** 2
        + sum(auc_standard_error(a, pos, neg) ** 2 for a in online.values())))
    return {
        "held_out_decision_rate": float(r1), "online_decision_rate": r2,
        "decision_rate_relative_diff": float(rel),
        "decision_rate_mismatch": bool(abs(rel) > cfg.decision_rate_tolerance
                                       and abs(r2 - r1) > 3 * noise),
        "labeled_events": int(len(labeled)), "labeled_positives": pos,
        "held_out_auc": {"champion": champ_held["auc"], "challenger": held["auc"]},
        "online_auc": online, "held_out_lift": float(offline_lift), "online_lift": online_lift,
        "lift_gap": gap, "lift_gap_se": gap_se, "lift_status": "pending" if pending else "measured",
        "possible_leakage": bool(gap is not None and gap > cfg.max_lift_gap
                                 and gap > 2 * gap_se),
    }
