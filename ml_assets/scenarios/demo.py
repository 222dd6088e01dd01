"""Headless demo: generate landing data and materialize the whole graph through Dagster, with
the same instance the UI reads (``dagster_home`` under the data directory)."""

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import dagster as dg

from ml_assets.defs.monitoring.assets import monitoring_asset_names
from ml_assets.defs.partitions import day_key, event_key, event_range_tags, range_tags
from ml_assets.defs.training.definitions import TRAINING_ASSETS
from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.workspace import Workspace
from ml_assets.lib.docs.documents import DOCUMENTS
from ml_assets.lib.ingest.landing import label_feeds
from ml_assets.lib.monitoring.tables import label_horizon
from ml_assets.lib.release import rollout
from ml_assets.lib.release.authority import NotAuthorized
from ml_assets.lib.release.rollback import promote
from ml_assets.scenarios import FIRST_MODEL_AT
from ml_assets.scenarios.runner import dagster_instance, materialize, training_config
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


def run_demo(ws: Workspace, cfg: SyntheticConfig, defs: dg.Definitions, log=print) -> DemoReport:
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
    manifest = write_landing(cfg, paths)
    seconds = time.perf_counter() - t0
    log(f"generated {manifest['events']:,} events and {manifest['labels']:,} labels "
        f"({cfg.days} days from {cfg.start:%Y-%m-%d}) in {seconds:.1f}s")
    report = run_pipeline(ws, defs, cfg.start, cfg.end, first_model_at=FIRST_MODEL_AT,
                          challenger_at=0.75, log=log)
    report.events, report.labels = manifest["events"], manifest["labels"]
    report.steps.insert(0, {"step": "generate landing data", "seconds": seconds})
    report.seconds += seconds
    return report


def run_pipeline(ws: Workspace, defs: dg.Definitions, start: datetime, end: datetime,
                 first_model_at: float = 0.5, challenger_at: float = 1.0,
                 log=print) -> DemoReport:
    """Materialize the graph over landing data in [start, end): ingest, features, a first model
    trained as of ``first_model_at`` of the period (champion), a later one as of
    ``challenger_at`` (challenger), and batch scores from the first model's cutoff on. When the
    challenger has traffic after its cutoff it is shadowed, gated and rolled out stage by
    stage; otherwise it is promoted only if not worse on the frozen reference set.

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
    plan = [
        ("ingest events", events.selection, events.tags, None),
        ("ingest labels", labels.selection, labels.tags, None),
        ("build features", features.selection, features.tags, None),
        (f"train first model as of {v1_as_of:%Y-%m-%d}", list(TRAINING_ASSETS), None,
         training_config(v1_as_of, spec)),
        (f"train later model as of {v2_as_of:%Y-%m-%d}", list(TRAINING_ASSETS), None,
         training_config(v2_as_of, spec)),
        ("score with every live model", scores.selection, scores.tags, None),
    ]
    for name, selection, tags, run_config in plan:
        seconds = materialize(defs, instance, selection, tags, run_config)
        report.steps.append({"step": name, "seconds": seconds})
        log(f"{name}: {seconds:.1f}s")
    name = "monitor every scored day"
    seconds = materialize(defs, instance, monitor.selection, monitor.tags,
                          fail_on_checks=monitor.fail_on_checks)
    report.steps.append({"step": name, "seconds": seconds})
    log(f"{name}: {seconds:.1f}s (`ml-assets monitor` shows the days and their alarms)")

    registry = ws.registry
    if v2_as_of + spec.shadow.min_days * timedelta(days=1) < end:
        _shadow_and_roll_out(defs, instance, ws, v2_as_of, report, log)
    else:
        _promote_if_not_worse(ws, log)
    report.models = registry.list_models(spec.model_name)
    report.aliases = registry.aliases(spec.model_name)
    report.partitions = {
        "raw_events": f"{event_key(spec, start)} .. {event_key(spec, last_event)}",
        "raw_labels": f"{day_key(first_day)} .. {day_key(last_day)}",
        "batch_scores": f"{event_key(spec, v1_as_of)} .. {event_key(spec, last_event)}",
    }
    report.seconds = time.perf_counter() - t_start
    return report


def _shadow_and_roll_out(defs, instance, ws: Workspace, cutoff: datetime, report: DemoReport,
                         log) -> None:
    """Shadow the challenger for the minimum duration, start the rollout if the gate passes
    (as `ml-assets rollout 1` would), let `rollout_state` walk the stages through the rest of
    the data (all in lib, one run), then render the documents."""
    registry, paths, spec = ws.registry, ws.paths, ws.spec
    gate_at = cutoff + spec.shadow.min_days * timedelta(days=1)
    steps = [("shadow the challenger", ["shadow_report"],
              range_tags(day_key(cutoff), day_key(gate_at - timedelta(days=1))))]
    for name, selection, tags in steps:
        seconds = materialize(defs, instance, selection, tags, fail_on_checks=False)
        report.steps.append({"step": name, "seconds": seconds})
        log(f"{name}: {seconds:.1f}s")
    challenger = registry.aliases(spec.model_name)["challenger"]
    try:
        rollout.start(registry, paths, spec, "demo", gate_at, label_horizon(paths),
                      reason="demo: promotion gate passed")
        log(f"{challenger}: promotion gate passed after {spec.shadow.min_days:g} days; rollout at 1%")
    except rollout.RolloutRefused as exc:
        log(f"{challenger} stays in shadow: {exc}")
    for name, selection in (("walk the rollout stages", ["rollout_state"]),
                            ("render the documents", list(DOCUMENTS))):
        seconds = materialize(defs, instance, selection, fail_on_checks=False)
        report.steps.append({"step": name, "seconds": seconds})
        log(f"{name}: {seconds:.1f}s")
    for h in rollout.history(registry, challenger):
        log(f"  {h['action']:<16} {h['reason']}")


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

