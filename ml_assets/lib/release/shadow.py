"""Champion/challenger in shadow: how the challenger behaves on the same traffic, and the
promotion gate built from it.

Both models score every event (``batch_scores``; realtime ``prediction_log`` rows join in
when present), so the comparison is paired: same events, same features. The shadow window
starts at the challenger's training cutoff - earlier rows are its own training data and would
make any model look good. Labels are those known before ``horizon``.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.metrics import roc_auc_score
from threadpoolctl import threadpool_limits

from ml_assets.lib.core.datasets import DatasetSpec, ShadowConfig
from ml_assets.lib.core.identifiers import quote
from ml_assets.lib.core.lake import connect, daily_files, hourly_files, parquet_relation
from ml_assets.lib.core.paths import DataPaths, atomic_write_bytes
from ml_assets.lib.core.registry import Registry
from ml_assets.lib.features.definitions import Categorical, Numeric
from ml_assets.lib.monitoring import drift
from ml_assets.lib.scoring.batch import load_live_model

SUMMARY_DIR = "shadow_summary"


class ShadowDataMissing(RuntimeError):
    """No paired scores exist for the requested window."""


# -- loading ------------------------------------------------------------------------------
def shadow_start(card: dict) -> datetime:
    """Events before the challenger's training window end are its training data."""
    return datetime.fromisoformat(card["training_window"]["end"])


def load_pairs(paths: DataPaths, spec: DatasetSpec, champion: str, challenger: str,
               lo: datetime, hi: datetime, horizon: datetime | None) -> pd.DataFrame:
    """One row per event in [lo, hi): both models' score and decision (NaN / null where a model
    has no score), ``source``, ``label`` (known before ``horizon``, else NaN) and ``value``."""
    files, _ = hourly_files(paths.lake / "batch_scores", lo, hi)
    log_files = sorted(p for d in (paths.lake / "prediction_log").glob("*") if d.is_dir()
                       for p in d.glob("*.parquet"))
    eid, ets = quote(spec.event_id), quote(spec.event_ts)
    keys = ", ".join(quote(k) for k in spec.entity_keys)
    parts = []
    if files:
        parts.append(f"SELECT {eid}, {ets}, {keys}, model_version, score, decision, 'batch' AS "
                     f"source, NULL::DOUBLE AS latency_ms FROM {parquet_relation(files)}")
    if log_files:
        parts.append(f"SELECT {eid}, {ets}, {keys}, model_version, score, decision, 'realtime', "
                     f"latency_ms FROM {parquet_relation(log_files)}")
    if not parts:
        raise ShadowDataMissing(f"no batch_scores or prediction_log rows in [{lo}, {hi})")
    rows = " UNION ALL ".join(parts)
    metric = spec.business_metric
    value = quote(metric.value_column) if metric and metric.value_column else None
    sql = (f"WITH s AS (SELECT * FROM ({rows}) WHERE {ets} >= $lo AND {ets} < $hi "
           f"AND model_version IN ($a, $b)), "
           f"p AS (SELECT {eid}, any_value({ets}) AS {ets}, "
           + ", ".join(f"any_value({quote(k)}) AS {quote(k)}" for k in spec.entity_keys)
           + ", min(source) AS source, "  # 'batch' < 'realtime': batch rows win
           f"avg(score) FILTER (WHERE model_version = $a) AS champion_score, "
           f"avg(score) FILTER (WHERE model_version = $b) AS challenger_score, "
           f"bool_or(decision) FILTER (WHERE model_version = $a) AS champion_decision, "
           f"bool_or(decision) FILTER (WHERE model_version = $b) AS challenger_decision "
           f"FROM s GROUP BY {eid}) SELECT p.*")
    params = {"lo": lo, "hi": hi, "a": champion, "b": challenger}
    label_files = daily_files(paths.lake / "raw_labels", lo, horizon)[0] if horizon else []
    if label_files:
        sql += (f", CAST(l.{quote(spec.label)} AS DOUBLE) AS label FROM p LEFT JOIN (SELECT {eid}, "
                f"{quote(spec.label)} FROM {parquet_relation(label_files)} WHERE "
                f"{quote(spec.label_ts)} < $horizon) l USING ({eid})")
        params["horizon"] = horizon
    else:
        sql += ", CAST(NULL AS DOUBLE) AS label FROM p"
    event_files, _ = hourly_files(paths.lake / "raw_events", lo, hi)
    if value and event_files:
        sql = (f"SELECT q.*, CAST(e.{value} AS DOUBLE) AS value FROM ({sql}) q LEFT JOIN "
               f"(SELECT {eid}, {value} FROM {parquet_relation(event_files)}) e USING ({eid})")
    else:
        sql = f"SELECT *, 1.0 AS value FROM ({sql})"
    return connect().execute(sql + f" ORDER BY {ets}", params).df()


def load_latency_log(paths: DataPaths, spec: DatasetSpec, versions: list[str], lo: datetime,
                     hi: datetime) -> pd.DataFrame:
    """Realtime (model_version, latency_ms) rows logged by the serving app in [lo, hi)."""
    files = sorted(p for d in (paths.lake / "prediction_log").glob("*") if d.is_dir()
                   for p in d.glob("*.parquet"))
    if not files:
        return pd.DataFrame({"model_version": [], "latency_ms": []})
    ets = quote(spec.event_ts)
    return connect().execute(
        f"SELECT model_version, latency_ms FROM {parquet_relation(files)} WHERE {ets} >= $lo "
        f"AND {ets} < $hi AND model_version IN (SELECT unnest($v))",
        {"lo": lo, "hi": hi, "v": versions}).df()


def load_features(paths: DataPaths, spec: DatasetSpec, lo: datetime, hi: datetime,
                  ) -> pd.DataFrame:
    files, _ = hourly_files(paths.lake / "event_features", lo, hi)
    if not files:
        return pd.DataFrame({spec.event_id: [], **{f: [] for f in spec.feature_names}})
    cols = ", ".join(quote(c) for c in [spec.event_id, *spec.feature_names])
    return connect().execute(f"SELECT {cols} FROM {parquet_relation(files)}").df()


# -- measurements -------------------------------------------------------------------------
def edge_case_masks(features: pd.DataFrame, spec: DatasetSpec) -> dict[str, np.ndarray]:
    """Rows on the long tail: a missing input attribute, a category outside the vocabulary,
    or no history for a history feature (a first-seen card or merchant)."""
    numeric = [f.name for f in spec.features if isinstance(f, Numeric)]
    history = [f.name for f in spec.features if not isinstance(f, Numeric | Categorical)]
    unknown = np.zeros(len(features), dtype=bool)
    for f in spec.features:
        if isinstance(f, Categorical):  # the unknown bucket is the last code
            unknown |= features[f.name].to_numpy(dtype="float64") == len(f.vocabulary)
    return {"missing_input": features[numeric].isna().any(axis=1).to_numpy(),
            "unknown_category": unknown,
            "no_history": features[history].isna().any(axis=1).to_numpy()}


def _psi(reference: np.ndarray, current: np.ndarray) -> float:
    if len(reference) == 0 or len(current) == 0:
        return float("nan")
    profile = drift.build_profile(pd.DataFrame({"score": reference}), ["score"], [])
    return float(drift.compare(profile, pd.DataFrame({"score": current}))["psi"].iloc[0])


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return 1.0 if len(a) and np.array_equal(a, b) else float("nan")
    return float(stats.spearmanr(a, b).statistic)


def _auc(y: np.ndarray, s: np.ndarray) -> float | None:
    return float(roc_auc_score(y, s)) if len(np.unique(y)) == 2 else None


def compare(pairs: pd.DataFrame) -> dict:
    """Paired comparison of one window: coverage, errors, disagreement, distribution overlap."""
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
        "score_psi": _psi(champ[both], chal[both]),
        "rank_correlation": _spearman(champ[both], chal[both]),
        "mean_abs_score_diff": float(np.abs(champ[both] - chal[both]).mean()) if both.any() else 0.0,
    }


def edge_cases(pairs: pd.DataFrame, features: pd.DataFrame, spec: DatasetSpec) -> dict:
    """Per edge-case kind: rows, challenger failures and disagreement on those rows."""
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
    single-row model calls on the window's own feature rows (one call = one request)."""
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


def auc_se(auc: float | None, positives: int, negatives: int) -> float:
    """Hanley-McNeil standard error of an AUC (how much a small test set can mislead)."""
    if auc is None or positives < 1 or negatives < 1:
        return float("inf")
    q1, q2 = auc / (2 - auc), 2 * auc ** 2 / (1 + auc)
    var = (auc * (1 - auc) + (positives - 1) * (q1 - auc ** 2)
           + (negatives - 1) * (q2 - auc ** 2)) / (positives * negatives)
    return float(np.sqrt(max(var, 0.0)))


def offline_online(pairs: pd.DataFrame, champion_card: dict, challenger_card: dict,
                   cfg: ShadowConfig) -> dict:
    """Does shadow confirm the held-out story? Decision rate vs the held-out one at once; the
    lift over the champion (AUC, same labeled events) vs the held-out lift once labels land.
    Both comparisons allow for the sampling noise of small held-out sets."""
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
        return auc_se(card_metrics["auc"], p, card_metrics["rows"] - p)

    gap_se = None if pending else float(np.sqrt(
        held_se(held) ** 2 + held_se(champ_held) ** 2
        + sum(auc_se(a, pos, neg) ** 2 for a in online.values())))
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


# -- the report and its gate --------------------------------------------------------------
def _item(name: str, what: str, value, threshold, passed: bool, status: str | None = None) -> dict:
    return {"item": name, "description": what, "value": value, "threshold": threshold,
            "passed": bool(passed), "status": status or ("passed" if passed else "failed")}


def checklist(report: dict, cfg: ShadowConfig, latency_slo_ms: float) -> list[dict]:
    c, oo, edge = report["cumulative"], report["offline_online"], report["edge_cases"]
    chal_latency = report["latency"][report["challenger"]]
    edge_fail = sum(e["challenger_failures"] for e in edge.values())
    edge_dis = max((e["disagreement_rate"] for e in edge.values() if e["rows"]), default=0.0)
    lift_pending = oo["lift_status"] == "pending"
    return [
        _item("shadow_duration", "days of shadow data", report["days_of_data"], cfg.min_days,
              report["days_of_data"] >= cfg.min_days),
        _item("error_rate", "missing or failed challenger scores per event", c["error_rate"],
              cfg.max_error_rate, c["error_rate"] <= cfg.max_error_rate),
        _item("nan_inf_rate", "NaN or infinite challenger scores per event", c["nan_inf_rate"],
              0.0, c["nan_inf_rate"] == 0.0),
        _item("disagreement_rate", "events whose decisions differ at the threshold",
              c["disagreement_rate"], cfg.max_disagreement,
              c["disagreement_rate"] <= cfg.max_disagreement),
        _item("score_psi", "PSI of challenger scores vs champion score bins", c["score_psi"],
              cfg.max_score_psi, bool(c["score_psi"] <= cfg.max_score_psi)),
        _item("rank_correlation", "Spearman correlation of the two models' scores",
              c["rank_correlation"], cfg.min_rank_correlation,
              bool(c["rank_correlation"] >= cfg.min_rank_correlation)),
        _item("offline_online_decision_rate", "online vs held-out decision rate (relative diff)",
              oo["decision_rate_relative_diff"], cfg.decision_rate_tolerance,
              not oo["decision_rate_mismatch"]),
        _item("offline_online_lift", "held-out AUC lift minus online AUC lift over the champion"
              " (large: possible leakage)", oo["lift_gap"], cfg.max_lift_gap,
              not lift_pending and not oo["possible_leakage"],
              "pending" if lift_pending else None),
        _item("latency_p99_ms", f"challenger p99 latency ({chal_latency['source']})",
              chal_latency["p99_ms"], latency_slo_ms,
              bool(chal_latency["p99_ms"] <= latency_slo_ms)),
        _item("edge_cases", "challenger failures on edge-case rows; worst disagreement there",
              {"failures": edge_fail, "worst_disagreement_rate": edge_dis}, cfg.max_disagreement,
              edge_fail == 0 and edge_dis <= cfg.max_disagreement),
    ]


def shadow_report(paths: DataPaths, spec: DatasetSpec, registry: Registry, champion: str,
                  challenger: str, hi: datetime, horizon: datetime | None,
                  cfg: ShadowConfig | None = None, latency_slo_ms: float | None = None,
                  ) -> dict:
    """Daily and cumulative comparison of ``challenger`` against ``champion`` from the
    challenger's cutoff to ``hi``, with the promotion gate.

    Parameters
    ----------
    paths : DataPaths
        Runtime state root (lake with ``batch_scores``, ``raw_labels``, ``prediction_log``).
    spec : DatasetSpec
        The dataset spec; its ``shadow`` policy is the gate unless ``cfg`` overrides it.
    registry : Registry
        Control plane holding both model cards.
    champion, challenger : str
        Registered model versions.
    hi : datetime
        Exclusive end (UTC) of the shadow window; it starts at the challenger's cutoff.
    horizon : datetime or None
        Labels known before this time (UTC) count; None: no labels.
    cfg : ShadowConfig, optional
        Gate thresholds; default ``spec.shadow``.
    latency_slo_ms : float, optional
        p99 latency limit in milliseconds; default ``cfg.max_latency_p99_ms``.

    Returns
    -------
    dict
        ``daily`` and ``cumulative`` comparisons, ``offline_online``, ``edge_cases``,
        ``latency``, the ``config`` used, the ``checklist`` and ``gate_passed``.

    Raises
    ------
    ShadowDataMissing
        When the challenger has no traffic after its cutoff or no paired scores exist.
    """
    cfg = cfg or spec.shadow
    cards = {v: registry.get_model(v) for v in (champion, challenger)}
    lo = shadow_start(cards[challenger])
    if hi <= lo:
        raise ShadowDataMissing(f"{challenger} was trained on data up to {lo:%Y-%m-%d %H:%M}; "
                                "it has no traffic to shadow before "
                                f"{hi:%Y-%m-%d %H:%M}")
    pairs = load_pairs(paths, spec, champion, challenger, lo, hi, horizon)
    if pairs.empty:
        raise ShadowDataMissing(f"no events scored by {champion} in [{lo}, {hi})")
    features = load_features(paths, spec, lo, hi)
    day = pairs[spec.event_ts].dt.floor("D")
    daily = [{"day": d.isoformat(), **compare(g)} for d, g in pairs.groupby(day)]
    span = pairs[spec.event_ts].max() - pairs[spec.event_ts].min()
    report = {
        "model_name": spec.model_name, "champion": champion, "challenger": challenger,
        "window": {"start": lo.isoformat(), "end": hi.isoformat()},
        "label_horizon": horizon.isoformat() if horizon else None,
        "days_of_data": round(float(min(hi - lo, span + timedelta(hours=1)).total_seconds())
                              / 86_400, 3),
        "cumulative": compare(pairs), "daily": daily,
        "offline_online": offline_online(pairs, cards[champion], cards[challenger], cfg),
        "edge_cases": edge_cases(pairs, features, spec),
        "latency": measure_latency(paths, spec, cards, features,
                                   load_latency_log(paths, spec, [champion, challenger], lo, hi),
                                   cfg.latency_samples),
        "config": asdict(cfg),
    }
    report["checklist"] = checklist(report, cfg, latency_slo_ms or cfg.max_latency_p99_ms)
    report["gate_passed"] = all(i["passed"] for i in report["checklist"])
    return report


# -- recorded reports ---------------------------------------------------------------------
def summary_path(paths: DataPaths, version: str) -> Path:
    return paths.lake / SUMMARY_DIR / f"{version}.json"


def record(paths: DataPaths, report: dict) -> Path:
    """The latest cumulative report of a challenger, kept as a fact for the gate and docs."""
    path = summary_path(paths, report["challenger"])
    payload = {**report, "computed_at": datetime.now(UTC).isoformat(timespec="seconds")}
    atomic_write_bytes(path, json.dumps(payload, indent=1, sort_keys=True, default=str).encode())
    return path


def recorded(paths: DataPaths, version: str) -> dict | None:
    path = summary_path(paths, version)
    return json.loads(path.read_text()) if path.exists() else None


def last_recorded(paths: DataPaths) -> dict | None:
    found = sorted((paths.lake / SUMMARY_DIR).glob("*.json"), key=lambda p: p.stat().st_mtime)
    return json.loads(found[-1].read_text()) if found else None
