"""Microbatch: landed files are batched 100-1000 rows, scored with the same features and
versions as the hourly batch (identical scores), written atomically, latency recorded."""

import json
from datetime import UTC, datetime, timedelta

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from ml_assets.definitions import build_definitions
from ml_assets.lib.core.catalog import Catalog
from ml_assets.lib.core.lake import read_parquet_files
from ml_assets.lib.core.registry import Registry
from ml_assets.lib.core.workspace import Workspace
from ml_assets.lib.scoring import microbatch as mb
from ml_assets.lib.serving.read_path import ScoringService
from ml_assets_tests.fixtures.serving_world import CFG, SPEC, world_copy

NOW = datetime(2026, 9, 1, tzinfo=UTC)


def _files(sizes, start_ns=1_000, step_ns=1_000):
    return [mb.Landed(f"f{i:03d}.parquet", n, start_ns + i * step_ns) for i, n in enumerate(sizes)]


def test_batches_hold_100_to_1000_rows_and_the_cursor_advances():
    fresh = int(NOW.timestamp() * 1e9)  # just landed
    pending = _files([500] * 4 + [40], start_ns=fresh - 1_000)
    batches, cursor = mb.plan_batches(pending, None, NOW)
    rows = {f.name: f.rows for f in pending}
    assert [sum(rows[n] for n in b) for b in batches] == [1000, 1000]
    assert sorted(cursor) == [f.name for f in pending[:4]]  # the 40-row file waits
    again, same = mb.plan_batches(pending, cursor, NOW)
    assert again == [] and same == cursor
    later, _ = mb.plan_batches(pending, cursor, NOW + timedelta(minutes=3))
    assert later == [["f004.parquet"]]  # waited long enough: a small batch goes
    more = [*pending, mb.Landed("g.parquet", 70, fresh + 10_000)]
    grown, _ = mb.plan_batches(more, cursor, NOW)
    assert grown == [["f004.parquet", "g.parquet"]]  # 40 + 70 rows reach the minimum


def test_a_file_over_1000_rows_is_its_own_batch():
    old = 1_000  # landed long ago
    batches, _ = mb.plan_batches(_files([50, 2500, 80], start_ns=old), None, NOW)
    assert batches == [["f000.parquet"], ["f001.parquet"], ["f002.parquet"]]


@pytest.fixture(scope="module")
def landed(tmp_path_factory):
    """The last day's events are not in the hourly lake yet; they land as microbatch files."""
    paths = world_copy(tmp_path_factory.mktemp("micro") / "w")
    day = CFG.end - timedelta(days=1)
    files, _ = Catalog(paths.lake).table("raw_events").coverage(day, CFG.end)
    events = read_parquet_files(files)
    batch_scores = read_parquet_files(Catalog(paths.lake).table("batch_scores").files(day, CFG.end))
    for f in files:
        f.unlink()
    ordered = events.sort_values("event_ts").reset_index(drop=True)
    for i, lo in enumerate(range(0, len(ordered), len(ordered) // 3 + 1)):
        mb.land_events(paths, ordered.iloc[lo:lo + len(ordered) // 3 + 1], f"part-{i}")
    bad = events.iloc[:1].assign(event_id=999_999_999, amount=-1.0)
    mb.land_events(paths, bad, "part-3")
    return paths, events, batch_scores


def test_sensor_requests_runs_and_the_asset_scores_exactly_like_the_batch(landed):
    paths, events, batch_scores = landed
    defs = build_definitions(SPEC, str(paths.root))
    sensor = defs.resolve_sensor_def("microbatch_landing_sensor")
    assert sensor.minimum_interval_seconds == 30
    with dg.build_sensor_context(resources=defs.resources, cursor=None) as ctx:
        requests = list(sensor(ctx))
        cursor = ctx.cursor
    assert requests and json.loads(cursor)
    instance = dg.DagsterInstance.ephemeral()
    job = defs.resolve_job_def("microbatch_scoring_job")
    stats = []
    for req in requests:
        files = req.run_config["ops"]["microbatch_scores"]["config"]["files"]
        rows = sum(len(pd.read_parquet(mb.landing_dir(paths) / f)) for f in files)
        assert rows <= 1000
        result = job.execute_in_process(run_config=req.run_config, instance=instance)
        assert result.success
        stats.append(result.asset_materializations_for_node("microbatch_scores")[0].metadata)
    assert sum(m["quarantined"].value for m in stats) == 1  # the negative amount
    assert all(m["landing_to_score_max_s"].value >= 0 for m in stats)

    scores = read_parquet_files(sorted((paths.lake / "microbatch_scores").glob("*.parquet")))
    assert set(scores["event_id"]) == set(events["event_id"])
    assert set(scores["model_version"]) == {"fraud-v1", "fraud-v2", "fraud-v3"}
    both = scores.merge(batch_scores, on=["event_id", "model_version"], suffixes=("_m", "_b"))
    assert len(both) == len(batch_scores)
    np.testing.assert_allclose(both["score_m"], both["score_b"], rtol=0, atol=1e-12)
    assert (scores["landing_to_score_s"] >= 0).all() and scores["landed_at"].notna().all()
    assert not list(mb.landing_dir(paths).glob("*.parquet"))  # all moved to done/
    assert not list((paths.lake / "microbatch_scores").glob(".*"))  # no temp files left

    with dg.build_sensor_context(resources=defs.resources, cursor=cursor) as ctx:
        assert isinstance(sensor(ctx), dg.SkipReason)  # nothing new: nothing requested

    # the microbatch scores are served by the lookup path
    service = ScoringService(Workspace(paths, SPEC)).start()
    try:
        hit = service.lookup(int(events["event_id"].iloc[-1]))
        assert hit["source"] == "microbatch" and hit["model_version"] == "fraud-v2"
    finally:
        service.close()


def test_new_score_files_are_swapped_in_without_a_restart(tmp_path):
    paths = world_copy(tmp_path / "w")
    service = ScoringService(Workspace(paths, SPEC)).start()
    try:
        before = service.index
        assert service.lookup(123_456_789) is None and not service.reload()
        last = sorted((paths.lake / "batch_scores").glob("*.parquet"))[-1]
        extra = pd.read_parquet(last).assign(event_id=lambda d: d["event_id"] + 123_000_000)
        extra.to_parquet(last.with_name("2026-12-31T23.parquet"), index=False)
        assert service.reload() and service.index is not before
        assert service.lookup(int(extra["event_id"].iloc[0]))["model_version"] == "fraud-v2"
        assert Registry(paths.control_db).aliases(SPEC.model_name)["champion"] == "fraud-v2"
    finally:
        service.close()
