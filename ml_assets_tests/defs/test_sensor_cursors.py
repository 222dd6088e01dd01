"""Every sensor's cursor under backlogs, restarts and out-of-order arrivals (issue 14, item 3):
nothing skipped, nothing done twice, and a skip message that says what is waiting."""

import json
import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from unittest.mock import patch

import dagster as dg
import pandas as pd
from dagster._core.events import AssetCheckEvaluationPlanned, DagsterEvent, DagsterEventType

from ml_assets.defs.monitoring.sensors import build_monitoring_automation
from ml_assets.defs.release.rollback import build_rollback_defs
from ml_assets.defs.scoring.microbatch import build_microbatch_defs
from ml_assets.lib.core.paths import DataPaths
from ml_assets.lib.core.workspace import Workspace
from ml_assets.lib.monitoring.alerts import read_alerts
from ml_assets.lib.scoring.microbatch import land_events
from ml_assets.specs.fraud import FRAUD_SPEC
from ml_assets_tests.fixtures.dagster_contexts import call_sensor


@dg.asset
def feed():
    return 1


@dg.asset_check(asset=feed)
def fresh():
    return dg.AssetCheckResult(passed=True)


def _alert_world(tmp_path, instance):
    sensor = build_monitoring_automation(FRAUD_SPEC)[2][1]
    defs = dg.Definitions(assets=[feed], asset_checks=[fresh], sensors=[sensor],
                          resources={"project": Workspace.open(tmp_path, FRAUD_SPEC)})
    return defs, sensor


def _fail(instance, n):
    for i in range(n):
        instance.report_runless_asset_event(dg.AssetCheckEvaluation(
            asset_key=dg.AssetKey("feed"), check_name="fresh", passed=False,
            description=f"stale #{i}", severity=dg.AssetCheckSeverity.WARN))


def _tick(defs, sensor, instance, cursor):
    """One tick in a fresh context (a daemon restart keeps only the stored cursor)."""
    return call_sensor(sensor, instance=instance, definitions=defs, cursor=cursor,
                       resources=defs.resources)


def _skipped(result) -> str | None:
    """The tick's skip message, or None when it did work."""
    if isinstance(result, dg.SkipReason):
        return result.skip_message
    return result.skip_reason.skip_message if result.skip_reason else None


def _cursor(result, before: str | None) -> str | None:
    """The cursor after a tick (a bare SkipReason keeps the one before)."""
    return before if isinstance(result, dg.SkipReason) else result.cursor


def test_alert_sensor_writes_a_150_failure_backlog_once_each_over_several_ticks(tmp_path):
    with dg.instance_for_test() as instance:
        defs, sensor = _alert_world(tmp_path, instance)
        _fail(instance, 150)  # a broken feed while the daemon was down
        cursor, ticks = None, 0
        while True:
            result = _tick(defs, sensor, instance, cursor)
            ticks += 1
            if _skipped(result):
                break
            cursor = result.cursor
            assert ticks < 10
        alerts = read_alerts(tmp_path / "alerts")
        assert len(alerts) == 150 and ticks == 3  # 100 + 50, then nothing new
        assert sorted(a["description"] for a in alerts) == sorted(f"stale #{i}"
                                                                  for i in range(150))
        assert _skipped(result) == "no new failed checks"
        _fail(instance, 1)  # later failures after a restart: exactly one more
        assert not _skipped(_tick(defs, sensor, instance, _cursor(result, cursor)))
        assert len(read_alerts(tmp_path / "alerts")) == 151


def test_a_check_planned_early_that_fails_late_is_still_alerted(tmp_path):
    """Execution ids are given when a check is planned: a long run's check (lower id) can fail
    after a later check (higher id) was alerted and the cursor moved past it."""
    with dg.instance_for_test() as instance:
        defs, sensor = _alert_world(tmp_path, instance)
        run = instance.add_run(dg.DagsterRun(job_name="long_job", run_id=str(uuid.uuid4()),
                                             status=dg.DagsterRunStatus.STARTED))
        instance.report_dagster_event(DagsterEvent(
            DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED.value, "long_job",
            event_specific_data=AssetCheckEvaluationPlanned(asset_key=dg.AssetKey("feed"),
                                                            check_name="fresh")),
            run.run_id)
        _fail(instance, 1)  # a quicker failure, id above the planned one
        first = _tick(defs, sensor, instance, None)
        assert len(read_alerts(tmp_path / "alerts")) == 1
        again = _tick(defs, sensor, instance, first.cursor)
        instance.report_dagster_event(DagsterEvent(
            DagsterEventType.ASSET_CHECK_EVALUATION.value, "long_job",
            event_specific_data=dg.AssetCheckEvaluation(
                asset_key=dg.AssetKey("feed"), check_name="fresh", passed=False,
                description="late failure")), run.run_id)
        late = _tick(defs, sensor, instance, _cursor(again, first.cursor))
        assert not _skipped(late)
        assert sorted(a["description"] for a in read_alerts(tmp_path / "alerts")) == [
            "late failure", "stale #0"]
        assert "1 check execution(s) still running" in _skipped(again)  # while it ran
        assert _skipped(_tick(defs, sensor, instance, _cursor(late, first.cursor)))


def test_a_finished_runs_planned_records_cost_one_run_lookup_per_tick(tmp_path):
    """Dagster plans an unpartitioned check of a partitioned run once per partition and only
    ever evaluates one of those records: a tick looks the run up once, not once per record."""
    with dg.instance_for_test() as instance:
        defs, sensor = _alert_world(tmp_path, instance)
        run = instance.add_run(dg.DagsterRun(job_name="range_job", run_id=str(uuid.uuid4()),
                                             status=dg.DagsterRunStatus.SUCCESS))
        for _ in range(40):
            instance.report_dagster_event(DagsterEvent(
                DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED.value, "range_job",
                event_specific_data=AssetCheckEvaluationPlanned(asset_key=dg.AssetKey("feed"),
                                                                check_name="fresh")),
                run.run_id)
        with patch.object(dg.DagsterInstance, "get_run_by_id", autospec=True,
                          side_effect=dg.DagsterInstance.get_run_by_id) as lookups:
            result = _tick(defs, sensor, instance, None)
        assert [c.args[1] for c in lookups.call_args_list] == [run.run_id]
        assert _skipped(result) == "no new failed checks"  # finished: nothing still running


def _micro_world(tmp_path):
    defs = dg.Definitions.merge(build_microbatch_defs(FRAUD_SPEC), dg.Definitions(
        resources={"project": Workspace.open(tmp_path, FRAUD_SPEC)}))
    return defs, defs.resolve_sensor_def("microbatch_landing_sensor")


def _micro_tick(defs, sensor, cursor):
    with dg.build_sensor_context(resources=defs.resources, cursor=cursor) as ctx:
        result = sensor(ctx)
        return (result if isinstance(result, dg.SkipReason) else list(result)), ctx.cursor


def _land(tmp_path, name, rows, age_s=0.0):
    path = land_events(DataPaths(tmp_path.resolve()), pd.DataFrame({"x": range(rows)}), name)
    if age_s:  # a copy that kept its original mtime
        os.utime(path, (time.time() - age_s,) * 2)
    return path


def _score(tmp_path, requests):
    """What the runs do to the landing folder: scored files move to done/."""
    folder = tmp_path / "landing" / "microbatch"
    (folder / "done").mkdir(exist_ok=True)
    for r in requests:
        for name in r.run_config["ops"]["microbatch_scores"]["config"]["files"]:
            os.replace(folder / name, folder / "done" / name)


def test_microbatch_sensor_never_skips_a_backlog_an_old_mtime_or_a_redelivery(tmp_path):
    defs, sensor = _micro_world(tmp_path)
    for i in range(30):  # a backlog of 3,000 rows while the daemon was down
        _land(tmp_path, f"b{i:02d}", 100)
    requests, cursor = _micro_tick(defs, sensor, None)
    files = [n for r in requests for n in r.run_config["ops"]["microbatch_scores"]["config"]["files"]]
    assert sorted(files) == [f"b{i:02d}.parquet" for i in range(30)] and len(requests) == 3
    skip, cursor = _micro_tick(defs, sensor, cursor)  # restart: the stored cursor only
    _score(tmp_path, requests)
    _land(tmp_path, "late", 50, age_s=3600)  # lands after the others with an hour-old mtime
    late, cursor = _micro_tick(defs, sensor, cursor)
    assert [r.run_config["ops"]["microbatch_scores"]["config"]["files"] for r in late] == [
        ["late.parquet"]]
    _score(tmp_path, late)
    _land(tmp_path, "late", 60, age_s=3600)  # re-delivered under the same name
    again, cursor = _micro_tick(defs, sensor, cursor)
    assert len(again) == 1 and again[0].run_key != late[0].run_key  # not deduplicated away
    assert json.loads(cursor) == {"late.parquet": [
        (tmp_path / "landing" / "microbatch" / "late.parquet").stat().st_mtime_ns, 60]}
    assert skip.skip_message.startswith("0 row(s) in 0 file(s) waiting")  # the restart tick
    assert "30 requested file(s) not scored yet" in skip.skip_message


def _label_tick(ws, sensor, cursor):
    with dg.build_sensor_context(resources={"project": ws}, cursor=cursor) as ctx:
        result = sensor(ctx)
    ranges = [] if isinstance(result, dg.SkipReason) else [
        (r.tags["dagster/asset_partition_range_start"], r.tags["dagster/asset_partition_range_end"])
        for r in result.run_requests]
    return result, ranges, _cursor(result, cursor)


def test_label_sensor_remembers_a_day_labeled_before_its_scores_and_takes_old_days_late(tmp_path):
    ws = Workspace.open(tmp_path, FRAUD_SPEC)
    sensor = build_monitoring_automation(FRAUD_SPEC)[2][0]
    day = [datetime(2026, 10, d, tzinfo=UTC) for d in range(1, 6)]
    scores, labels = ws.catalog.table("batch_scores"), ws.catalog.table("raw_labels")
    for d in day[:4]:  # day 4 is scored up to 19:00 only (a gap a backfill fills later)
        for h in range(24 if d != day[3] else 19):
            scores.write(d + timedelta(hours=h), pd.DataFrame({"x": [h]}))

    def land(file_day, event_days):
        labels.write(file_day, pd.DataFrame({FRAUD_SPEC.event_ts: [
            pd.Timestamp(d) + pd.Timedelta(hours=3) for d in event_days]}))

    land(day[4], [day[1], day[3]])
    _, ranges, cursor = _label_tick(ws, sensor, None)
    assert ranges == [("2026-10-02", "2026-10-02")]  # day 4 is not fully scored yet
    waiting, ranges, cursor = _label_tick(ws, sensor, cursor)  # a restart, the stored cursor
    assert ranges == []
    for h in range(19, 24):  # the backfill completes day 4: its labels are evaluated now
        scores.write(day[3] + timedelta(hours=h), pd.DataFrame({"x": [h]}))
    _, ranges, cursor = _label_tick(ws, sensor, cursor)
    assert ranges == [("2026-10-04", "2026-10-04")]
    land(day[2], [day[0]])  # an older day's file landing after newer ones
    _, ranges, cursor = _label_tick(ws, sensor, cursor)
    assert ranges == [("2026-10-01", "2026-10-01")]
    skip, ranges, _ = _label_tick(ws, sensor, cursor)
    assert ranges == [] and _skipped(skip) == "no new or changed raw_labels partitions"
    assert "1 labeled day(s) wait for complete batch_scores (2026-10-04..2026-10-04)" in _skipped(
        waiting)


def test_drill_lease_sensor_after_an_outage_reverts_a_long_expired_flip_exactly_once(tmp_path):
    """No cursor: the lease lives in the control plane, so the first tick after a daemon outage
    sees a flip that expired days ago, and ticks after it (or a restart) revert nothing twice."""
    ws = Workspace.open(tmp_path, FRAUD_SPEC)
    lease = {"kind": "rollback", "model_name": FRAUD_SPEC.model_name, "actor": "drill-bot",
             "pid": 1, "host": "h", "opened_at": "2026-01-01T00:00:00+00:00",
             "expires_at": "2026-01-01T00:05:00+00:00", "champion": "v2", "previous": "v1",
             "restore": {"kill_switch": "off"}}
    assert ws.registry.open_drill_flip(lease, {"kill_switch": "on"}, "drill-bot", "drill")
    defs = dg.Definitions.merge(build_rollback_defs(FRAUD_SPEC),
                                dg.Definitions(resources={"project": ws}))
    sensor = defs.resolve_sensor_def("drill_lease_sensor")
    messages = []
    for _ in range(3):  # each tick in a fresh context, as after a restart
        with dg.build_sensor_context(resources=defs.resources) as ctx:
            messages.append(sensor(ctx).skip_message)
    assert "reverted a dead drill's flip" in messages[0]
    assert messages[1:] == ["no drill flip open"] * 2
    assert ws.registry.get_setting("kill_switch") == "off"
    assert len(ws.registry.drills(FRAUD_SPEC.model_name, limit=10)) == 1
