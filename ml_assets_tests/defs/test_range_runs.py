"""Issue 14, item 2 (docs/reliability.md, rows P*): a run over a range of partitions gives every
partition what a run of that partition alone gives - outputs and check verdicts, partition by
partition - however many partitions the run covers."""

from datetime import timedelta

import dagster as dg
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ml_assets.definitions import build_definitions
from ml_assets.defs.partitions import day_key, hour_key, range_tags
from ml_assets.lib.core import lake
from ml_assets.lib.core.catalog import Catalog
from ml_assets.lib.core.paths import DataPaths
from ml_assets_tests.fixtures.reliability_world import copy_world, hours, shifted_hour

pytestmark = pytest.mark.slow

HOURLY_TABLES = ("raw_events", "event_features", "batch_scores")
PER_RUN = ["scored_at", "features_ref"]  # when and by which run a row was scored


def _landing(paths: DataPaths, end, dst, rows: int, offset: int) -> pd.DataFrame:
    """``rows`` events for hour ``dst``, copied from the world's last day (new ids)."""
    parts = [shifted_hour(paths, src, dst, offset + 1_000_000 * i)
             for i, src in enumerate(hours(end - timedelta(hours=24), 24))]
    return pd.concat(parts, ignore_index=True).head(rows)


def _run(paths: DataPaths, spec, job: str, **kwargs):
    defs = build_definitions(spec, str(paths.root))
    return defs.resolve_job_def(job).execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), raise_on_error=False, **kwargs)


def _verdicts(result) -> dict:
    """(check, partition) -> (passed, severity), from the evaluations the run recorded."""
    return {(e.check_name, e.partition): (e.passed, e.severity.value)
            for e in result.get_asset_check_evaluations()}


def _outputs(paths: DataPaths, keys: list[str]) -> dict:
    catalog, out = Catalog(paths.lake), {}
    for table in HOURLY_TABLES:
        for key in keys:
            path = catalog.table(table).path(key)
            out[table, key] = (pd.read_parquet(path).drop(columns=PER_RUN, errors="ignore")
                               if path.exists() else None)
    return out


@pytest.fixture
def two_worlds(fraud_world, tmp_path):
    """Two copies of the world with the same four new landing hours; the second of them holds
    the issue's broken hour: 24 rows, 7 with ``amount = -5`` (29.2% quarantined), while the
    whole range pools to 1.82% (7 of 384 rows), under the 2% limit."""
    end, spec = fraud_world["end"], fraud_world["spec"]
    worlds = [copy_world(fraud_world, tmp_path / name) for name in ("range", "single")]
    new = hours(end, 4)
    for paths in worlds:
        for i, h in enumerate(new):
            df = _landing(paths, end, h, 24 if i == 1 else 120, 10_000_000 * (i + 1))
            if i == 1:
                df.loc[df.index[:7], "amount"] = -5.0
            df.to_parquet(paths.landing_events_file(h), index=False)
    return worlds, spec, new


@pytest.mark.parametrize("chunk", [None, timedelta(hours=1)], ids=["one chunk", "hour chunks"])
def test_P01_a_range_run_gives_every_hour_the_verdict_and_output_of_its_own_run(
        two_worlds, chunk, monkeypatch):
    """One 4-hour run of ``hourly_scoring_job`` vs one run per hour: the broken hour fails
    ``event_contract`` at 29.2% in both (the pooled range passed at 1.82% and built its
    features before), has no features and no scores in both, and the three other hours have
    identical raw events, features, scores and check verdicts (every check, every hour) -
    also when the range run scores and judges its hours one chunk at a time, as a year's
    backfill does (``lake.range_chunks``)."""
    if chunk:
        monkeypatch.setattr(lake, "RANGE_CHUNK", chunk)
    (ranged, single), spec, new = two_worlds
    keys = [hour_key(h) for h in new]
    result = _run(ranged, spec, "hourly_scoring_job", tags=range_tags(keys[0], keys[-1]))
    got = _verdicts(result)
    want = {}
    for key in keys:
        want |= _verdicts(_run(single, spec, "hourly_scoring_job", partition_key=key))

    broken = keys[1]
    assert got[("event_contract", broken)] == (False, "ERROR")
    [share] = [e.metadata["quarantine_share"].value for e in result.get_asset_check_evaluations()
               if e.check_name == "event_contract" and e.partition == broken]
    assert share == pytest.approx(7 / 24)
    # the per-hour runs also check nothing downstream of the blocked hour
    assert {c for c, p in want if p == broken} == {"event_contract", "landing_events_append_only"}
    assert {k: v for k, v in got.items() if k[1] != broken} == {
        k: v for k, v in want.items() if k[1] != broken}
    assert all(passed for (c, p), (passed, _) in got.items() if p != broken)
    assert len({p for _, p in got if p}) == 4 and len(got) >= 3 * 4 + 2

    a, b = _outputs(ranged, keys), _outputs(single, keys)
    for (table, key), frame in a.items():
        other = b[table, key]
        assert (frame is None) == (other is None), (table, key)
        if key == broken and table != "raw_events":
            assert frame is None, f"{table} built for the blocked hour {key}"
        else:
            assert frame is not None, (table, key)
            pd.testing.assert_frame_equal(frame, other, check_like=True)


def test_P02_a_range_run_of_a_daily_check_records_each_days_own_verdict(fraud_world, tmp_path):
    """The daily monitoring checks over 3 days in one run vs one run per day: the same verdict
    for every check and day (before: one worst-day result and nothing per day), each recorded
    under its own day's partition key."""
    paths, spec = copy_world(fraud_world, tmp_path / "w"), fraud_world["spec"]
    days = [day_key(fraud_world["end"] - timedelta(days=d)) for d in (3, 2, 1)]
    defs = build_definitions(spec, str(paths.root))
    checks = defs.resolve_implicit_global_asset_job_def().asset_layer.asset_graph.asset_check_keys
    monitoring = {k for k in checks if k.asset_key.path[-1] in (
        "feature_drift", "prediction_drift", "delayed_evaluation", "early_label_watch",
        "business_metric")}
    job = dg.define_asset_job("monitoring_checks", selection=dg.AssetSelection.checks(*monitoring))
    defs = dg.Definitions.merge(defs, dg.Definitions(jobs=[job]))

    def run(**kwargs):
        return defs.resolve_job_def("monitoring_checks").execute_in_process(
            instance=dg.DagsterInstance.ephemeral(), raise_on_error=False, **kwargs)

    got = _verdicts(run(tags=range_tags(days[0], days[-1])))
    want = {}
    for day in days:
        want |= _verdicts(run(tags={"dagster/partition": day}))  # checks alone: no assets
    assert got == want
    assert {p for _, p in got} == set(days)
    assert len(got) == len(monitoring) * len(days)


def _arrow_peak(paths: DataPaths, spec, asset: str, start, end) -> int:
    """Bytes of Arrow memory a range run of ``asset`` (checks aside) peaks at, from zero."""
    defs = build_definitions(spec, str(paths.root))
    pool, default = pa.proxy_memory_pool(pa.default_memory_pool()), pa.default_memory_pool()
    pa.set_memory_pool(pool)
    try:
        result = dg.materialize([*defs.assets, *(defs.asset_checks or [])],
                                selection=dg.AssetSelection.assets(asset).without_checks(),
                                instance=dg.DagsterInstance.ephemeral(), resources=defs.resources,
                                tags=range_tags(hour_key(start), hour_key(end - timedelta(hours=1))))
    finally:
        pa.set_memory_pool(default)
    assert result.success
    return pool.max_memory()


def test_P03_a_scoring_range_runs_memory_does_not_grow_with_the_range(fraud_world, tmp_path,
                                                                       monkeypatch):
    """The 25M-event demo ran out of memory in ``batch_scores``: a range run kept every
    partition it scored (Arrow tables) until the step returned. The lake IO manager now writes
    each chunk before the next is computed (``PartitionChunks``; ``event_features`` too), so
    8 days in 1-day chunks peak about where 2 days do."""
    asset = "batch_scores"
    paths, spec, end = copy_world(fraud_world, tmp_path / "w"), fraud_world["spec"], \
        fraud_world["end"]
    monkeypatch.setattr(lake, "RANGE_CHUNK", timedelta(days=1))
    short = _arrow_peak(paths, spec, asset, end - timedelta(days=2), end)
    long = _arrow_peak(paths, spec, asset, end - timedelta(days=8), end)
    written = sum(pq.read_table(f).nbytes for f in Catalog(paths.lake).table(asset).files(
        end - timedelta(days=8), end))
    # holding the range would add the 6 more days' output (3/4 of what was written)
    assert long < short + written / 4, (short, long, written)
