"""The rollback drill: a monthly, real rollback through the HTTP serving path, recorded in the
control plane, with its recency (90-day rule) and readiness checks."""

import getpass

import dagster as dg

from ml_assets.defs.metadata import known_metadata
from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.workspace import Workspace
from ml_assets.lib.release import rollback
from ml_assets.serving.app import rollback_drill


class DrillConfig(dg.Config):
    serving_url: str | None = None
    """A running serving app to drill against; default: start one on localhost for the drill."""


def build_rollback_defs(spec: DatasetSpec) -> dg.Definitions:
    """The ``rollback_drills`` asset, its checks, ``rollback_drill_job`` and its monthly schedule.

    Parameters
    ----------
    spec : DatasetSpec
        The dataset spec (owner, model name).

    Returns
    -------
    dg.Definitions
        One asset (group ``serving``), checks ``drill_recency`` and ``rollback_readiness``,
        ``rollback_drill_job``, ``rollback_drill_schedule`` (monthly, 04:00 UTC) and
        ``drill_lease_sensor`` (reverts a dead drill's flip once its lease expired).
    """
    common = {"group_name": "serving", "owners": [spec.owner]}

    @dg.asset(name="rollback_drills", kinds={"sqlite"},
              description="Exercises the rollback for real: flips the kill switch, verifies via "
                          "the HTTP serving path that the previous model answers, flips back, "
                          "and records the drill (time to effect, who, result) in the control "
                          "plane. Fails when the drill fails.", **common)
    def rollback_drills(context: dg.AssetExecutionContext, config: DrillConfig,
                        project: dg.ResourceParam[Workspace]) -> dg.MaterializeResult:
        actor = f"dagster:{getpass.getuser()}"
        result = rollback_drill(project.registry, project.paths, spec, actor,
                                config.serving_url or None)
        if not result["ok"]:
            raise dg.Failure(f"rollback drill failed: {'; '.join(result['errors'])}",
                             metadata={"drill_id": int(result["drill_id"])})
        return dg.MaterializeResult(metadata={
            "drill_id": int(result["drill_id"]),
            "time_to_effect_ms": float(result["time_to_effect_ms"]),
            "restore_ms": float(result["restore_ms"]),
            "champion_version": result["champion_version"],
            "previous_version": result["previous_version"],
        })

    @dg.asset_check(asset="rollback_drills", name="drill_recency",
                    description="Fails when the last successful rollback drill is older than 90 "
                                "days (or there is none): an unexercised rollback is theoretical.")
    def drill_recency(project: dg.ResourceParam[Workspace]) -> dg.AssetCheckResult:
        status = rollback.drill_status(project.registry, spec)
        return dg.AssetCheckResult(
            passed=bool(status["ok"]), severity=dg.AssetCheckSeverity.ERROR,
            description=status["reason"],
            metadata=known_metadata({
                "age_days": status["age_days"],
                "last_successful_drill": status["last_successful_drill"] or "never"}))

    @dg.asset_check(asset="rollback_drills", name="rollback_readiness",
                    description="The previous model can be served right now: artifact present "
                                "and SHA-256 verified, features still computable.")
    def rollback_readiness(project: dg.ResourceParam[Workspace]) -> dg.AssetCheckResult:
        ready = rollback.rollback_readiness(project.registry, project.paths, spec)
        flip = rollback.drill_flip(project.registry)
        if flip is not None and flip["expired"]:  # production is on previous by accident
            ready.ok, ready.reasons = False, [*ready.reasons, flip["message"]]
        return dg.AssetCheckResult(
            passed=bool(ready.ok), severity=dg.AssetCheckSeverity.ERROR,
            description="ok" if ready.ok else "; ".join(ready.reasons),
            metadata=known_metadata({"previous_version": ready.version,
                                     "problems": len(ready.reasons)}))

    drill_job = dg.define_asset_job(
        "rollback_drill_job", selection=dg.AssetSelection.assets("rollback_drills"),
        description="Flip the kill switch, verify through HTTP that the previous model answers, "
                    "flip back, record the drill; then check drill recency and readiness.")
    # Monthly in a low-traffic window, well inside the 90-day rule.
    drill_schedule = dg.ScheduleDefinition(
        name="rollback_drill_schedule", job=drill_job, cron_schedule="0 4 1 * *",
        execution_timezone="UTC", default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Monthly rollback drill at 04:00 UTC (low traffic); a few seconds on the "
                    "previous model, then back.")

    @dg.sensor(name="drill_lease_sensor", minimum_interval_seconds=60,
               default_status=dg.DefaultSensorStatus.RUNNING,
               description="Reverts a rollback drill's kill-switch flip whose lease expired (the "
                           "drill died mid-way): switch back off, drill recorded as failed, "
                           "audited as lease-expiry.")
    def drill_lease_sensor(context: dg.SensorEvaluationContext,
                           project: dg.ResourceParam[Workspace]) -> dg.SkipReason:
        closed = rollback.expire_drill_flip(project.registry)
        if closed is not None:
            context.log.warning(f"reverted a dead drill's flip: {closed}")
            return dg.SkipReason(f"reverted a dead drill's flip, restored {closed['restored']}")
        flip = rollback.drill_flip(project.registry)
        return dg.SkipReason(flip["message"] if flip else "no drill flip open")

    return dg.Definitions(assets=[rollback_drills], asset_checks=[drill_recency, rollback_readiness],
                          jobs=[drill_job], schedules=[drill_schedule],
                          sensors=[drill_lease_sensor])
