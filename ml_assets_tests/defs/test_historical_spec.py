"""A historical dataset (spec ``end``, issue 16 item 6): partitions stop at the end, the
clock-following schedules and sensors start STOPPED and skip past the end if turned on,
freshness is judged at the end, and ``ml-assets run`` refuses a range past it."""

import argparse
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import dagster as dg
import pandas as pd
import pytest

from ml_assets.cli.runs import cmd_run
from ml_assets.cli.status_report import lake_partitions, status
from ml_assets.definitions import build_definitions
from ml_assets.defs.freshness import (
    DAILY_EVENTS_FRESHNESS,
    HOURLY_FRESHNESS,
    event_freshness,
    judged_at,
)
from ml_assets.defs.partitions import (
    daily,
    event_key,
    event_partitions,
    hourly,
    lookback_partitions,
)
from ml_assets.lib.core.catalog import RAW_EVENTS, Catalog
from ml_assets.lib.core.workspace import Workspace
from ml_assets.lib.features.definitions import WindowAgg
from ml_assets.specs.fraud import FRAUD_SPEC

START = datetime(2013, 1, 1, tzinfo=UTC)
END = datetime(2013, 1, 11, tzinfo=UTC)
HISTORICAL = replace(FRAUD_SPEC, start=START, end=END)
LIVE = replace(FRAUD_SPEC, start=START)
# follow the clock: nothing to do once nothing more lands
CLOCK_FOLLOWING = {"hourly_scoring_schedule", "daily_labels_schedule",
                   "daily_monitoring_schedule", "nightly_training_schedule",
                   "label_arrival_sensor", "microbatch_landing_sensor"}


@pytest.fixture(scope="module")
def defs(tmp_path_factory) -> dg.Definitions:
    return build_definitions(HISTORICAL, str(tmp_path_factory.mktemp("historical")))


def test_partitions_run_from_start_to_end_not_to_now():
    assert len(hourly(HISTORICAL).get_partition_keys()) == 10 * 24
    assert daily(HISTORICAL).get_partition_keys()[-1] == "2013-01-10"
    assert hourly(HISTORICAL).get_last_partition_key() == "2013-01-10-23:00"
    assert len(daily(LIVE).get_partition_keys()) > 4_000  # a live one runs to now


def test_clock_following_automation_starts_stopped(defs, tmp_path):
    repo = defs.get_repository_def()
    status = {d.name: d.default_status.value
              for d in [*repo.schedule_defs, *repo.sensor_defs]}
    assert {n for n in CLOCK_FOLLOWING if status[n] == "STOPPED"} == CLOCK_FOLLOWING
    # alerts on failed checks, the drill's safety net and the documents' refresh follow the
    # control plane, not the clock
    assert (status["check_alert_sensor"] == status["drill_lease_sensor"]
            == status["docs_refresh_sensor"] == "RUNNING")
    live = build_definitions(LIVE, str(tmp_path))
    live_repo = live.get_repository_def()
    assert {d.default_status.value for d in [*live_repo.schedule_defs, *live_repo.sensor_defs]
            if d.name in CLOCK_FOLLOWING} == {"RUNNING"}


@pytest.mark.parametrize("name", sorted(n for n in CLOCK_FOLLOWING if "schedule" in n))
def test_a_schedule_turned_on_skips_past_the_end(defs, name):
    schedule = defs.get_repository_def().get_schedule_def(name)
    past = END + timedelta(days=3)
    with dg.build_schedule_context(resources=defs.resources,
                                   scheduled_execution_time=past) as ctx:
        tick = schedule.evaluate_tick(ctx)
    assert not tick.run_requests
    assert tick.skip_message.startswith("card_fraud is a historical dataset (ends at "
                                        "2013-01-11T00:00:00+00:00)")


def test_a_tick_before_the_end_still_runs_as_usual(defs):
    """A replayed tick of a period before the end is not the dataset being over."""
    schedule = defs.get_repository_def().get_schedule_def("hourly_scoring_schedule")
    with dg.build_schedule_context(resources=defs.resources,
                                   scheduled_execution_time=END - timedelta(hours=2)) as ctx:
        tick = schedule.evaluate_tick(ctx)
    assert "waiting" in tick.skip_message and "historical" not in tick.skip_message


@pytest.mark.parametrize("name", sorted(n for n in CLOCK_FOLLOWING if "sensor" in n))
def test_a_sensor_turned_on_skips_past_the_end(defs, name):
    sensor = defs.get_repository_def().get_sensor_def(name)
    with dg.build_sensor_context(resources=defs.resources, definitions=defs) as ctx:
        tick = sensor.evaluate_tick(ctx)
    assert not tick.run_requests and "is a historical dataset" in tick.skip_message


def test_freshness_is_judged_at_the_end(defs, tmp_path):
    now = datetime(2026, 11, 30, 12, tzinfo=UTC)
    assert judged_at(HISTORICAL, now) == END
    assert judged_at(HISTORICAL, END - timedelta(hours=5)) == END - timedelta(hours=5)
    assert judged_at(LIVE, now) == now
    # no freshness policy judges it against now: nothing lands after the end
    assert _policies(defs) == {None}
    assert len(_policies(build_definitions(LIVE, str(tmp_path)))) > 1
    # a lake complete to the end is not behind, however late it is now
    ws = Workspace.open(tmp_path / "w", HISTORICAL)
    table = Catalog(ws.paths.lake).table(RAW_EVENTS)
    table.write(END - timedelta(hours=1), pd.DataFrame({"event_id": ["e1"]}))
    assert lake_partitions(ws.catalog, judged_at(HISTORICAL, now))[RAW_EVENTS]["behind"] == 0
    assert lake_partitions(ws.catalog, now)[RAW_EVENTS]["behind"] > 0
    report = status(ws, defs)
    assert report["end"] == "2013-01-11T00:00:00+00:00" == report["freshness_judged_at"]
    assert report["lake"][RAW_EVENTS]["behind"] == 0


def _policies(defs: dg.Definitions) -> set:
    return {spec.freshness_policy for a in defs.get_repository_def().assets_defs_by_key.values()
            for spec in a.specs}


def test_run_refuses_a_range_past_the_end(tmp_path, capsys):
    args = argparse.Namespace(steps=["features", "ingest"], date_from=END - timedelta(days=1),
                              date_to=END + timedelta(days=1), json=False)
    assert cmd_run(args, Workspace.open(tmp_path / "w", HISTORICAL)) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "has no partition 2013-01-11-23:00" in err
    assert "2013-01-01-00:00 .. 2013-01-10-23:00" in err


def test_a_daily_grain_spec_partitions_maps_and_schedules_its_events_by_day(tmp_path):
    """``partition_grain = "daily"``: the event-side assets and checks take daily partitions,
    event_features looks back whole days of raw_events, and the scoring job and schedule are
    the daily ones (00:15 UTC), STOPPED and skipping past the end like the hourly one."""
    spec = replace(HISTORICAL, partition_grain="daily")
    defs = build_definitions(spec, str(tmp_path))
    repo = defs.get_repository_def()
    assert event_partitions(spec).get_partition_keys()[::9] == ["2013-01-01", "2013-01-10"]
    assert event_key(spec, END) == "2013-01-11" and event_key(HISTORICAL, END) == "2013-01-11-00:00"
    for asset in ("raw_events", "event_features", "batch_scores"):
        assert repo.assets_defs_by_key[dg.AssetKey(asset)].partitions_def == daily(spec)
    features = repo.assets_defs_by_key[dg.AssetKey("event_features")]
    mapping = features.get_partition_mapping(dg.AssetKey("raw_events"))
    assert spec.lookback == timedelta(days=30) and mapping.start_offset == -30
    assert lookback_partitions(HISTORICAL, timedelta(hours=1)) == 720
    short = replace(spec, features=(WindowAgg("n_90m", "card_id", "count", "90m"),))
    assert [lookback_partitions(short, timedelta(days=1)),
            lookback_partitions(short, timedelta(hours=1))] == [1, 2]  # part-periods read whole
    # a live daily dataset warns after a missed daily run, fails after two
    assert event_freshness(replace(LIVE, partition_grain="daily")) == DAILY_EVENTS_FRESHNESS
    assert DAILY_EVENTS_FRESHNESS.warn_window.to_timedelta() == timedelta(days=1, minutes=20)
    assert event_freshness(spec) is None and event_freshness(LIVE) == HOURLY_FRESHNESS
    schedules = {s.name: s for s in repo.schedule_defs}
    assert "hourly_scoring_schedule" not in schedules and "hourly_scoring_job" not in {
        j.name for j in repo.get_all_jobs()}
    daily_tick = schedules["daily_scoring_schedule"]
    assert (daily_tick.cron_schedule, daily_tick.default_status.value) == ("15 0 * * *", "STOPPED")

    def skip(at: datetime) -> str:
        with dg.build_schedule_context(resources=defs.resources,
                                       scheduled_execution_time=at) as ctx:
            return daily_tick.evaluate_tick(ctx).skip_message

    # the last day's tick (00:15 after it) still runs as usual; the next one is past the end
    assert skip(END + timedelta(minutes=15)).startswith(
        "waiting: 2013-01-10: no landing file (events/2013-01-10.parquet)")
    assert skip(END + timedelta(days=1, minutes=15)).startswith(
        "card_fraud is a historical dataset (ends at 2013-01-11T00:00:00+00:00): nothing lands "
        "for 2013-01-11")
