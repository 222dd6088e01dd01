"""Issue 16 item 3 through the real definitions: raw_events over a range of hours from daily
landing files with gaps (days with no data have no file), both completeness rules, a bad row
of a daily file quarantined once, the hourly schedule on a daily-file landing, and a file
landing after its hours were ingested as empty, or a part after its day was ingested (a late
delivery: reported, then rerun)."""

from datetime import timedelta

import dagster as dg
import pandas as pd

from ml_assets.cli.status_report import status
from ml_assets.definitions import build_definitions
from ml_assets.defs.partitions import RANGE_END_TAG, RANGE_START_TAG, hour_key, range_tags
from ml_assets.lib.core.catalog import QUARANTINE_FILES, RAW_EVENTS, Catalog
from ml_assets.lib.core.paths import DataPaths
from ml_assets.lib.core.registry import Registry
from ml_assets.lib.core.workspace import Workspace
from ml_assets.lib.ingest.integrity import late_files
from ml_assets.lib.ingest.landing import ingest_events
from ml_assets.lib.ingest.quarantine import read_quarantine
from ml_assets.scenarios.runner import step_failure_message
from ml_assets_tests.fixtures.dagster_contexts import call_schedule
from ml_assets_tests.fixtures.reliability_world import NOW, good_events, spec_with
from ml_assets_tests.lib.ingest.test_landing_layout import D1, D2, D3, D4, HOUR, hours_of, land_day

JOB = "raw_events_only"


def _world(tmp_path, completeness: str = "later_file", grain: str = "hourly"):
    """Daily event files for days 1 and 3 (day 2 had no data), one bad row at 07:30 on day 1;
    the spec's event partitions of ``grain``."""
    paths = DataPaths(tmp_path).ensure()
    df = land_day(paths, D1, 1)
    df.loc[15, "amount"] = -5.0
    df.to_parquet(paths.landing / "events" / "2026-07-01.parquet", index=False)
    land_day(paths, D3, 1000)
    spec = spec_with(start=D1, landing_completeness=completeness, partition_grain=grain)
    defs = dg.Definitions.merge(build_definitions(spec, str(paths.root)), dg.Definitions(
        jobs=[dg.define_asset_job(JOB, selection=dg.AssetSelection.assets(RAW_EVENTS))]))
    return paths, spec, defs, dg.DagsterInstance.ephemeral()


def _run(defs, instance, first, last=None, key=hour_key):
    tags = range_tags(key(first), key(last)) if last else {"dagster/partition": key(first)}
    return defs.resolve_job_def(JOB).execute_in_process(instance=instance, tags=tags,
                                                        raise_on_error=False)


def _failure(result) -> str:
    [message] = [step_failure_message(e) for e in result.all_events if e.is_step_failure]
    return message


def _rows(paths: DataPaths, starts, table=None) -> list[int]:
    table = table or Catalog(paths.lake).table(RAW_EVENTS)
    return [len(pd.read_parquet(table.path(s))) for s in starts]


def test_a_range_over_daily_files_with_a_gap_runs_and_the_day_after_the_last_file_waits(tmp_path):
    paths, _, defs, instance = _world(tmp_path)
    assert _run(defs, instance, D1, D3 + 23 * HOUR).success
    assert _rows(paths, hours_of(D2)) == [0] * 24  # the gap: empty partitions
    assert _rows(paths, hours_of(D1)) == [2] * 7 + [1] + [2] * 16
    # the append-only ledger holds each daily file once, and only files that landed
    assert sorted(Registry(paths.control_db).landing_checksums()) == [
        "landing/events/2026-07-01.parquet", "landing/events/2026-07-03.parquet"]
    # the same bad row again through two hourly runs: still quarantined once (alone, hour 07
    # is 1 bad row of 2 and fails its contract check; its raw_events step still ran)
    for hour in (D1 + 7 * HOUR, D1 + 8 * HOUR):
        result = _run(defs, instance, hour)
        assert result.is_node_success("raw_events")
    assert list(read_quarantine(paths)["row"]) == [15]

    result = _run(defs, instance, D4, D4 + 5 * HOUR)
    assert not result.success
    message = _failure(result)
    assert "\n" not in message and message.endswith(
        "2026-07-04T00: no landing file (events/2026-07-04T00.parquet or "
        "events/2026-07-04.parquet) and not complete yet: completeness 'later_file' waits for "
        "a file of a later period (and 5 later partition(s))")


def test_marker_mode_refuses_the_gap_until_success_says_it_is_complete(tmp_path):
    paths, _, defs, instance = _world(tmp_path, "marker")
    result = _run(defs, instance, D2, D2 + 23 * HOUR)
    assert not result.success and "2026-07-02T00: no landing file" in _failure(result)
    (paths.landing / "events" / "_SUCCESS").write_text("2026-07-03T00:00:00Z")
    assert _run(defs, instance, D2, D2 + 23 * HOUR).success
    assert _rows(paths, hours_of(D2)) == [0] * 24


def test_the_hourly_schedule_runs_a_daily_file_once_it_lands_and_says_what_it_waits_for(tmp_path):
    paths, spec, defs, instance = _world(tmp_path)
    (paths.landing / "events" / "2026-07-03.parquet").unlink()
    schedule = defs.get_schedule_def("hourly_scoring_schedule")

    def tick(hour):
        return call_schedule(schedule, instance=instance, resources=defs.resources,
                             scheduled_execution_time=hour + HOUR + timedelta(minutes=15))

    # day 1's file landed late: the tick for 04:00 on day 2 runs all of day 1 in one run
    request = tick(D2 + 4 * HOUR)
    assert isinstance(request, dg.RunRequest) and request.run_key == (
        f"{hour_key(D1)}...{hour_key(D1 + 23 * HOUR)}")
    assert (request.tags[RANGE_START_TAG], request.tags[RANGE_END_TAG]) == (
        hour_key(D1), hour_key(D1 + 23 * HOUR))
    valid, _ = ingest_events(paths, spec, hours_of(D1), NOW)
    for h, part in valid.items():
        Catalog(paths.lake).table(RAW_EVENTS).write(h, part)
    skip = tick(D2 + 4 * HOUR)
    assert isinstance(skip, dg.SkipReason) and skip.skip_message == (
        "waiting: 2026-07-02T04: no landing file (events/2026-07-02T04.parquet or "
        "events/2026-07-02.parquet) and not complete yet: completeness 'later_file' waits for "
        "a file of a later period")
    land_day(paths, D3, 1000)  # day 2 is complete and empty now: its hours run one by one
    requests = tick(D2 + 4 * HOUR)
    assert [r.partition_key for r in requests] == [hour_key(D2 + i * HOUR) for i in range(5)]



def test_a_daily_grain_spec_ingests_and_schedules_its_events_by_day(tmp_path):
    """Daily partitions: one per landing file, a range run over days, the bad row quarantined
    under its day; the same events landed as hourly files give the same rows, and an hour
    landing after its day was ingested reruns the day; the daily schedule (00:15 UTC) runs
    each landed day, says what it waits for and that a day already ingested has nothing new."""
    paths, spec, defs, instance = _world(tmp_path, grain="daily")
    table = Workspace.open(paths.root, spec).catalog.table(RAW_EVENTS)
    schedule = defs.get_schedule_def("daily_scoring_schedule")

    def tick(day):
        return call_schedule(schedule, instance=instance, resources=defs.resources,
                             scheduled_execution_time=day + timedelta(days=1, minutes=15))

    assert _run(defs, instance, D1, D3, key=table.key).success
    assert _rows(paths, [D1, D2, D3], table) == [47, 0, 48]
    assert list(read_quarantine(paths)["row"]) == [15]
    assert [f.name for f in Catalog(paths.lake).table(QUARANTINE_FILES).files()] == [
        "2026-07-01.parquet"]
    # the same events landed as hourly files instead (hours without events have none): the
    # range run reads each day from its hours and writes the same rows
    by_day = {d: table.read(d) for d in (D1, D3)}
    for d in (D1, D3):
        daily_file = paths.landing / "events" / f"{d:%Y-%m-%d}.parquet"
        df = pd.read_parquet(daily_file)
        for hour, rows in df.groupby(df["event_ts"].dt.floor("h")):
            rows.to_parquet(paths.landing_events_file(hour.to_pydatetime()), index=False)
        daily_file.unlink()
        table.delete(d)
    assert _run(defs, instance, D1, D3, key=table.key).success
    for d, rows in by_day.items():
        pd.testing.assert_frame_equal(table.read(d), rows)
    hourly = sorted(f"landing/events/{p.name}" for p in (paths.landing / "events").glob("*T*"))
    assert len(hourly) == 48 and set(hourly) <= set(  # the ledger holds every hourly file
        Registry(paths.control_db).landing_checksums())
    # an hour of day 2 (ingested empty) landing now is late: the tick reruns its day
    late = paths.landing_events_file(D2 + 5 * HOUR)
    good_events(D2 + 5 * HOUR, 1, 5000).to_parquet(late, index=False)
    rerun = tick(D3)
    assert rerun.run_key.startswith("late:landing/events/2026-07-02T05.parquet:") and (
        rerun.partition_key == "2026-07-02")
    late.unlink()
    for day3 in (paths.landing / "events").glob("2026-07-03T*.parquet"):
        day3.unlink()
    table.delete(D2)
    table.delete(D3)
    skip = tick(D2)
    assert isinstance(skip, dg.SkipReason) and skip.skip_message.startswith(
        "waiting: 2026-07-02: no landing file"), skip.skip_message
    land_day(paths, D3, 1000)  # day 2 is complete (and empty) now
    request = tick(D2)
    assert isinstance(request, dg.RunRequest) and request.run_key == request.partition_key == (
        "2026-07-02")
    table.write(D2, table.read(D1).iloc[0:0])
    assert tick(D2).skip_message == "2026-07-02 is already ingested; nothing new landed"


def _append_only(result) -> list[dg.AssetCheckEvaluation]:
    return [e for e in result.get_asset_check_evaluations()
            if e.check_name == "landing_events_append_only"]


def test_a_late_file_fails_the_append_only_check_shows_in_status_and_the_schedule_reruns_it(
        tmp_path):
    paths, spec, defs, instance = _world(tmp_path)
    assert _run(defs, instance, D1, D3 + 23 * HOUR).success  # day 2 ingested as empty
    late = land_day(paths, D2, 500)  # then day 2's file arrives: a late delivery
    assert _rows(paths, hours_of(D2)) == [0] * 24
    # any later ingest run says so, on the partitions to reingest: day 2's, not its own
    checks = {c.partition: c for c in _append_only(_run(defs, instance, D3 + 5 * HOUR))}
    assert sorted(checks) == sorted([hour_key(D3 + 5 * HOUR), *map(hour_key, hours_of(D2))])
    assert checks.pop(hour_key(D3 + 5 * HOUR)).passed
    check = checks[hour_key(D2)]
    assert not any(c.passed for c in checks.values())
    expected = (  # no features built yet: nothing more to rebuild, nothing scored to redo
        "landing/events/2026-07-02.parquet landed after raw_events/2026-07-02T00 (and 23 more) "
        "was ingested without it (a late delivery): reingest it with `ml-assets run ingest "
        "features --from 2026-07-02 --to 2026-07-03`")
    assert not check.passed and check.description == expected
    assert check.metadata["late"].value == ["landing/events/2026-07-02.parquet"]
    report = status(Workspace.open(paths.root, spec), defs)
    assert [f["path"] for f in report["late_landing_files"]] == [
        "landing/events/2026-07-02.parquet"]
    assert _failing_append_only(instance) == list(map(hour_key, hours_of(D2)))  # as the UI shows
    # the hourly schedule's tick asks for a rerun of the file's hours, once per delivery
    [rerun] = _late_reruns(defs, instance)
    assert rerun.run_key.split(":")[1] == "landing/events/2026-07-02.parquet"
    assert (rerun.tags[RANGE_START_TAG], rerun.tags[RANGE_END_TAG]) == (
        hour_key(D2), hour_key(D2 + 23 * HOUR))
    result = defs.resolve_job_def(JOB).execute_in_process(instance=instance, tags=rerun.tags)
    assert _rows(paths, hours_of(D2)) == [2] * 24 and len(late) == 48
    assert [c.passed for c in _append_only(result)] == [True] * 24
    assert late_files(paths, Registry(paths.control_db), spec) == []
    assert _failing_append_only(instance) == []  # the rerun of its day cleared the verdicts
    # a second export's part of day 2 (ml-assets land) is a delivery of its own: late again
    part = paths.landing / "events" / "2026-07-02" / "part-x.parquet"
    part.parent.mkdir()
    good_events(D2 + 3 * HOUR, 2, 600).to_parquet(part, index=False)
    [rerun] = _late_reruns(defs, instance)
    assert rerun.run_key.split(":")[1] == "landing/events/2026-07-02/part-x.parquet"
    defs.resolve_job_def(JOB).execute_in_process(instance=instance, tags=rerun.tags)
    assert _rows(paths, [D2 + 2 * HOUR, D2 + 3 * HOUR]) == [2, 4]
    assert late_files(paths, Registry(paths.control_db), spec) == []


def _failing_append_only(instance) -> list[str]:
    """Partitions whose latest append-only evaluation failed (Dagster's per-partition state)."""
    from dagster._core.storage.asset_check_execution_record import (
        AssetCheckExecutionRecordStatus as Status,
    )
    key = dg.AssetCheckKey(dg.AssetKey(RAW_EVENTS), "landing_events_append_only")
    return sorted(i.partition_key for i in instance.event_log_storage
                  .get_asset_check_partition_info([key])
                  if i.latest_execution_status == Status.FAILED)


def _late_reruns(defs, instance) -> list[dg.RunRequest]:
    """The late-file reruns the hourly schedule's tick (day 4, 01:15) asks for."""
    tick = call_schedule(defs.get_schedule_def("hourly_scoring_schedule"), instance=instance,
                         scheduled_execution_time=D4 + HOUR + timedelta(minutes=15),
                         resources=defs.resources)
    return [r for r in (tick if isinstance(tick, list) else [tick])
            if r.run_key.startswith("late:")]
