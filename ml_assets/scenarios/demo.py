"""Headless demo: generate landing data and materialize the whole graph through Dagster, with
the same instance the UI reads (``dagster_home`` under the data directory)."""

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import pairwise

import dagster as dg
import pandas as pd

from ml_assets.defs.monitoring.assets import monitoring_asset_names
from ml_assets.defs.partitions import day_key, event_key, event_range_tags, range_tags
from ml_assets.defs.training.definitions import TRAINING_ASSETS
from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.workspace import Workspace
from ml_assets.lib.docs.documents import DOCUMENTS
from ml_assets.lib.ingest.landing import events_layout, label_feeds
from ml_assets.lib.monitoring.tables import label_horizon
from ml_assets.lib.release import rollout
from ml_assets.lib.release.authority import NotAuthorized
from ml_assets.lib.release.rollback import promote
from ml_assets.lib.scoring.microbatch import land_events
from ml_assets.scenarios import FIRST_MODEL_AT
from ml_assets.scenarios.runner import dagster_instance, materialize, training_config
from ml_assets.scenarios.sensor_state import settle_sensors
from ml_assets.scenarios.synthetic import SyntheticConfig, write_landing


@dataclass(frozen=True)
class StepRun:
    """One range run of a step: its assets, the partition range tags and whether a failed
    check fails it (monitoring's alarms are findings, not failures)."""
    selection: list[str]
    tags: dict[str, str]
    fail_on_checks: bool = True


def step_runs(spec: DatasetSpec, step: str, start: datetime, end: datetime) -> list[StepRun]:
    """The runs of a pipeline step over ``[start, end)``: from the partition holding ``start``
    to the last one ending by ``end`` (hours for hourly assets, days for daily ones).

    Parameters
    ----------
    spec : DatasetSpec
        Gives the label feeds and monitoring assets.
    step : str
        ``ingest``, ``features``, ``score`` or ``monitor`` (as ``ml-assets run`` names them;
        training is not partitioned, its window is run config: ``training_config``).
    start, end : datetime
        UTC; ``end`` exclusive.

    Returns
    -------
    list of StepRun
        ``ingest``: events (at the spec's ``partition_grain``) then labels with the quarantine
        (daily); the others one run.
    """
    events = event_range_tags(spec, start, end)
    days = range_tags(day_key(start), day_key(end - timedelta(days=1)))
    return {
        "ingest": [StepRun(["raw_events"], events),
                   StepRun([*label_feeds(spec), "quarantine"], days)],
        "features": [StepRun(["event_features"], events)],
        "score": [StepRun(["batch_scores"], events)],
        "monitor": [StepRun(monitoring_asset_names(spec), days, fail_on_checks=False)],
    }[step]


@dataclass
class DemoReport:
    data_dir: str
    events: int = 0
    labels: int = 0
    steps: list[dict] = field(default_factory=list)
    models: list[dict] = field(default_factory=list)
    aliases: dict = field(default_factory=dict)
    partitions: dict = field(default_factory=dict)
    seconds: float = 0.0


def run_demo(ws: Workspace, cfg: SyntheticConfig, defs: dg.Definitions, log=print,
             until: datetime | None = None) -> DemoReport:
    """Generate the synthetic fraud landing data, then run the whole pipeline over it.

    Parameters
    ----------
    ws : Workspace
        Where the world is written (``ws.paths``) and the dataset spec it follows.
    cfg : SyntheticConfig
        Days, scale and seed of the generated landing data.
    defs : dagster.Definitions
        ``build_definitions(ws.spec, ws.paths.root)``.
    log : callable, default print
        Receives one progress line per step.
    until : datetime, optional
        UTC hour: land and run only what has happened of the timeline by then
        (``demo_clock.landed_until``); default its end.

    Returns
    -------
    DemoReport
        Steps with their seconds, models, aliases and the materialized partition ranges.

    Raises
    ------
    StepFailed
        When a step of the pipeline fails (see :func:`run_pipeline`).
    """
    paths = ws.paths
    t0 = time.perf_counter()
    paths.ensure()
    end = min(until or cfg.end, cfg.end)
    manifest = write_landing(cfg, paths, end)
    seconds = time.perf_counter() - t0
    log(f"generated {manifest['events']:,} events and {manifest['labels']:,} labels "
        f"({cfg.start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC) in {seconds:.1f}s")
    report = run_pipeline(ws, defs, cfg.start, end, first_model_at=FIRST_MODEL_AT,
                          challenger_at=0.75, log=log)
    report.events, report.labels = manifest["events"], manifest["labels"]
    report.steps.insert(0, {"step": "generate landing data", "seconds": seconds})
    report.seconds += seconds
    return report


# The run tag naming the demo's step, so the run list can be filtered to one step of the story.
STEP_TAG = "ml_assets/demo_step"


def run_pipeline(ws: Workspace, defs: dg.Definitions, start: datetime, end: datetime,
                 first_model_at: float = 0.5, challenger_at: float = 1.0,
                 log=print) -> DemoReport:
    """Materialize the graph over landing data in [start, end), each step a run of the job the
    schedules and sensors run (tagged ``ml_assets/demo_step``): ingest, features, a first model
    trained as of ``first_model_at`` of the period (champion), a later one as of
    ``challenger_at`` (challenger), and batch scores from the first model's cutoff on. The
    challenger is shadowed over the whole days after its cutoff; when they reach the shadow
    policy's minimum it is gated and rolled out stage by stage, otherwise promoted only if not
    worse on the frozen reference set. The rollout stages are walked either way. Then a
    rollback drill, the success criteria, a microbatch of the last hour's events, and the
    documents, rendered last so they show the drill and the rollout. Every sensor's cursor is
    then stored (``sensor_state.settle_sensors``): the UI's daemon does not redo the demo.

    Raises
    ------
    StepFailed
        When a run fails (monitoring and shadow runs fail only on a failed step).
    """
    spec, paths = ws.spec, ws.paths
    t_start = time.perf_counter()
    report = DemoReport(data_dir=str(paths.root))
    paths.ensure()
    instance = dagster_instance(paths)
    last_event = end - spec.partition_step
    first_day, last_day = start, end - timedelta(days=1)
    v1_as_of = start + timedelta(days=round((end - start).days * first_model_at))
    v2_as_of = start + timedelta(days=round((end - start).days * challenger_at))
    events, labels = step_runs(spec, "ingest", start, end)
    [features] = step_runs(spec, "features", start, end)
    [scores] = step_runs(spec, "score", v1_as_of, end)
    [monitor] = step_runs(spec, "monitor", v1_as_of, end)

    def step(tag: str, name: str, job: str, run: StepRun, run_config: dict | None = None,
             note: str = "") -> None:
        seconds = materialize(defs, instance, run.selection, {**run.tags, STEP_TAG: tag},
                              run_config, fail_on_checks=run.fail_on_checks, job=job)
        report.steps.append({"step": name, "seconds": seconds})
        log(f"{name}: {seconds:.1f}s{note}")

    scoring_job = f"{spec.partition_grain}_scoring_job"
    step("ingest", "ingest events", scoring_job, events)
    step("ingest", "ingest labels", "daily_labels_job", labels)
    step("features", "build features", scoring_job, features)
    for as_of, which in ((v1_as_of, "first"), (v2_as_of, "later")):
        step("train", f"train {which} model as of {as_of:%Y-%m-%d}", "nightly_training_job",
             StepRun(list(TRAINING_ASSETS), {}), training_config(as_of, spec))
    step("score", "score with every live model", scoring_job, scores)
    step("monitor", "monitor every scored day", "daily_monitoring_job", monitor,
         note=" (`ml-assets monitor` shows the days and their alarms)")

    registry = ws.registry
    gate_at = v2_as_of + spec.shadow.min_days * timedelta(days=1)
    if v2_as_of < end - timedelta(days=1):  # the challenger has whole days of shadow scores
        step("shadow", "shadow the challenger", "shadow_job", StepRun(
            ["shadow_report"], range_tags(day_key(v2_as_of), day_key(min(gate_at, end)
                                                                     - timedelta(days=1))),
            fail_on_checks=False))
    if gate_at < end:
        _roll_out(ws, gate_at, log)
    else:
        _promote_if_not_worse(ws, log)
    # Captured before the walk: once it reaches 100% the version is champion, no challenger.
    rolling = registry.aliases(spec.model_name).get("challenger")
    walked_from = len(rollout.history(registry, rolling)) if rolling else 0
    step("rollout", "walk the rollout stages", "rollout_job",
         StepRun(["rollout_state"], {}, fail_on_checks=False))
    if rolling:
        for h in rollout.history(registry, rolling)[walked_from:]:
            log(f"  {h['action']:<16} {h['reason']}")
    if registry.aliases(spec.model_name).get("previous"):
        step("drill", "rollback drill", "rollback_drill_job", StepRun(["rollback_drills"], {}))
    else:
        log("no rollback drill: there is no previous model to roll back to")
    step("rollout", "measure the success criteria", "rollout_job",
         StepRun(["success_criteria"], {}, fail_on_checks=False))
    _land_microbatch(ws, last_event, end - timedelta(hours=1))
    step("microbatch", "score a microbatch of the last hour", "microbatch_scoring_job",
         StepRun(["microbatch_scores"], {}), {"ops": {"microbatch_scores": {"config": {
             "files": [f"{MICROBATCH_FILE}.parquet"]}}}})
    step("docs", "render the documents", "docs_job",
         StepRun(list(DOCUMENTS), {}, fail_on_checks=False))
    settle_sensors(defs, instance, log)  # the UI's daemon continues from here
    report.models = registry.list_models(spec.model_name)
    report.aliases = registry.aliases(spec.model_name)
    report.partitions = {
        "raw_events": f"{event_key(spec, start)} .. {event_key(spec, last_event)}",
        "raw_labels": f"{day_key(first_day)} .. {day_key(last_day)}",
        "batch_scores": f"{event_key(spec, v1_as_of)} .. {event_key(spec, last_event)}",
    }
    report.seconds = time.perf_counter() - t_start
    return report


# The microbatch the demo lands: the last hour's events again, as a streaming writer would.
MICROBATCH_FILE = "demo-last-hour"


def _land_microbatch(ws: Workspace, period: datetime, hour: datetime) -> None:
    """Copy the landing events of ``hour`` (inside the partition starting at ``period``,
    whatever files it landed in) into ``landing/microbatch/`` (what an upstream writer does),
    for ``microbatch_scoring_job`` to score."""
    files = [f for f, _, _ in events_layout(ws.paths, ws.spec).covering(period)]
    events = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    ts = events[ws.spec.event_ts]
    land_events(ws.paths, events[(ts >= hour) & (ts < hour + timedelta(hours=1))],
                MICROBATCH_FILE)


def _roll_out(ws: Workspace, gate_at: datetime, log) -> None:
    """Start the rollout at ``gate_at`` if the promotion gate passes over the shadow days (as
    `ml-assets rollout 1` would); `rollout_state` then walks the stages (the next run)."""
    registry, paths, spec = ws.registry, ws.paths, ws.spec
    aliases = registry.aliases(spec.model_name)
    challenger = aliases["challenger"]
    if not challenger:  # a rerun: the last challenger was rolled out, none trained since
        log("no challenger to roll out" + (f": {aliases['champion']} stays champion"
                                            if aliases["champion"] else ""))
        return
    try:
        rollout.start(registry, paths, spec, "demo", gate_at, label_horizon(paths),
                      reason="demo: promotion gate passed")
        log(f"{challenger}: promotion gate passed after {spec.shadow.min_days:g} days; rollout at 1%")
    except rollout.RolloutRefused as exc:
        log(f"{challenger} stays in shadow: {exc}")
        return
    _pass_canaries(ws, gate_at, log)


# Stages below this percent are canaries: on the demo's traffic (~0.15% fraud) their arm holds
# a handful of frauds in weeks, so they never measure; the demo passes them by audited override
# when their guardrails are clean, and `rollout_state` measures the stages from here on.
CANARY_BELOW = 25


def _pass_canaries(ws: Workspace, at: datetime, log) -> None:
    """Move past each canary stage after its dwell, as an operator would: by evidence when it
    measures, by an audited override naming its data when it is only too small to measure;
    a guardrail or a wrong-way estimate stops here (the walk then pauses or holds)."""
    registry, paths, spec = ws.registry, ws.paths, ws.spec
    for canary, stage in pairwise(spec.rollout.stages[1:]):
        if int(canary) >= CANARY_BELOW:
            return
        at += timedelta(hours=spec.rollout.min_dwell_hours)
        try:
            rollout.step(registry, paths, spec, stage, "demo", at, label_horizon(paths))
        except rollout.StageHeld as held:
            if held.evidence["outcome"] != "not_measurable":
                log(f"canary holds: {held}")
                return
            arm = held.evidence["challenger_arm"]
            rollout.step(registry, paths, spec, stage, "demo", at, label_horizon(paths),
                         override=True,
                         reason=f"demo: the {canary}% arm is too small to measure "
                                f"({arm['labeled']} labeled events, {arm['labeled_positives']} "
                                "positive); no guardrail tripped")
        log(f"rollout at {stage}%")


def _promote_if_not_worse(ws: Workspace, log) -> None:
    """Promote the later model when it is at least as good on the frozen reference set; the
    first model then becomes `previous`, a rollback target that already has batch scores."""
    registry, spec = ws.registry, ws.spec
    aliases = registry.aliases(spec.model_name)
    if not aliases["challenger"]:
        return
    auc = {a: registry.get_model(aliases[a])["metrics"]["frozen_reference"]["auc"] or 0.0
           for a in ("champion", "challenger")}
    if auc["challenger"] < auc["champion"]:
        log(f"kept {aliases['champion']}: {aliases['challenger']} is worse on the frozen "
            f"reference set (AUC {auc['challenger']:.4f} < {auc['champion']:.4f})")
        return
    try:
        promote(registry, ws.paths, spec, aliases["challenger"], actor="demo",
                reason="demo: later model not worse on the frozen reference set")
    except NotAuthorized as exc:  # a user's contract need not name the demo (audited refusal)
        log(f"kept {aliases['champion']}: {exc}")
        return
    log(f"promoted {aliases['challenger']} to champion; {aliases['champion']} is now previous")

