"""What a person sees in the UI after the demo (issue 20), read from the instance the UI reads
on a small world the demo's pipeline built, its challenger shadowed for the days it has then
promoted (the default demo rolls it out stage by stage instead), placed on the calendar as the
demo places it: named runs, every asset materialized, the rollback drill passed and shown in
the runbook, sensors that continue from the demo, data that ends at the hour it ran, quiet
DuckDB connections."""

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from ml_assets.definitions import build_definitions
from ml_assets.defs.partitions import event_key
from ml_assets.lib.core import lake
from ml_assets.lib.docs.documents import document_dir
from ml_assets.scenarios.demo import STEP_TAG
from ml_assets.scenarios.runner import open_instance
from ml_assets.scenarios.sensor_state import stored_cursor, tick
from ml_assets.scenarios.ui_origin import sensor_origin
from ml_assets_tests.conftest import small_pipeline_world


@pytest.fixture(scope="module")
def demo_world(tmp_path_factory):
    """Placed on the calendar as ``ml-assets demo`` places it: the data ends at this hour."""
    return small_pipeline_world(tmp_path_factory.mktemp("demo_world"), challenger_at=0.9,
                                now=datetime.now(UTC))


@pytest.fixture(scope="module")
def instance(demo_world):
    with open_instance(demo_world["paths"]) as inst:
        yield inst


def test_every_demo_run_is_a_named_job_tagged_with_its_step(instance, demo_world):
    runs = instance.get_runs()
    jobs = {j.name for j in build_definitions(demo_world["spec"], str(demo_world["paths"].root))
            .get_repository_def().get_all_jobs()}
    assert runs
    assert not [r.job_name for r in runs if r.job_name not in jobs or r.job_name.startswith("__")]
    # the Overview timeline shows a run only with the origin of its job in the UI's location
    origins = {(r.remote_job_origin.location_name, r.remote_job_origin.job_name) for r in runs
               if r.remote_job_origin}
    location = sensor_origin("any").repository_origin.code_location_origin.location_name
    assert origins == {(location, r.job_name) for r in runs}
    steps = {r.tags.get(STEP_TAG) for r in runs}
    assert {"ingest", "features", "train", "score", "monitor", "shadow", "rollout", "drill",
            "microbatch", "docs"} <= steps
    assert None not in steps


def test_every_asset_is_materialized(instance, demo_world):
    defs = build_definitions(demo_world["spec"], str(demo_world["paths"].root))
    keys = [k for a in defs.assets for k in a.keys]
    assert len(keys) >= 24
    never = [k.to_user_string() for k in keys
             if instance.get_latest_materialization_event(k) is None]
    assert never == []


def test_the_rollback_drill_passed_and_the_runbook_shows_it(instance, demo_world):
    checks = [dg.AssetCheckKey(dg.AssetKey("rollback_drills"), name)
              for name in ("drill_recency", "rollback_readiness")]
    latest = instance.event_log_storage.get_latest_asset_check_execution_by_key(checks)
    assert {k.name: r.status.value for k, r in latest.items()} == {
        "drill_recency": "SUCCEEDED", "rollback_readiness": "SUCCEEDED"}
    champion = demo_world["report"].aliases["champion"]
    runbook = (document_dir(demo_world["paths"], demo_world["spec"], champion)
               / "rollback_runbook.md").read_text()
    assert "PASSED" in runbook and "no rollback drill recorded" not in runbook


def test_lake_connections_draw_no_progress_bar():
    con = lake.connect()
    assert con.execute("SELECT current_setting('enable_progress_bar')").fetchone()[0] is False


def test_a_sensor_tick_right_after_the_demo_requests_nothing(instance, demo_world):
    defs = build_definitions(demo_world["spec"], str(demo_world["paths"].root))
    cursors = {s.name: stored_cursor(instance, sensor_origin(s.name)) for s in defs.sensors}
    assert cursors["label_arrival_sensor"] and cursors["docs_refresh_sensor"]
    requested = {s.name: tick(defs, instance, s, cursors[s.name]).run_requests
                 for s in defs.sensors}
    assert {name: r for name, r in requested.items() if r} == {}


def test_the_data_ends_at_the_hour_the_demo_ran_and_every_entry_point_starts_it_there(
        demo_world, instance):
    # what `make ui` loads (workspace.yaml -> build_definitions()) for this data directory
    paths, end = demo_world["paths"], demo_world["end"]
    recorded = json.loads((paths.root / "demo.json").read_text())
    defs = build_definitions(data_dir=str(paths.root))
    spec = demo_world["spec"]
    first_key = defs.get_assets_def("raw_events").partitions_def.get_first_partition_key()
    assert first_key == event_key(spec, datetime.fromisoformat(recorded["start"]))
    newest = instance.get_latest_materialization_event(dg.AssetKey("raw_events"))
    assert newest.dagster_event.partition == event_key(spec, end - timedelta(hours=1))
    # the CLI, in its own process, sees the same spec and fresh tables
    before = datetime.now(UTC)
    out = subprocess.run(
        [sys.executable, "-m", "ml_assets.cli.main", "status", "--json"], check=True,
        capture_output=True, text=True, env={**os.environ, "ML_ASSETS_DATA_DIR": str(paths.root)})
    status = json.loads(out.stdout)
    assert status["start"] == recorded["start"]
    assert status["spec_ref"] == f"ml_assets.specs.fraud:FRAUD_SPEC@{recorded['start'][:10]}"
    # whole hours since the data's end, read around the call (it may cross an hour)
    since = {(t - end) // timedelta(hours=1) for t in (before, datetime.now(UTC))}
    assert status["lake"]["raw_events"]["behind"] in since
    assert status["lake"]["batch_scores"]["behind"] in since
