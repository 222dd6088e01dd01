"""Champion/challenger in shadow: how the challenger behaves on the same traffic, and the
promotion gate built from it (the paired measurements themselves are in ``comparison.py``).

Both models score every event (``batch_scores``; realtime ``prediction_log`` rows join in
when present), so the comparison is paired: same events, same features. The shadow window
starts at the challenger's training cutoff - earlier rows are its own training data and would
make any model look good. Labels are those known before ``horizon``.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

from ml_assets.lib.core.catalog import (
    BATCH_SCORES,
    EVENT_FEATURES,
    PREDICTION_LOG,
    RAW_EVENTS,
    RAW_LABELS,
    SHADOW_SUMMARY,
    Catalog,
)
from ml_assets.lib.core.datasets import DatasetSpec, ShadowConfig
from ml_assets.lib.core.identifiers import quote
from ml_assets.lib.core.lake import connect, parquet_relation
from ml_assets.lib.core.paths import DataPaths, atomic_write_bytes
from ml_assets.lib.core.registry import Registry
from ml_assets.lib.release.comparison import compare, edge_cases, measure_latency, offline_online


class ShadowDataMissing(RuntimeError):
    """No paired scores exist for the requested window."""


# -- loading ------------------------------------------------------------------------------
def shadow_start(card: dict) -> datetime:
    """Events before the challenger's training window end are its training data.

    Parameters
    ----------
    card : dict
        The challenger's model card.

    Returns
    -------
    datetime
        The training window's end (UTC): the first instant of the shadow window.
    """
    return datetime.fromisoformat(card["training_window"]["end"])


def load_pairs(paths: DataPaths, spec: DatasetSpec, champion: str, challenger: str,
               lo: datetime, hi: datetime, horizon: datetime | None) -> pd.DataFrame:
    """One row per event in [lo, hi): both models' score and decision (NaN / null where a model
    has no score), ``source``, ``label`` (known before ``horizon``, else NaN) and ``value``.

    Parameters
    ----------
    paths : DataPaths
    spec : DatasetSpec
    champion, challenger : str
        Model versions.
    lo, hi : datetime
        Window bounds, UTC, ``lo <= event_ts < hi``.
    horizon : datetime or None
        Labels with ``label_ts < horizon`` are known; None: no labels.

    Returns
    -------
    DataFrame, one row per event, ordered by event time
        Event id and time, entity keys, ``champion_score``, ``challenger_score``,
        ``champion_decision``, ``challenger_decision``, ``source`` (batch wins over
        realtime), ``label`` and ``value`` (the business metric's value column, else 1.0).

    Raises
    ------
    ShadowDataMissing
        Neither ``batch_scores`` in the window nor any ``prediction_log`` file exists.
    """
    catalog = Catalog(paths.lake, spec.partition_grain)
    files = catalog.table(BATCH_SCORES).files(lo, hi)
    log_files = catalog.table(PREDICTION_LOG).files()
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
    label_files = catalog.table(RAW_LABELS).files(lo, horizon) if horizon else []
    if label_files:
        sql += (f", CAST(l.{quote(spec.label)} AS DOUBLE) AS label FROM p LEFT JOIN (SELECT {eid}, "
                f"{quote(spec.label)} FROM {parquet_relation(label_files)} WHERE "
                f"{quote(spec.label_ts)} < $horizon) l USING ({eid})")
        params["horizon"] = horizon
    else:
        sql += ", CAST(NULL AS DOUBLE) AS label FROM p"
    event_files = catalog.table(RAW_EVENTS).files(lo, hi)
    if value and event_files:
        sql = (f"SELECT q.*, CAST(e.{value} AS DOUBLE) AS value FROM ({sql}) q LEFT JOIN "
               f"(SELECT {eid}, {value} FROM {parquet_relation(event_files)}) e USING ({eid})")
    else:
        sql = f"SELECT *, 1.0 AS value FROM ({sql})"
    return connect().execute(sql + f" ORDER BY {ets}", params).df()


def load_latency_log(paths: DataPaths, spec: DatasetSpec, versions: list[str], lo: datetime,
                     hi: datetime) -> pd.DataFrame:
    """Realtime (model_version, latency_ms) rows logged by the serving app in [lo, hi).

    Parameters
    ----------
    paths : DataPaths
    spec : DatasetSpec
    versions : list of str
        Model versions to keep.
    lo, hi : datetime
        Event-time bounds, UTC.

    Returns
    -------
    DataFrame
        Columns ``model_version`` and ``latency_ms`` (milliseconds); empty without a log.
    """
    files = Catalog(paths.lake).table(PREDICTION_LOG).files()
    if not files:
        return pd.DataFrame({"model_version": [], "latency_ms": []})
    ets = quote(spec.event_ts)
    return connect().execute(
        f"SELECT model_version, latency_ms FROM {parquet_relation(files)} WHERE {ets} >= $lo "
        f"AND {ets} < $hi AND model_version IN (SELECT unnest($v))",
        {"lo": lo, "hi": hi, "v": versions}).df()


def load_features(paths: DataPaths, spec: DatasetSpec, lo: datetime, hi: datetime,
                  ) -> pd.DataFrame:
    """``event_features`` rows of the partitions in [lo, hi): the event id and every feature
    (an empty frame with those columns when no partition exists).

    Parameters
    ----------
    paths : DataPaths
    spec : DatasetSpec
    lo, hi : datetime
        Partition bounds, UTC.
    """
    files = Catalog(paths.lake, spec.partition_grain).table(EVENT_FEATURES).files(lo, hi)
    if not files:
        return pd.DataFrame({spec.event_id: [], **{f: [] for f in spec.feature_names}})
    cols = ", ".join(quote(c) for c in [spec.event_id, *spec.feature_names])
    return connect().execute(f"SELECT {cols} FROM {parquet_relation(files)}").df()


# -- the report and its gate --------------------------------------------------------------
def _item(name: str, what: str, value, threshold, passed: bool, status: str | None = None) -> dict:
    return {"item": name, "description": what, "value": value, "threshold": threshold,
            "passed": bool(passed), "status": status or ("passed" if passed else "failed")}


def checklist(report: dict, cfg: ShadowConfig, latency_slo_ms: float) -> list[dict]:
    """The promotion gate's items, each checked against its ``cfg`` threshold.

    Parameters
    ----------
    report : dict
        A ``shadow_report`` without its checklist.
    cfg : ShadowConfig
        Thresholds.
    latency_slo_ms : float
        Limit for the challenger's p99 latency, milliseconds.

    Returns
    -------
    list of dict
        Per item: ``item``, ``description``, ``value``, ``threshold``, ``passed`` and
        ``status`` (passed, failed, or pending for the lift check before enough labels).
    """
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
        _item("score_psi", "PSI of challenger scores vs champion over probability bands", c["score_psi"],
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
    daily = [{"day": d.isoformat(), **compare(g, cfg.score_bands)}
             for d, g in pairs.groupby(day)]
    span = pairs[spec.event_ts].max() - pairs[spec.event_ts].min()
    report = {
        "model_name": spec.model_name, "champion": champion, "challenger": challenger,
        "window": {"start": lo.isoformat(), "end": hi.isoformat()},
        "label_horizon": horizon.isoformat() if horizon else None,
        "days_of_data": round(float(min(hi - lo, span + timedelta(hours=1)).total_seconds())
                              / 86_400, 3),
        "cumulative": compare(pairs, cfg.score_bands), "daily": daily,
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
    """The ``shadow_summary`` file of ``version``.

    Raises
    ------
    UnsafePath
        ``version`` would name a file outside the table.
    """
    return Catalog(paths.lake).table(SHADOW_SUMMARY).path(version)


def record(paths: DataPaths, report: dict) -> Path:
    """The latest cumulative report of a challenger, kept as a fact for the gate and docs.

    Parameters
    ----------
    paths : DataPaths
    report : dict
        A ``shadow_report``; stored as JSON with ``computed_at`` (UTC), atomically.
    """
    path = summary_path(paths, report["challenger"])
    payload = {**report, "computed_at": datetime.now(UTC).isoformat(timespec="seconds")}
    atomic_write_bytes(path, json.dumps(payload, indent=1, sort_keys=True, default=str).encode())
    return path


def recorded(paths: DataPaths, version: str) -> dict | None:
    """The recorded report of challenger ``version``, or None (see ``record``)."""
    path = summary_path(paths, version)
    return json.loads(path.read_text()) if path.exists() else None


def last_recorded(paths: DataPaths) -> dict | None:
    """The most recently written report (by file mtime), or None."""
    found = sorted(Catalog(paths.lake).table(SHADOW_SUMMARY).files(),
                   key=lambda p: p.stat().st_mtime)
    return json.loads(found[-1].read_text()) if found else None
