"""Staged rollout of the challenger: shadow -> 1 -> 5 -> 25 -> 50 -> 100% of entities.

- Arms are a stable hash of the entity (``md5(salt:entity)``): a card is always in the same
  arm, and the 5% arm contains the 1% arm, so nobody flips back and forth while ramping
  (the arm rule is in ``arms.py``).
- Each stage dwells at least ``min_dwell_hours`` of data, then compares the business metric
  per arm. Both models score every event, so on the challenger's arm the champion's decision
  is known too; the decision uses the arm difference adjusted by that counterfactual
  (CUPED with theta = 1), which is unbiased under random arms and far less noisy than raw
  arm means dominated by a few large transactions.
- A regression beyond ``max_regression`` that is also beyond noise pauses the rollout (the
  challenger then acts on nobody); a wrong-way estimate still within noise holds the stage
  until more data decides. Every stage advances only on a measured "ok": a stage with too
  few labels to measure holds (and is evaluated again every dwell, over all its data) until
  the labels arrive or a person overrides it, audited; nothing advances unmeasured.
- Every transition's audit entry carries ``data_period``: the data time its decision judged
  (window, first and last event, events and labeled events, label horizon), because the
  audit's own timestamp is only when the walk ran.
- At 100% the challenger is promoted (the old champion becomes ``previous``) through the
  rollback-readiness rule. Every transition is one audited control-plane change.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from ml_assets.lib.core.catalog import BATCH_SCORES, Catalog
from ml_assets.lib.core.datasets import DatasetSpec, RolloutConfig, ShadowConfig
from ml_assets.lib.core.paths import DataPaths
from ml_assets.lib.core.registry import Registry, RegistryError
from ml_assets.lib.monitoring.business import value_per_row
from ml_assets.lib.release import shadow
from ml_assets.lib.release.arms import (
    PAUSED,
    acting_share,
    arm_salt,
    buckets,
    entity_key,
    in_arm,
    in_challenger_arm,
    pct,
)
from ml_assets.lib.release.authority import authorize
from ml_assets.lib.release.rollback import promote

STAGE_KEY, STATE_KEY = "rollout_stage", "rollout_state"


class RolloutRefused(RegistryError):
    """A stage change the gate, the dwell or the evidence does not allow (yet)."""


class StageHeld(RolloutRefused):
    """The current stage's evidence does not allow advancing yet; ``evidence`` is what was
    judged (``evaluate_stage`` output with ``dwell_hours``: ``outcome``, ``data_period``)."""

    def __init__(self, message: str, evidence: dict):
        super().__init__(message)
        self.evidence = evidence


# -- state in the control plane -----------------------------------------------------------
def state(registry: Registry) -> dict | None:
    """The stored rollout state (``rollout_state`` setting), or None before any rollout."""
    raw = registry.get_setting(STATE_KEY)
    return json.loads(raw) if raw else None


def current(registry: Registry, spec: DatasetSpec) -> dict:
    """The rollout of the current challenger; a new challenger starts in shadow."""
    aliases = registry.aliases(spec.model_name)
    st = state(registry)
    if st and (aliases["challenger"] is None or st["version"] == aliases["challenger"]):
        return st
    return {"version": aliases["challenger"], "champion": aliases["champion"], "stage": "shadow",
            "since": None, "history": []}


def challenger_share(registry: Registry, spec: DatasetSpec) -> float:
    """Percent of entities on which the challenger's decision acts right now (see
    ``acting_share``)."""
    return acting_share(state(registry), registry.aliases(spec.model_name)["challenger"])


def arm_rule(registry: Registry, spec: DatasetSpec) -> Callable[[pd.DataFrame], np.ndarray | None]:
    """``acting_arm`` with the rollout state read once: a range run that scores its events in
    chunks assigns every chunk under the same stage and salt, even if a stage moves meanwhile.

    Returns
    -------
    callable
        events (DataFrame with the entity key) -> ndarray of bool, shape (n_events,), or None
        when the challenger acts on nobody.
    """
    share = challenger_share(registry, spec)
    if not share:
        return lambda events: None
    salt = arm_salt(state(registry), spec)
    return lambda events: in_challenger_arm(events[entity_key(spec)], share, salt)


def acting_arm(registry: Registry, spec: DatasetSpec, events: pd.DataFrame) -> np.ndarray | None:
    """Per event: does the challenger's decision act (batch scoring uses this; serving applies
    the same rule per request with ``entity_in_challenger_arm``)?

    Returns
    -------
    ndarray of bool, shape (n_events,), or None
        None when the challenger acts on nobody.
    """
    return arm_rule(registry, spec)(events)


def _transition(registry: Registry, spec: DatasetSpec, st: dict, stage: str, since: datetime,
                actor: str, reason: str, evidence: dict | None = None,
                alias_changes: dict | None = None) -> dict:
    period = (evidence or {}).get("data_period")
    st = {**st, "stage": stage, "since": since.isoformat(),
          "history": [*st.get("history", []),
                      {"stage": stage, "since": since.isoformat(), "actor": actor,
                       "reason": reason, "evidence": evidence}]}
    version = st["version"]
    changes = alias_changes or {"challenger": version}
    registry.move_aliases(spec.model_name, changes, actor, f"rollout:{stage}", reason,
                          settings={STAGE_KEY: stage, STATE_KEY: json.dumps(st, default=str)},
                          expect=changes, detail={"data_period": period} if period else None)
    return st


# -- evidence -----------------------------------------------------------------------------
def data_end(paths: DataPaths, spec: DatasetSpec) -> datetime | None:
    """End of the latest batch_scores partition: "now" in data time (UTC; None before any)."""
    scores = Catalog(paths.lake, spec.partition_grain).table(BATCH_SCORES)
    last = scores.latest()
    return None if last is None else last + scores.step


def rollout_frame(paths: DataPaths, spec: DatasetSpec, champion: str, challenger: str,
                  lo: datetime, hi: datetime, horizon: datetime | None,
                  cfg: RolloutConfig) -> pd.DataFrame:
    """Events in [lo, hi) with both decisions, the entity's bucket and each model's business
    value on labeled events (NaN while the label is unknown)."""
    f = shadow.load_pairs(paths, spec, champion, challenger, lo, hi, horizon)
    f["bucket"] = buckets(f[entity_key(spec)], cfg.salt)
    metric = spec.business_metric
    gain, cost = value_per_row(f, metric) if metric else (np.ones(len(f)), np.ones(len(f)))
    label = f["label"].to_numpy(dtype="float64")
    outcome = np.where(label == 1, gain, np.where(label == 0, -cost, np.nan))
    for m in ("champion", "challenger"):
        acted = f[f"{m}_decision"].to_numpy(dtype=bool, na_value=False)
        f[f"{m}_value"] = np.where(acted, outcome, np.where(np.isnan(label), np.nan, 0.0))
    return f


def _arm(frame: pd.DataFrame, acting: str) -> dict:
    labeled = frame[f"{acting}_value"].notna()
    v = frame.loc[labeled, f"{acting}_value"].to_numpy()
    return {"acting": acting, "events": int(len(frame)),
            "decisions": int(frame[f"{acting}_decision"].astype(bool).sum()),
            "decision_rate": float(frame[f"{acting}_decision"].astype(bool).mean())
            if len(frame) else 0.0,
            "labeled": int(labeled.sum()),
            "labeled_positives": int((frame.loc[labeled, "label"] == 1).sum()),
            "value_per_1k": float(v.mean() * 1000) if len(v) else None}


def evaluate_stage(frame: pd.DataFrame, percent: int, lo: datetime, hi: datetime,
                   spec: DatasetSpec, cfg: RolloutConfig) -> dict:
    """Business metric per arm over [lo, hi) and the outcome: regressed / confirmed /
    ok / wrong_way / regressed once measurable (enough labels on both arms), not_measurable
    before; guardrail on challenger failures or too many decisions on its arm."""
    ts = frame[spec.event_ts]
    w = frame[(ts >= lo) & (ts < hi)]
    arm = in_arm(w["bucket"].to_numpy(), percent)
    treat, control = w[arm], w[~arm]
    out = {"window": {"start": lo.isoformat(), "end": hi.isoformat()}, "percent": percent,
           "data_period": data_period(w, spec, lo, hi),
           "challenger_arm": _arm(treat, "challenger"), "control_arm": _arm(control, "champion"),
           "arm_share": float(arm.mean()) if len(w) else 0.0}
    labeled = treat["challenger_value"].notna()
    d = (treat.loc[labeled, "challenger_value"] - treat.loc[labeled, "champion_value"]).to_numpy()
    delta = float(d.mean() * 1000) if len(d) else 0.0
    se = float(d.std(ddof=1) / np.sqrt(len(d)) * 1000) if len(d) > 1 else float("inf")
    base = out["control_arm"]["value_per_1k"]
    scale = abs(base) if base else 0.0
    enough = (out["challenger_arm"]["labeled"] >= cfg.min_arm_labeled
              and out["control_arm"]["labeled"] >= cfg.min_arm_labeled
              and out["challenger_arm"]["labeled_positives"] >= cfg.min_arm_positives)
    failures = int((~np.isfinite(treat["challenger_score"].to_numpy(dtype=float))).sum())
    metric = spec.business_metric
    limit = metric.max_decision_rate if metric else 1.0
    n, k = len(treat), out["challenger_arm"]["decisions"]
    over_limit = n > 0 and k > limit * n + 3 * np.sqrt(max(limit * n, 1.0))
    out |= {"adjusted_delta_per_1k": delta, "delta_se_per_1k": se,
            "relative_delta": delta / scale if scale else None,
            "challenger_failures": failures, "decision_rate_over_limit": bool(over_limit)}
    # Wrong way: the point estimate is below the threshold; regressed: also beyond noise.
    wrong_way = enough and delta < -cfg.max_regression * scale
    regressed = wrong_way and delta < -cfg.z * se
    if failures or over_limit:
        out["outcome"] = "guardrail"
    else:
        out["outcome"] = ("regressed" if regressed else "wrong_way" if wrong_way
                          else "ok" if enough else "not_measurable")
    out["measurable"] = bool(enough)
    return out


def data_period(window: pd.DataFrame, spec: DatasetSpec, lo: datetime, hi: datetime) -> dict:
    """The data a stage's decision judged, in data time (what the audit log records).

    Parameters
    ----------
    window : DataFrame
        The events in [lo, hi) (``rollout_frame`` rows): event time, ``champion_value`` and
        ``challenger_value`` (NaN while unlabeled).
    lo, hi : datetime
        The judged window, UTC.

    Returns
    -------
    dict
        ``start``/``end`` (the window, ISO 8601), ``first_event``/``last_event`` (ISO 8601;
        absent without events), ``events`` and ``labeled`` (counts).
    """
    ts = window[spec.event_ts]
    labeled = window["champion_value"].notna() | window["challenger_value"].notna()
    out = {"start": lo.isoformat(), "end": hi.isoformat(), "events": int(len(window)),
           "labeled": int(labeled.sum())}
    if len(window):
        out |= {"first_event": ts.min().isoformat(), "last_event": ts.max().isoformat()}
    return out


def _period_text(period: dict) -> str:
    return (f"data {period['start'][:16]} .. {period['end'][:16]}: {period['events']:,} events, "
            f"{period['labeled']:,} labeled")


# -- transitions --------------------------------------------------------------------------
def gate(paths: DataPaths, spec: DatasetSpec, registry: Registry, as_of: datetime,
         horizon: datetime | None, cfg: ShadowConfig | None = None,
         latency_slo_ms: float | None = None) -> dict:
    """The shadow report of the current challenger up to ``as_of`` (recorded as a fact);
    ``cfg`` defaults to the spec's shadow policy (``spec.shadow``)."""
    aliases = registry.aliases(spec.model_name)
    if not aliases["challenger"]:
        raise RolloutRefused("no challenger is registered: train a candidate first")
    report = shadow.shadow_report(paths, spec, registry, aliases["champion"],
                                  aliases["challenger"], as_of, horizon, cfg, latency_slo_ms)
    shadow.record(paths, report)
    return report


def start(registry: Registry, paths: DataPaths, spec: DatasetSpec, actor: str, as_of: datetime,
          horizon: datetime | None, override: bool = False, reason: str = "",
          shadow_cfg: ShadowConfig | None = None,
          latency_slo_ms: float | None = None, salt: str | None = None,
          cfg: RolloutConfig | None = None) -> dict:
    """shadow -> the first stage (1%): only when the promotion gate passes, or with an audited
    override. ``shadow_cfg``, ``salt`` and ``cfg`` default to the spec's release policy."""
    first = (cfg or spec.rollout).stages[1]
    authorize(registry, spec, "rollout", actor, first)
    st = current(registry, spec)
    if st["stage"] not in ("shadow",):
        raise RolloutRefused(f"{st['version']} is at stage {st['stage']}; `rollout {first}` "
                             "starts a rollout from shadow (use `rollout shadow` first to "
                             "restart)")
    report = gate(paths, spec, registry, as_of, horizon, shadow_cfg, latency_slo_ms)
    failed = [i for i in report["checklist"] if not i["passed"]]
    if failed and not override:
        raise RolloutRefused(
            "promotion gate fails: " + "; ".join(f"{i['item']}={_fmt(i['value'])} "
                                                 f"({i['status']}, threshold {i['threshold']})"
                                                 for i in failed)
            + ". Fix the challenger, wait for more shadow data, or pass --override --reason")
    if override and not reason:
        raise RolloutRefused("an override needs --reason (it is recorded in the audit log)")
    evidence = {"gate_passed": report["gate_passed"], "overridden": bool(failed),
                "failed_items": [i["item"] for i in failed],
                "data_period": {**report["window"], "days_of_data": report["days_of_data"],
                                "label_horizon": report["label_horizon"]}}
    why = f"override: {reason}" if failed else (reason or "promotion gate passed")
    return _transition(registry, spec, {**st, "champion": report["champion"],
                                        "salt": salt or spec.rollout.salt},
                       first, as_of, actor, why, evidence)


def step(registry: Registry, paths: DataPaths, spec: DatasetSpec, target: str, actor: str,
         as_of: datetime, horizon: datetime | None, override: bool = False, reason: str = "",
         cfg: RolloutConfig | None = None) -> dict:
    """A manual move: to the next stage (evidence of the current one needed unless overridden),
    back to shadow, or pause. ``cfg`` defaults to the spec's rollout policy."""
    authorize(registry, spec, "rollout", actor, target)
    cfg = cfg or spec.rollout
    st = current(registry, spec)
    if st["version"] is None:
        raise RolloutRefused("no challenger to roll out")
    if target in ("pause", PAUSED):
        if st["stage"] in ("shadow", PAUSED, "100"):
            raise RolloutRefused(f"nothing to pause: {st['version']} is at {st['stage']}")
        return _transition(registry, spec, {**st, "paused_from": st["stage"]}, PAUSED, as_of,
                           actor, reason or "paused by hand")
    if target == "shadow":
        return _transition(registry, spec, st, "shadow", as_of, actor,
                           reason or "back to shadow by hand")
    if override and not reason:
        raise RolloutRefused("an override needs --reason (it is recorded in the audit log)")
    if st["stage"] == PAUSED and not override:
        raise RolloutRefused(f"{st['version']} is paused (from {st.get('paused_from')}); "
                             "resuming needs --override --reason")
    stages = cfg.stages
    nxt = stages[stages.index(st["stage"]) + 1] if st["stage"] in stages[1:-1] else None
    if st["stage"] != PAUSED and target != nxt:
        raise RolloutRefused(f"{st['version']} is at {st['stage']}; the next stage is {nxt}")
    evidence = None
    if st["stage"] != PAUSED:
        evidence = _evaluate_current(registry, paths, spec, st, as_of, horizon, cfg)
        if not _may_advance(evidence, cfg) and not override:
            raise StageHeld(f"stage {st['stage']} does not allow advancing yet: "
                            f"{evidence['outcome']} after {evidence['dwell_hours']:.0f}h "
                            f"(minimum {cfg.min_dwell_hours:.0f}h; "
                            f"{_period_text(evidence['data_period'])})", evidence)
    why = f"override: {reason}" if override else (reason or "stage evidence allows it")
    if evidence:
        why += f" ({evidence['outcome']} on {_period_text(evidence['data_period'])})"
    return _finish(registry, paths, spec, st, target, as_of, actor, why, evidence)


def _evaluate_current(registry, paths, spec, st, as_of, horizon, cfg) -> dict:
    since = datetime.fromisoformat(st["since"])
    frame = rollout_frame(paths, spec, st["champion"], st["version"], since, as_of, horizon, cfg)
    ev = evaluate_stage(frame, pct(st["stage"]), since, as_of, spec, cfg)
    ev["data_period"]["label_horizon"] = horizon.isoformat() if horizon else None
    return {**ev, "dwell_hours": (as_of - since).total_seconds() / 3600}


def _may_advance(ev: dict, cfg: RolloutConfig) -> bool:
    """After the dwell, on a measured "ok" only: an unmeasurable stage holds, and so does a
    wrong-way estimate that is not yet beyond noise, until more data decides."""
    return ev["dwell_hours"] >= cfg.min_dwell_hours and ev["outcome"] == "ok"


def _finish(registry, paths, spec, st, target, at, actor, reason, evidence) -> dict:
    if target != "100":
        return _transition(registry, spec, st, target, at, actor, reason, evidence)
    promote(registry, paths, spec, st["version"], actor,
            f"rollout reached 100%: {reason}")
    return _transition(registry, spec, st, "100", at, actor, reason, evidence,
                       alias_changes={"champion": st["version"]})


def advance(registry: Registry, paths: DataPaths, spec: DatasetSpec, actor: str,
            until: datetime, horizon: datetime | None, cfg: RolloutConfig | None = None,
            ) -> dict:
    """Walk the current rollout forward through the data up to ``until``: each stage is
    evaluated once its dwell is met (and again every dwell while it holds), then advances,
    pauses or holds. Returns the state with ``walk`` listing every evaluation. ``cfg``
    defaults to the spec's rollout policy (``spec.rollout``)."""
    authorize(registry, spec, "rollout", actor, "advance")
    cfg = cfg or spec.rollout
    stages = cfg.stages
    st = current(registry, spec)
    walk: list[dict] = []
    if st["stage"] not in stages[1:-1]:
        return {**st, "walk": walk}
    since = datetime.fromisoformat(st["since"])
    frame = rollout_frame(paths, spec, st["champion"], st["version"], since, until, horizon, cfg)
    dwell = timedelta(hours=cfg.min_dwell_hours)
    t = since + dwell
    while st["stage"] in stages[1:-1] and t <= until:
        percent = pct(st["stage"])
        ev = {**evaluate_stage(frame, percent, since, t, spec, cfg),
              "stage": st["stage"], "dwell_hours": (t - since).total_seconds() / 3600,
              "label_horizon": horizon.isoformat() if horizon else None}
        ev["data_period"]["label_horizon"] = ev["label_horizon"]
        walk.append(ev)
        if ev["outcome"] in ("regressed", "guardrail"):
            why = (f"automatic pause at {percent}%: {ev['outcome']} (adjusted delta "
                   f"{ev['adjusted_delta_per_1k']:.2f} per 1k events, se "
                   f"{ev['delta_se_per_1k']:.2f}) on {_period_text(ev['data_period'])}")
            st = _transition(registry, spec, {**st, "paused_from": st["stage"]}, PAUSED, t,
                             actor, why, ev)
            break
        if _may_advance(ev, cfg):
            nxt = stages[stages.index(st["stage"]) + 1]
            why = (f"automatic: {ev['outcome']} at {percent}% after {ev['dwell_hours']:.0f}h "
                   f"on {_period_text(ev['data_period'])}")
            try:
                st = _finish(registry, paths, spec, st, nxt, t, actor, why, ev)
            except RegistryError as exc:  # promotion refused (readiness): hold, say why
                walk.append({"stage": st["stage"], "outcome": "blocked", "reason": str(exc)})
                break
            since, t = t, t + dwell
        else:
            t += dwell  # hold: evaluate again once another dwell of data is in
    return {**st, "walk": walk}


def history(registry: Registry, version: str) -> list[dict]:
    """Rollout transitions and promotions of ``version`` from the audit log, oldest first:
    ``ts`` (wall clock of the change), ``action``, ``actor``, ``reason`` and, on a stage
    decided by data, ``data_period`` (the data time it judged, see :func:`data_period`)."""
    rows = [r for r in registry.audit_log(limit=1_000_000)
            if r["target"] == version and (r["action"].startswith("rollout:")
                                           or r["action"] in ("promote", "rollback"))]
    return [{"ts": r["ts"], "action": r["action"], "actor": r["actor"], "reason": r["reason"],
             **({"data_period": r["detail"]["data_period"]}
                if "data_period" in r["detail"] else {})}
            for r in reversed(rows)]


def config_dict(cfg: RolloutConfig) -> dict:
    """``cfg`` as a plain dict (``dataclasses.asdict``)."""
    return asdict(cfg)


def _fmt(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
