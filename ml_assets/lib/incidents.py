"""Incident drill: replay an incident timeline through the pipeline in simulated time.

Day by day, landing files "arrive" (label files can be held back), the hourly work runs (contract
+ ingest, point-in-time features, feature contract, scoring by every live model, score
contract), label files are ingested, and the daily monitors run (feature drift, prediction
drift, the business metric, and - as labels land - delayed evaluation), plus the shadow gate
when a challenger is live. Every step is the function the scheduled asset runs; a blocking
failure stops that day's scoring exactly as the blocking checks do. Each alarm is stamped with
the simulated day it would have fired (daily monitors run after midnight, so the day after the
data day) and attributed to the incident whose effect window holds its data day.
"""

from __future__ import annotations

import getpass
import shutil
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from . import artifacts, monitoring, shadow
from .artifacts import dataset_sha256
from .contracts import ContractError
from .datasets import DatasetSpec
from .feature_build import MissingUpstreamError, build_features
from .feature_contract import feature_contract_problems
from .ingest import ingest_events, ingest_labels
from .lake import hours_between
from .model_building import train_candidate
from .paths import DAY_FILE_FORMAT, HOUR_FILE_FORMAT, DataPaths, write_parquet_atomic
from .registry import Registry
from .rollback import promote, readiness
from .scoring import live_versions, load_live_model, score_contract_problems, score_frame
from .splits import assign_splits
from .synthetic import Incident, SyntheticConfig, write_landing
from .training import TrainingWindow, build_training_set, reference_rows, split_frame

DATA_INCIDENTS = ("schema_break", "nan_spike", "covariate_drift", "concept_drift")
DRILL_INCIDENTS = (*DATA_INCIDENTS, "late_labels", "bad_challenger")
SCHEMA_BREAK_RENAMES = {"amount_usd": "amount"}  # what the generator's schema break renames
MIN_LABEL_DELAY_DAYS = 7  # the earliest a chargeback lands after its transaction
LEVELS = {"warn": 1, "error": 2}


@dataclass(frozen=True)
class DrillPlan:
    """A timeline on day indices. Label-derived features need ~90 days to reach steady state
    (labels land up to 60 days late, windows are 30 days), so scoring starts after that."""

    days: int = 150
    scale: float = 0.05
    seed: int = 7
    previous_day: int = 75  # a first model, kept as the rollback target
    champion_day: int = 90  # the acting champion; scoring and monitoring start here
    incidents: tuple[Incident, ...] = (
        Incident("nan_spike", 98), Incident("schema_break", 101), Incident("late_labels", 104, 3),
        Incident("bad_challenger", 108), Incident("covariate_drift", 112, 2),
        Incident("concept_drift", 116, 0))
    label_eval_every: int = 1  # days between label-driven evaluations (the label sensor)
    max_quarantine_share: float = 0.02

    def effect_end(self, inc: Incident) -> int:
        """First day no longer affected: windowed features carry a drift for 30 more days;
        a schema break is re-delivered and caught up the next day."""
        if inc.kind in ("concept_drift", "covariate_drift") or inc.days <= 0:
            return self.days
        return inc.day + max(inc.days, 1) + 1


@dataclass
class Alarm:
    fired_day: int  # simulated day index the alarm would fire
    data_day: int  # the day of data it is about
    check: str
    level: str
    detail: str
    blocking: bool = False


@dataclass
class DrillState:
    plan: DrillPlan
    spec: DatasetSpec
    paths: DataPaths
    source: DataPaths  # where the generator's files wait until they "arrive"
    start: datetime
    alarms: list[Alarm] = field(default_factory=list)
    scored: set[int] = field(default_factory=set)
    ingested_labels: set[int] = field(default_factory=set)
    responses: dict[int, list[str]] = field(default_factory=dict)
    evaluation_alarms_before_maturity: int = 0

    def day(self, i: int) -> datetime:
        return self.start + timedelta(days=i)

    def index(self, ts) -> int:
        return int((pd.Timestamp(ts) - pd.Timestamp(self.start)).days)


# -- arrivals -------------------------------------------------------------------------------
def _copy(state: DrillState, rel_dir: str, name: str, source: DataPaths | None = None) -> None:
    src = (source or state.source).root / rel_dir / name
    if src.exists():
        dst = state.paths.root / rel_dir / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)


def _label_held(plan: DrillPlan, d: int, today: int) -> bool:
    """Late label files: those of the incident's days arrive when it ends."""
    return any(i.kind == "late_labels" and i.day <= d < i.day + i.days and today < i.day + i.days
               for i in plan.incidents)


def redeliver(state: DrillState, d: int) -> None:
    """The upstream fixes its schema break: day ``d``'s files again carry the contract's
    column names (the values were never wrong, only renamed)."""
    for h in hours_between(state.day(d), state.day(d + 1)):
        path = state.paths.landing_events_file(h)
        table = pq.read_table(path)
        table = table.rename_columns([SCHEMA_BREAK_RENAMES.get(c, c) for c in table.column_names])
        pq.write_table(table, path, compression="zstd")


# -- the hourly and daily work of one day ---------------------------------------------------
def _write(frames: dict, directory, fmt: str) -> None:
    for stamp, df in frames.items():
        write_parquet_atomic(df, directory / f"{stamp.strftime(fmt)}.parquet")


def run_hours(state: DrillState, d: int, fired: int) -> bool:
    """Ingest, featurize and score day ``d``; False when a blocking contract stopped it."""
    paths, spec = state.paths, state.spec
    lo, hi = state.day(d), state.day(d + 1)
    hours = hours_between(lo, hi)
    try:
        valid, quarantined = ingest_events(paths, spec, hours, hi)
    except ContractError as exc:
        state.alarms.append(Alarm(fired, d, "raw_events:contract", "error", str(exc), True))
        return False
    rows = sum(len(v) for v in valid.values())
    share = len(quarantined) / max(rows + len(quarantined), 1)
    _write({h: df for h, df in valid.items()}, paths.lake / "raw_events", HOUR_FILE_FORMAT)
    if share > state.plan.max_quarantine_share:
        state.alarms.append(Alarm(fired, d, "raw_events:event_contract", "error",
                                  f"quarantine share {share:.2%}", True))
        return False
    try:
        features = pd.concat([c for _, _, c in build_features(paths, spec, lo, hi)])
    except MissingUpstreamError as exc:
        state.alarms.append(Alarm(fired, d, "event_features:upstream", "error", str(exc), True))
        return False
    problems = feature_contract_problems(features, spec)
    if problems:
        state.alarms.append(Alarm(fired, d, "event_features:feature_contract", "error",
                                  "; ".join(problems), True))
        return False
    registry = Registry(paths.control_db)
    models = [(role, card, load_live_model(paths, card)) for role, version in
              live_versions(registry, spec) for card in [registry.get_model(version)]]
    scores = score_frame(features, spec, models, hi, features_ref="incident-drill")
    problems = score_contract_problems(scores, spec)
    if problems:
        state.alarms.append(Alarm(fired, d, "batch_scores:score_contract", "error",
                                  "; ".join(problems), True))
        return False
    by_hour = {h: g for h, g in scores.groupby(scores[spec.event_ts].dt.floor("h"))}
    empty = scores.iloc[0:0]
    _write({h: by_hour.get(pd.Timestamp(h), empty) for h in hours}, paths.lake / "batch_scores",
           HOUR_FILE_FORMAT)
    _write({h: features[features[spec.event_ts].dt.floor("h") == pd.Timestamp(h)]
            for h in hours}, paths.lake / "event_features", HOUR_FILE_FORMAT)
    state.scored.add(d)
    return True


def run_labels(state: DrillState, today: int) -> None:
    """Ingest every label file that has arrived and is not ingested yet; a file due yesterday
    that is absent raises a freshness WARN (the daily labels schedule would skip)."""
    due = [d for d in range(today) if d not in state.ingested_labels]
    arrived = [d for d in due if not _label_held(state.plan, d, today)]
    for d in due:
        if d not in arrived and d == today - 1:
            state.alarms.append(Alarm(today, d, "raw_labels:freshness", "warn",
                                      f"label file for day {d} not delivered by 02:30"))
    for d in arrived:
        _copy(state, "landing/labels", f"{state.day(d).strftime(DAY_FILE_FORMAT)}.parquet")
    if arrived:
        valid, _ = ingest_labels(state.paths, state.spec, [state.day(d) for d in arrived],
                                 state.day(today))
        _write(valid, state.paths.lake / "raw_labels", DAY_FILE_FORMAT)
        state.ingested_labels.update(arrived)


def _rows_to_alarms(state: DrillState, frames: dict, check: str, fired_offset: int,
                    fired: int | None = None, name_col: str | None = None) -> None:
    for day, df in frames.items():
        d = state.index(day)
        for r in df.itertuples():
            level = getattr(r, "severity", "ok")
            if level in LEVELS:
                name = f"{check}:{getattr(r, name_col)}" if name_col else check
                state.alarms.append(Alarm(d + fired_offset if fired is None else fired, d, name,
                                          level, str(getattr(r, "alert_message", "") or level)))


def run_daily_monitors(state: DrillState, d: int) -> None:
    paths, spec, lo, hi = state.paths, state.spec, state.day(d), state.day(d + 1)
    _rows_to_alarms(state, monitoring.feature_drift(paths, spec, lo, hi), "feature_drift:psi", 1,
                    name_col="feature")
    pred = {k: v[v["role"] == "champion"] for k, v in
            monitoring.prediction_drift(paths, spec, lo, hi).items()}
    _rows_to_alarms(state, pred, "prediction_drift:score_shift", 1)


def run_label_monitors(state: DrillState, today: int) -> None:
    """What the label-arrival sensor triggers: business metric and delayed evaluation over
    every scored day. A (day, check) alarms once, on the first day it fires."""
    spec, paths = state.spec, state.paths
    seen = {(a.data_day, a.check) for a in state.alarms}
    before = len(state.alarms)
    business, evaluation = {}, {}
    # Runs of consecutive scored days: a day stopped by a contract has no scores to judge.
    for a, b in monitoring.contiguous_ranges([state.day(d) for d in state.scored]):
        lo, hi = a, b + timedelta(days=1)
        business |= monitoring.business_metric(paths, spec, lo, hi)
        evaluation |= {k: v[v["role"] == "champion"] for k, v in
                       monitoring.delayed_evaluation(paths, spec, lo, hi).items()}
    _rows_to_alarms(state, business, "business_metric:business_thresholds", 0, fired=today)
    maturity = spec.monitoring.label_maturity_days
    for day, df in evaluation.items():
        early = (df["status"] != "final") | (today - state.index(day) < maturity)
        state.evaluation_alarms_before_maturity += int(((df["severity"] != "ok") & early).sum())
    _rows_to_alarms(state, evaluation, "delayed_evaluation:auc_vs_held_out", 0, fired=today)
    new = state.alarms[before:]
    del state.alarms[before:]
    for a in new:
        if (a.data_day, a.check) not in seen:
            seen.add((a.data_day, a.check))
            state.alarms.append(a)


def run_shadow_gate(state: DrillState, today: int, since: int) -> None:
    """A live challenger must pass the shadow gate's hard limits every day; a failure keeps
    it out of traffic (the staged rollout is paused before its first step)."""
    registry = Registry(state.paths.control_db)
    aliases = registry.aliases(state.spec.model_name)
    if not aliases["challenger"]:
        return
    cfg = shadow.DEFAULT
    pairs = shadow.load_pairs(state.paths, state.spec, aliases["champion"], aliases["challenger"],
                              state.day(since), state.day(today), None)
    c = shadow.compare(pairs)
    failed = [f"disagreement {c['disagreement_rate']:.1%} > {cfg.max_disagreement:.0%}"
              if c["disagreement_rate"] > cfg.max_disagreement else "",
              f"score PSI {c['score_psi']:.2f} > {cfg.max_score_psi}"
              if c["score_psi"] > cfg.max_score_psi else "",
              f"rank correlation {c['rank_correlation']:.2f} < {cfg.min_rank_correlation}"
              if c["rank_correlation"] < cfg.min_rank_correlation else ""]
    failed = [f for f in failed if f]
    if failed:
        state.alarms.append(Alarm(today, today - 1, "shadow:promotion_gate", "error",
                                  f"{aliases['challenger']}: " + "; ".join(failed), True))
        registry.move_aliases(state.spec.model_name, {"challenger": None}, getpass.getuser(),
                              "rollout:pause", "incident drill: shadow gate failed")
        state.responses.setdefault(today, []).append(
            f"rollout paused: {aliases['challenger']} kept out of traffic")


# -- models ---------------------------------------------------------------------------------
def train_at(state: DrillState, day: int, shuffle_labels: bool = False) -> str:
    """Train as of ``day`` through the library (training_set -> splits -> candidate) and
    register it; ``shuffle_labels`` makes the bad challenger (seeded, so reproducible)."""
    spec, paths = state.spec, state.paths
    end = state.day(day)
    window = TrainingWindow(max(end - timedelta(days=spec.model.training_window_days),
                                spec.start_utc), end, end)
    ts = build_training_set(paths, spec, window)
    if shuffle_labels:
        ts[spec.label] = np.random.default_rng(day).permutation(ts[spec.label].to_numpy())
    splits = pd.DataFrame({spec.event_id: ts[spec.event_id], "split": assign_splits(
        ts[spec.event_id], spec.model.split_salt, spec.model.split_fractions)})
    registry = Registry(paths.control_db)
    if registry.reference_set(spec.model_name) is None:
        ref = reference_rows(split_frame(ts, splits, spec)["test"], spec)
        sha, path = artifacts.store(paths.artifacts, artifacts.frame_to_parquet_bytes(ref),
                                    "parquet")
        registry.freeze_reference_set(spec.model_name, sha, str(path.relative_to(paths.root)),
                                      len(ref), getpass.getuser())
    ref = pd.read_parquet(paths.root / registry.reference_set(spec.model_name)["path"])
    card = train_candidate(paths, spec, ts, splits, ref, window, dataset_sha256(ts))
    version, _ = registry.register_model(spec.model_name, card, getpass.getuser())
    return version


# -- the drill ------------------------------------------------------------------------------
def build_world(root, spec: DatasetSpec, plan: DrillPlan) -> DrillState:
    """Landing files for the whole timeline wait in ``source/``; history up to the champion's
    day is ingested and featurized in one range (as a backfill would), two models trained."""
    data = [i for i in plan.incidents if i.kind in DATA_INCIDENTS]
    cfg = SyntheticConfig(seed=plan.seed, days=plan.days, scale=plan.scale, incidents=tuple(data))
    source = DataPaths(root / "source")
    write_landing(cfg, source)
    paths = DataPaths(root / "world").ensure()
    state = DrillState(plan, spec, paths, source, cfg.start)
    b = plan.champion_day
    for h in hours_between(state.day(0), state.day(b)):
        _copy(state, "landing/events", f"{h.strftime(HOUR_FILE_FORMAT)}.parquet")
    events, _ = ingest_events(paths, spec, hours_between(state.day(0), state.day(b)), state.day(b))
    _write(events, paths.lake / "raw_events", HOUR_FILE_FORMAT)
    run_labels(state, b)
    for lo, hi, chunk in build_features(paths, spec, state.day(0), state.day(b)):
        groups = dict(tuple(chunk.groupby(chunk[spec.event_ts].dt.floor("h"))))
        _write({h: groups.get(pd.Timestamp(h), chunk.iloc[0:0]) for h in hours_between(lo, hi)},
               paths.lake / "event_features", HOUR_FILE_FORMAT)
    first = train_at(state, plan.previous_day)
    second = train_at(state, b)
    promote(Registry(paths.control_db), paths, spec, second, getpass.getuser(),
            "incident drill: champion")
    assert Registry(paths.control_db).aliases(spec.model_name)["previous"] == first
    return state


def replay(state: DrillState, log=print) -> dict:
    plan = state.plan
    broken = {i.day for i in plan.incidents if i.kind == "schema_break"}
    pending: list[int] = []
    for d in range(plan.champion_day, plan.days):
        for h in hours_between(state.day(d), state.day(d + 1)):
            _copy(state, "landing/events", f"{h.strftime(HOUR_FILE_FORMAT)}.parquet")
        if d - 1 in broken:  # yesterday's broken files arrive corrected today
            redeliver(state, d - 1)
        if any(i.kind == "bad_challenger" and i.day == d for i in plan.incidents):
            train_at(state, d, shuffle_labels=True)  # deployed in shadow before the day's traffic
        # Catch up stopped days first (oldest first), then today; a stop holds later days.
        done = []
        for day in [*pending, d]:
            if not run_hours(state, day, d):
                pending = sorted({*pending, day, d})
                state.responses.setdefault(d, []).append(
                    f"scoring of day {day} stopped by a blocking contract")
                break
            done.append(day)
            pending = [p for p in pending if p != day]
        run_labels(state, d + 1)
        for day in done:
            run_daily_monitors(state, day)
        gate_since = next((i.day for i in plan.incidents if i.kind == "bad_challenger"
                           and i.day <= d), None)
        if gate_since is not None:
            run_shadow_gate(state, d + 1, gate_since)
        if (d - plan.champion_day) % plan.label_eval_every == 0 or d == plan.days - 1:
            run_label_monitors(state, d + 1)
        log(f"day {d}: {sum(a.fired_day == d + 1 for a in state.alarms)} alarm(s)")
    return summarize(state)


def summarize(state: DrillState) -> dict:
    plan, spec = state.plan, state.spec
    registry = Registry(state.paths.control_db)
    ready = readiness(registry, state.paths, spec, registry.aliases(spec.model_name)["previous"])
    incidents = sorted(plan.incidents, key=lambda i: i.day)

    def owner(data_day: int) -> Incident | None:
        live = [i for i in incidents if i.day <= data_day < plan.effect_end(i)]
        return live[-1] if live else None

    rows = []
    for inc in incidents:
        mine = sorted((a for a in state.alarms if owner(a.data_day) == inc
                       and a.fired_day >= inc.day), key=lambda a: (a.fired_day, -LEVELS[a.level]))
        business = [a for a in mine if a.check.startswith("business_metric")
                    and a.level == "error"]
        early = [a for a in mine if not a.check.startswith("business_metric")]
        first = early[0] if early else None
        responses = sorted({r for d, rs in state.responses.items()
                            if inc.day <= d < plan.effect_end(inc) + 1 for r in rs})
        if business:
            responses.append("kill switch recommended (previous model "
                             f"{'ready' if ready.ok else 'NOT ready'})")
        rows.append({
            "kind": inc.kind, "injected_day": inc.day,
            "detected_day": first.fired_day if first else None,
            "detected_by": first.check if first else None,
            "detected_level": first.level if first else None,
            "business_alert_day": business[0].fired_day if business else None,
            "lead_days": (business[0].fired_day - first.fired_day) if business and first
            else None,
            "alarms_before_labels": sum(a.fired_day < inc.day + MIN_LABEL_DELAY_DAYS
                                        for a in early),
            "automatic_response": responses or ["alert only"],
        })
    clean = [a for a in state.alarms if owner(a.data_day) is None]
    leads = [r["lead_days"] for r in rows if r["lead_days"] is not None]
    detected_first = all(r["detected_day"] is not None and (
        r["business_alert_day"] is None or r["detected_day"] <= r["business_alert_day"])
        for r in rows)
    clean_days = [d for d in state.scored if owner(d) is None]
    return {
        "incidents": rows,
        "clean_days": len(clean_days),
        "clean_day_error_alarms": sum(a.level == "error" for a in clean),
        "clean_day_warn_alarms": sum(a.level == "warn" for a in clean),
        "clean_day_alarms": [{"day": a.fired_day, "data_day": a.data_day, "check": a.check,
                              "level": a.level,
                              "detail": a.detail} for a in clean],
        "evaluation_alarms_before_labels_mature": state.evaluation_alarms_before_maturity,
        "summary": {"min_lead_days": min(leads) if leads else None,
                    "detected_before_business": detected_first,
                    "clean_day_error_alarms": sum(a.level == "error" for a in clean)},
        "alarms": [asdict(a) for a in state.alarms],
    }
