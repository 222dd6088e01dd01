"""Incident drill: the timeline, the simulated world and the scorecard.

The generator writes the whole timeline's landing files into ``source/``; the replay
(``ml_assets/incident_replay.py``) lets them "arrive" day by day and runs the scheduled
Dagster pipeline on them. Every alarm is stamped with the simulated day it fired and the day
of data it is about; ``summarize`` attributes alarms to the incident whose effect window holds
their data day and scores detection day, detecting check, business alert, clean-day alarms and
the automatic responses.
"""

from __future__ import annotations

import getpass
import shutil
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from ml_assets.lib.core import artifacts
from ml_assets.lib.core.artifacts import dataset_sha256, recorded_file
from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.lake import day_floor, hours_between
from ml_assets.lib.core.lake_store import read_source
from ml_assets.lib.core.paths import DataPaths
from ml_assets.lib.core.workspace import Workspace
from ml_assets.lib.ingest.landing import feeds_of
from ml_assets.lib.release.rollback import promote, readiness
from ml_assets.lib.training.candidate import train_candidate
from ml_assets.lib.training.splits import assign_splits
from ml_assets.lib.training.train import (
    build_training_set,
    reference_rows,
    split_frame,
    training_window,
)
from ml_assets.scenarios.synthetic import Incident, SyntheticConfig, write_landing

DATA_INCIDENTS = ("schema_break", "nan_spike", "covariate_drift", "concept_drift")
SCHEMA_BREAK_RENAMES = {"amount_usd": "amount"}  # what the generator's schema break renames
MIN_LABEL_DELAY_DAYS = 7  # the earliest a chargeback lands after its transaction
# Checks that read labels: an alarm from these is not "before labels could exist".
LABEL_CHECKS = ("early_label_watch", "delayed_evaluation", "business_metric")
LEVELS = {"warn": 1, "error": 2}
RINGING_DAYS = 3  # an earlier incident's alarm this recent is not a new detection
DRILL_START = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class DrillPlan:
    """A timeline on day indices. Label-derived features need ~90 days to reach steady state
    (labels land up to 60 days late, windows are 30 days), so scoring starts after that."""

    days: int = 150
    scale: float = 0.25  # ~2,100 events a day: enough for a day's early reports to be telling
    seed: int = 7
    previous_day: int = 75  # a first model, kept as the rollback target
    champion_day: int = 90  # the acting champion; scoring and monitoring start here
    incidents: tuple[Incident, ...] = (
        Incident("nan_spike", 98), Incident("schema_break", 101), Incident("late_labels", 104, 3),
        Incident("bad_challenger", 108), Incident("covariate_drift", 112, 2),
        Incident("concept_drift", 116, 0))

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
    workspace: Workspace  # the simulated world: its data directory, spec and control plane
    source: DataPaths  # where the generator's files wait until they "arrive"
    start: datetime
    alarms: list[Alarm] = field(default_factory=list)
    scored: set[int] = field(default_factory=set)
    ingested_labels: set[int] = field(default_factory=set)
    responses: dict[int, list[str]] = field(default_factory=dict)
    evaluation_alarms_before_maturity: int = 0

    @property
    def spec(self) -> DatasetSpec:
        return self.workspace.spec

    @property
    def paths(self) -> DataPaths:
        return self.workspace.paths

    def day(self, i: int) -> datetime:
        return self.start + timedelta(days=i)

    def index(self, ts) -> int:
        return int((pd.Timestamp(ts) - pd.Timestamp(self.start)).days)

    def arrive(self, source_file: Path) -> None:
        """A landing file the generator wrote into ``source/`` lands in the world."""
        if source_file.exists():
            dst = self.paths.root / source_file.relative_to(self.source.root)
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source_file, dst)

    def arrive_labels(self, d: int) -> None:
        """Day ``d``'s file of every label feed the dataset has."""
        for feed in feeds_of(self.spec):
            self.arrive(feed.landing_file(self.source, self.day(d)))

    def arrive_events(self, lo: int, hi: int) -> None:
        for h in hours_between(self.day(lo), self.day(hi)):
            self.arrive(self.source.landing_events_file(h))


# -- arrivals -------------------------------------------------------------------------------
def held_label_days(state: DrillState, today: int) -> set[int]:
    """Late label files: those of the incident's days arrive when it ends."""
    return {d for i in state.plan.incidents if i.kind == "late_labels" and today < i.day + i.days
            for d in range(i.day, i.day + i.days)}


def redeliver(state: DrillState, d: int) -> None:
    """The upstream fixes its schema break: day ``d``'s files again carry the contract's
    column names (the values were never wrong, only renamed)."""
    for h in hours_between(state.day(d), state.day(d + 1)):
        path = state.paths.landing_events_file(h)
        table = pq.read_table(path)
        table = table.rename_columns([SCHEMA_BREAK_RENAMES.get(c, c) for c in table.column_names])
        pq.write_table(table, path, compression="zstd")


# -- alarms ---------------------------------------------------------------------------------
def alarm(state: DrillState, fired: int, data_day: int, check: str, level: str, detail: str,
          blocking: bool = False) -> None:
    """Record an alarm once per (data day, check): the first day it fires."""
    if level in LEVELS and (data_day, check) not in {(a.data_day, a.check) for a in state.alarms}:
        state.alarms.append(Alarm(fired, data_day, check, level, detail, blocking))


# Per monitoring table: the check that judges its rows, the column naming a sub-check, and
# whether only the champion's rows count.
MONITORING_CHECKS = {
    "feature_drift": ("psi_{}", "feature", False),
    "prediction_drift": ("score_shift", None, True),
    "business_metric": ("business_thresholds", None, False),
    "early_label_watch": ("missed_positive_reports", None, False),
    "delayed_evaluation": ("auc_vs_held_out", None, True),
}


def record_monitoring_rows(state: DrillState, assets, days, fired: int) -> None:
    """Alarms from the per-day rows the monitoring checks judge (a check result names only
    its worst day; counting clean-day alarms needs every day)."""
    maturity = state.spec.monitoring.label_maturity_days
    for asset in assets:
        check, name_col, champion_only = MONITORING_CHECKS[asset]
        table = state.workspace.catalog.table(asset)
        for d in days:
            path = table.path(state.day(d))
            if not path.exists():
                continue
            rows = pd.read_parquet(read_source(path))
            if champion_only and len(rows):
                rows = rows[rows["role"] == "champion"]
            if asset == "delayed_evaluation" and len(rows):
                early = (rows["status"] != "final") | (fired - d < maturity)
                state.evaluation_alarms_before_maturity += int(
                    ((rows["severity"] != "ok") & early).sum())
            for r in rows.itertuples():
                name = check.format(getattr(r, name_col)) if name_col else check
                detail = getattr(r, "alert_message", "") or (
                    f"PSI {r.psi:.3f}" if pd.notna(getattr(r, "psi", None)) else r.severity)
                alarm(state, fired, d, f"{asset}:{name}", r.severity, str(detail))


# -- models ---------------------------------------------------------------------------------
def train_at(state: DrillState, day: int, shuffle_labels: bool = False) -> str:
    """Train as of ``day`` through the library (training_set -> splits -> candidate) and
    register it; ``shuffle_labels`` makes the bad challenger (seeded, so reproducible)."""
    spec, paths = state.spec, state.paths
    end = state.day(day)
    window = training_window(spec, end)
    ts = build_training_set(paths, spec, window)
    if shuffle_labels:
        ts[spec.label] = np.random.default_rng(day).permutation(ts[spec.label].to_numpy())
    splits = pd.DataFrame({spec.event_id: ts[spec.event_id], "split": assign_splits(
        ts[spec.event_id], spec.model.split_salt, spec.model.split_fractions)})
    registry = state.workspace.registry
    if registry.reference_set(spec.model_name) is None:
        ref = reference_rows(split_frame(ts, splits, spec)["test"], spec)
        sha, path = artifacts.store(paths.artifacts, artifacts.frame_to_parquet_bytes(ref),
                                    "parquet")
        registry.freeze_reference_set(spec.model_name, sha, str(path.relative_to(paths.root)),
                                      len(ref), getpass.getuser())
    ref = pd.read_parquet(recorded_file(paths, registry.reference_set(spec.model_name)["path"],
                                           "reference set path"))
    card = train_candidate(paths, spec, ts, splits, ref, window, dataset_sha256(ts))
    version, _ = registry.register_model(spec.model_name, card, getpass.getuser())
    return version


# -- the world ------------------------------------------------------------------------------
def drill_start(days: int, now: datetime) -> datetime:
    """A fixed date far enough back that the timeline's last simulated day is in the past:
    Dagster has no partitions after "now", and ingestion rejects future timestamps."""
    if DRILL_START + timedelta(days=days) <= now:
        return DRILL_START
    return day_floor(now) - timedelta(days=days)


def new_world(root, spec: DatasetSpec, plan: DrillPlan) -> DrillState:
    """Landing files for the whole timeline wait in ``source/`` until they "arrive"."""
    data = [i for i in plan.incidents if i.kind in DATA_INCIDENTS]
    start = drill_start(plan.days, datetime.now(UTC))
    cfg = SyntheticConfig(seed=plan.seed, start=start, days=plan.days, scale=plan.scale,
                          incidents=tuple(data))
    source = DataPaths(root / "source")
    write_landing(cfg, source)
    world = Workspace(DataPaths(root / "world").ensure(), spec.starting(start))
    return DrillState(plan, world, source, cfg.start)


def deploy_models(state: DrillState) -> None:
    """A first model (the rollback target) and the acting champion, trained as of their days."""
    first = train_at(state, state.plan.previous_day)
    second = train_at(state, state.plan.champion_day)
    registry = state.workspace.registry
    promote(registry, state.paths, state.spec, second, "demo", "incident drill: champion")
    assert registry.aliases(state.spec.model_name)["previous"] == first


def summarize(state: DrillState) -> dict:
    plan, spec = state.plan, state.spec
    registry = state.workspace.registry
    ready = readiness(registry, state.paths, spec, registry.aliases(spec.model_name)["previous"])
    incidents = sorted(plan.incidents, key=lambda i: i.day)

    def owner(data_day: int) -> Incident | None:
        live = [i for i in incidents if i.day <= data_day < plan.effect_end(i)]
        return live[-1] if live else None

    def alarms_of(inc: Incident) -> list[Alarm]:
        """Alarms about the incident's effect window - except checks still ringing from an
        earlier incident (alarming on one of the days just before this one started): the
        tail of a drift in a 7-day window is not the detection of what comes next."""
        ringing = {a.check for a in state.alarms
                   if inc.day - RINGING_DAYS <= a.data_day < inc.day and owner(a.data_day)}
        return sorted((a for a in state.alarms if inc.day <= a.data_day < plan.effect_end(inc)
                       and a.fired_day >= inc.day and a.check not in ringing),
                      key=lambda a: (a.fired_day, -LEVELS[a.level]))

    rows = []
    for inc in incidents:
        mine = alarms_of(inc)
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
                                        and not a.check.startswith(LABEL_CHECKS) for a in early),
            "automatic_response": responses or ["alert only"],
        })
    clean = [a for a in state.alarms if owner(a.data_day) is None]
    leads = [r["lead_days"] for r in rows if r["lead_days"] is not None]
    detected_first = all(r["detected_day"] is not None and (
        r["business_alert_day"] is None or r["detected_day"] <= r["business_alert_day"])
        for r in rows)
    next_day = all(r["detected_day"] is not None and r["detected_day"] <= r["injected_day"] + 1
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
                    "all_detected_by_next_day": next_day,
                    "clean_day_error_alarms": sum(a.level == "error" for a in clean)},
        "alarms": [asdict(a) for a in state.alarms],
    }
