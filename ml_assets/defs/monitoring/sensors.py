"""Monitoring automation: the daily monitoring job and schedule, the label-arrival sensor that
re-evaluates exactly the prediction days new labels touch, and the alert sensor that turns
failed checks into structured alert records (and calls the configured hooks)."""

import hashlib
import json
from datetime import UTC, datetime, timedelta

import dagster as dg
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

from ml_assets.defs.historical import past_end, schedule_status, sensor_status
from ml_assets.defs.monitoring.assets import LABEL_DRIVEN_ASSETS, monitoring_asset_names
from ml_assets.defs.partitions import day_key, range_tags
from ml_assets.lib.core.catalog import BATCH_SCORES
from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.lake import day_floor
from ml_assets.lib.core.workspace import Workspace
from ml_assets.lib.monitoring import alerts
from ml_assets.lib.monitoring import tables as monitoring


def build_monitoring_automation(spec: DatasetSpec) -> tuple[list, list, list]:
    present = set(monitoring_asset_names(spec))
    monitoring_job = dg.define_asset_job(
        "daily_monitoring_job", selection=dg.AssetSelection.assets(*sorted(present)),
        description="Business metric, feature and prediction drift and delayed evaluation "
                    "for one day (with their checks).")
    label_job = dg.define_asset_job(
        "label_evaluation_job",
        selection=dg.AssetSelection.assets(*sorted(present & set(LABEL_DRIVEN_ASSETS))),
        description="Re-evaluate prediction days whose labels just landed.")

    @dg.schedule(job=monitoring_job, cron_schedule="45 1 * * *", execution_timezone="UTC",
                 default_status=schedule_status(spec))
    def daily_monitoring_schedule(context: dg.ScheduleEvaluationContext, project: dg.ResourceParam[Workspace]):
        day = day_floor(context.scheduled_execution_time) - timedelta(days=1)
        if skip := past_end(spec, day):
            return skip
        missing = project.catalog.table(BATCH_SCORES).missing(day, day + timedelta(days=1))
        if missing:
            return dg.SkipReason(f"batch_scores for {day_key(day)} lack {len(missing)} hour(s)")
        return dg.RunRequest(run_key=day_key(day), partition_key=day_key(day))

    @dg.sensor(job=label_job, minimum_interval_seconds=300, default_status=sensor_status(spec),
               description="Watches ingested label partitions; requests evaluation runs for "
                           "exactly the prediction days whose labels changed.")
    def label_arrival_sensor(context: dg.SensorEvaluationContext, project: dg.ResourceParam[Workspace]):
        if skip := past_end(spec, datetime.now(UTC)):
            return skip
        state = json.loads(context.cursor) if context.cursor else {}
        seen = state.get("files", {})
        current = monitoring.label_file_state(project.paths)
        # Any file whose name or signature is new, whatever day it holds and in whatever order
        # it lands; days not fully scored yet are remembered in the cursor, never dropped.
        new = sorted(n for n, sig in current.items() if seen.get(n) != sig)
        before = [datetime.strptime(k, "%Y-%m-%d").replace(tzinfo=UTC)
                  for k in state.get("waiting", [])]
        days, waiting = monitoring.affected_days(project.paths, spec, new, before)
        cursor = json.dumps({"files": current, "waiting": [day_key(d) for d in waiting]},
                            sort_keys=True)
        if not days:
            reason = "no new or changed raw_labels partitions" if not new else (
                f"{len(new)} new or changed label file(s) touch no fully scored day")
            if waiting:
                reason += (f"; {len(waiting)} labeled day(s) wait for complete batch_scores "
                           f"({day_key(waiting[0])}..{day_key(waiting[-1])})")
            if cursor == context.cursor:
                return dg.SkipReason(reason)
            return dg.SensorResult(skip_reason=reason, cursor=cursor)
        # Same files and days -> same run keys, so a re-evaluated tick never launches twice.
        key = hashlib.sha256(json.dumps([[[n, current[n]] for n in new],
                                         [day_key(d) for d in days]]).encode()).hexdigest()[:16]
        requests = [dg.RunRequest(run_key=f"labels-{key}-{day_key(a)}..{day_key(b)}",
                                  tags=range_tags(day_key(a), day_key(b)))
                    for a, b in monitoring.contiguous_ranges(days)]
        return dg.SensorResult(run_requests=requests, cursor=cursor)

    @dg.sensor(minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING,
               description="Writes a structured alert record for every failed check (business "
                           "vs diagnostic vs pipeline, warn vs error) and calls the alert "
                           f"hooks (${alerts.WEBHOOK_ENV} posts to a webhook).")
    def check_alert_sensor(context: dg.SensorEvaluationContext, project: dg.ResourceParam[Workspace]):
        after = json.loads(context.cursor)["after_id"] if context.cursor else 0
        records = sorted((r for key in context.repository_def.asset_graph.asset_check_keys
                          for r in _executions_after(context.instance, key, after)),
                         key=lambda r: r.id)
        directory, hooks = alerts.alerts_dir(project.paths.root), alerts.configured_hooks()
        # The cursor is a low-water mark: every execution at or below it is final and alerted.
        # Ids are given when a check is planned, not when it fails, so a running check holds
        # the mark (it may still fail) while failures above it are alerted now; the alert id
        # makes a failure seen again on a later tick write nothing and call no hook.
        mark, running, written, waiting = after, 0, 0, 0
        # One run lookup per run, not per record: a range run plans a check once per
        # partition, and Dagster plans an unpartitioned check of a partitioned run once per
        # partition too (rows its one evaluation never updates): 1,194 lookups, 9 s, in a demo.
        live = {run_id: _running(context, run_id) for run_id in {
            r.run_id for r in records if r.status == AssetCheckExecutionRecordStatus.PLANNED}}
        for r in records:
            if r.status == AssetCheckExecutionRecordStatus.PLANNED and live[r.run_id]:
                running += 1
                continue
            if r.status == AssetCheckExecutionRecordStatus.FAILED and r.event is not None:
                if written == ALERTS_PER_TICK:  # the rest wait for the next tick, in id order
                    waiting += 1
                    continue
                if _alert(context, directory, hooks, r):
                    written += 1
            if not running and not waiting:
                mark = r.id
        cursor = json.dumps({"after_id": mark})
        if not written:
            reason = "no new failed checks" + (f"; {running} check execution(s) still running"
                                               if running else "")
            if mark == after:
                return dg.SkipReason(reason)
            return dg.SensorResult(cursor=cursor, skip_reason=reason)
        context.log.info(f"wrote {written} alert(s); {waiting} failed check(s) wait for the "
                         f"next tick; {running} check execution(s) still running")
        return dg.SensorResult(cursor=cursor)

    return ([monitoring_job, label_job], [daily_monitoring_schedule],
            [label_arrival_sensor, check_alert_sensor])


ALERTS_PER_TICK = 100  # a backlog is alerted over several ticks, oldest first


def _executions_after(instance: dg.DagsterInstance, key: dg.AssetCheckKey, after: int) -> list:
    """Every execution record of ``key`` with an id above ``after``, paging newest first (one
    page is never the whole backlog)."""
    storage, out, page_end = instance.event_log_storage, [], None
    while True:
        page = storage.get_asset_check_execution_history(key, limit=ALERTS_PER_TICK,
                                                         cursor=page_end)
        out += [r for r in page if r.id > after]
        if len(page) < ALERTS_PER_TICK or page[-1].id <= after:
            return out
        page_end = page[-1].id


def _running(context: dg.SensorEvaluationContext, run_id: str) -> bool:
    run = context.instance.get_run_by_id(run_id) if run_id else None
    return run is not None and not run.is_finished


def _alert(context: dg.SensorEvaluationContext, directory, hooks, r) -> bool:
    """Write the alert record of one failed execution and call the hooks; False when the
    record was already written (seen on an earlier tick)."""
    ev = r.event.dagster_event.event_specific_data
    alert = alerts.make_alert(
        r.key.asset_key.to_user_string(), r.key.name, ev.severity.value.lower(),
        bool(ev.blocking), ev.description or "", r.run_id, r.partition,
        datetime.fromtimestamp(r.create_timestamp, UTC).isoformat(),
        {k: getattr(v, "value", v) for k, v in ev.metadata.items()
         if isinstance(getattr(v, "value", v), int | float | str)}, r.id)
    if not alerts.write_alert(directory, alert):
        return False
    for hook in hooks:
        try:
            hook(alert)
        except Exception as exc:  # the record is kept; delivery is retried by ops
            context.log.warning(f"alert hook failed for {alert.alert_id}: {exc}")
    return True
