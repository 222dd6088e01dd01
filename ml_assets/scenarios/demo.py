"""Headless demo: generate landing data and materialize the whole graph through Dagster, with
the same instance the UI reads (``DAGSTER_HOME`` under the data directory)."""

import getpass
import os
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import dagster as dg

from ml_assets.defs.automation import TRAINING_ASSETS
from ml_assets.defs.monitoring.assets import monitoring_asset_names
from ml_assets.defs.partitions import day_key, hour_key, range_tags
from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.paths import DataPaths
from ml_assets.lib.core.registry import Registry
from ml_assets.lib.docs.documents import DOCUMENTS
from ml_assets.lib.ingest.landing import label_feeds
from ml_assets.lib.monitoring.tables import label_horizon
from ml_assets.lib.release import rollout
from ml_assets.lib.release.rollback import promote
from ml_assets.scenarios.synthetic import SyntheticConfig, write_landing


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


class DemoStepFailed(RuntimeError):
    pass


QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def dagster_instance(paths: DataPaths) -> dg.DagsterInstance:
    """The persistent instance the UI reads (``make ui`` uses the same DAGSTER_HOME)."""
    os.environ["DAGSTER_HOME"] = str(paths.dagster_home)
    # A range run then logs one "planned" event per asset instead of one per partition
    # (thousands of SQLite writes saved per backfill).
    os.environ.setdefault("DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS", "1")
    paths.dagster_home.mkdir(parents=True, exist_ok=True)
    config = paths.dagster_home / "dagster.yaml"
    if not config.exists():
        config.write_text("telemetry:\n  enabled: false\n")
    return dg.DagsterInstance.get()


def materialize(defs: dg.Definitions, instance: dg.DagsterInstance, selection: list[str],
                tags: dict | None = None, run_config: dict | None = None,
                fail_on_checks: bool = True) -> float:
    """One run over the selection (and its checks); raises with the failing step's message.
    ``fail_on_checks=False`` is for monitoring: its alarms are findings, not failures."""
    t0 = time.perf_counter()
    result = dg.materialize(
        assets=[*defs.assets, *(defs.asset_checks or [])],
        selection=dg.AssetSelection.assets(*selection),
        instance=instance,
        resources=defs.resources,
        tags=tags or {},
        run_config={**QUIET_LOGS, **(run_config or {})},
        raise_on_error=False,
    )
    failed_checks = [e for e in result.get_asset_check_evaluations()
                     if not e.passed and fail_on_checks]
    if not result.success or failed_checks:
        failures = [step_failure_message(e) for e in result.all_events if e.is_step_failure]
        failures += [f"check {e.check_name} failed: {e.description}" for e in failed_checks]
        raise DemoStepFailed(f"materializing {selection} failed: {'; '.join(failures)}")
    return time.perf_counter() - t0


def step_failure_message(event: dg.DagsterEvent) -> str:
    error = event.event_specific_data.error
    while error.cause is not None:  # the user's exception is the innermost cause
        error = error.cause
    return f"{event.step_key}: {error.message.strip()}"


def run_demo(spec: DatasetSpec, paths: DataPaths, cfg: SyntheticConfig, defs: dg.Definitions,
             log=print) -> DemoReport:
    """Generate the synthetic fraud landing data, then run the whole pipeline over it."""
    t0 = time.perf_counter()
    paths.ensure()
    manifest = write_landing(cfg, paths)
    seconds = time.perf_counter() - t0
    log(f"generated {manifest['events']:,} events and {manifest['labels']:,} labels "
        f"({cfg.days} days from {cfg.start:%Y-%m-%d}) in {seconds:.1f}s")
    report = run_pipeline(spec, paths, defs, cfg.start, cfg.end, challenger_at=0.75, log=log)
    report.events, report.labels = manifest["events"], manifest["labels"]
    report.steps.insert(0, {"step": "generate landing data", "seconds": seconds})
    report.seconds += seconds
    return report


def run_pipeline(spec: DatasetSpec, paths: DataPaths, defs: dg.Definitions, start: datetime,
                 end: datetime, first_model_at: float = 0.5, challenger_at: float = 1.0,
                 log=print) -> DemoReport:
    """Materialize the graph over landing data in [start, end): ingest, features, a first model
    trained as of ``first_model_at`` of the period (champion), a later one as of
    ``challenger_at`` (challenger), and batch scores from the first model's cutoff on. When the
    challenger has traffic after its cutoff it is shadowed, gated and rolled out stage by
    stage; otherwise it is promoted only if not worse on the frozen reference set."""
    t_start = time.perf_counter()
    report = DemoReport(data_dir=str(paths.root))
    paths.ensure()
    instance = dagster_instance(paths)
    first_hour, last_hour = start, end - timedelta(hours=1)
    first_day, last_day = start, end - timedelta(days=1)
    hours = range_tags(hour_key(first_hour), hour_key(last_hour))
    days = range_tags(day_key(first_day), day_key(last_day))
    v1_as_of = start + timedelta(days=round((end - start).days * first_model_at))
    v2_as_of = start + timedelta(days=round((end - start).days * challenger_at))
    plan = [
        ("ingest events", ["raw_events"], hours, None),
        ("ingest labels", [*label_feeds(spec), "quarantine"], days, None),
        ("build features", ["event_features"], hours, None),
        (f"train first model as of {v1_as_of:%Y-%m-%d}", list(TRAINING_ASSETS), None,
         _training_config(v1_as_of, spec)),
        (f"train later model as of {v2_as_of:%Y-%m-%d}", list(TRAINING_ASSETS), None,
         _training_config(v2_as_of, spec)),
        ("score with every live model", ["batch_scores"],
         range_tags(hour_key(v1_as_of), hour_key(last_hour)), None),
    ]
    for name, selection, tags, run_config in plan:
        seconds = materialize(defs, instance, selection, tags, run_config)
        report.steps.append({"step": name, "seconds": seconds})
        log(f"{name}: {seconds:.1f}s")
    name = "monitor every scored day"
    seconds = materialize(defs, instance, monitoring_asset_names(spec),
                          range_tags(day_key(v1_as_of), day_key(last_day)), fail_on_checks=False)
    report.steps.append({"step": name, "seconds": seconds})
    log(f"{name}: {seconds:.1f}s (`ml-assets monitor` shows the days and their alarms)")

    registry = Registry(paths.control_db)
    if v2_as_of + spec.shadow.min_days * timedelta(days=1) < end:
        _shadow_and_roll_out(defs, instance, registry, paths, spec, v2_as_of, report, log)
    else:
        _promote_if_not_worse(registry, paths, spec, log)
    report.models = registry.list_models(spec.model_name)
    report.aliases = registry.aliases(spec.model_name)
    report.partitions = {
        "raw_events": f"{hour_key(first_hour)} .. {hour_key(last_hour)}",
        "raw_labels": f"{day_key(first_day)} .. {day_key(last_day)}",
        "batch_scores": f"{hour_key(v1_as_of)} .. {hour_key(last_hour)}",
    }
    report.seconds = time.perf_counter() - t_start
    return report


def _shadow_and_roll_out(defs, instance, registry: Registry, paths: DataPaths,
                         spec: DatasetSpec, cutoff: datetime, report: DemoReport, log) -> None:
    """Shadow the challenger for the minimum duration, start the rollout if the gate passes
    (as `ml-assets rollout 1` would), let `rollout_state` walk the stages through the rest of
    the data (all in lib, one run), then render the documents."""
    gate_at = cutoff + spec.shadow.min_days * timedelta(days=1)
    steps = [("shadow the challenger", ["shadow_report"],
              range_tags(day_key(cutoff), day_key(gate_at - timedelta(days=1))))]
    for name, selection, tags in steps:
        seconds = materialize(defs, instance, selection, tags, fail_on_checks=False)
        report.steps.append({"step": name, "seconds": seconds})
        log(f"{name}: {seconds:.1f}s")
    challenger = registry.aliases(spec.model_name)["challenger"]
    try:
        rollout.start(registry, paths, spec, getpass.getuser(), gate_at, label_horizon(paths),
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


def _promote_if_not_worse(registry: Registry, paths: DataPaths, spec: DatasetSpec, log) -> None:
    """Promote the later model when it is at least as good on the frozen reference set; the
    first model then becomes `previous`, a rollback target that already has batch scores."""
    aliases = registry.aliases(spec.model_name)
    if not aliases["challenger"]:
        return
    auc = {a: registry.get_model(aliases[a])["metrics"]["frozen_reference"]["auc"] or 0.0
           for a in ("champion", "challenger")}
    if auc["challenger"] < auc["champion"]:
        log(f"kept {aliases['champion']}: {aliases['challenger']} is worse on the frozen "
            f"reference set (AUC {auc['challenger']:.4f} < {auc['champion']:.4f})")
        return
    promote(registry, paths, spec, aliases["challenger"], actor=getpass.getuser(),
            reason="demo: later model not worse on the frozen reference set")
    log(f"promoted {aliases['challenger']} to champion; {aliases['champion']} is now previous")


def _training_config(as_of, spec: DatasetSpec) -> dict:
    return {"ops": {"training_set": {"config": {"as_of": as_of.isoformat(),
                                                "window_days": spec.model.training_window_days}}}}
