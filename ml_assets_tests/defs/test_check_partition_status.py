"""Issue 14, item 2 (the UI part): after a run over a range of partitions, every partition of a
check over a partitioned asset shows its own verdict in Dagster's per-partition check status
(the check's partition grid in the UI), and a later run of one partition changes only that
partition's status - a clean day rerun alone no longer turns a check with failed days green.

The statuses are read the way the UI reads them: ``event_log_storage.get_asset_check_state``
with the check's own partitions definition (the UI shows no partition status for a check
without one)."""

from datetime import timedelta

import dagster as dg
import pandas as pd
import pytest

from ml_assets.definitions import build_definitions
from ml_assets.defs.partitions import PARTITION_TAG, day_key, hour_key, range_tags
from ml_assets.lib.core.catalog import Catalog
from ml_assets.scenarios.runner import dagster_instance, run
from ml_assets_tests.fixtures.example_specs import example_specs
from ml_assets_tests.fixtures.reliability_world import copy_world, hours, shifted_hour

HOURLY_ASSETS = ["raw_events", "event_features", "batch_scores"]
HOURLY_CHECKS = ["event_contract", "landing_events_append_only", "feature_contract",
                 "score_contract"]
# Their verdicts are not about a partition of their asset: the replay parity of the newest
# complete day, whatever hours the run covers, and the current challenger's cumulative report.
UNPARTITIONED = {("batch_scores", "online_offline_parity"), ("shadow_report", "promotion_gate")}
BROKEN = (1, 3)  # of four new landing hours: 7 of 24 rows with a negative amount (29% > 2%)
WARN_FEATURE = "amount"


def statuses(instance: dg.DagsterInstance, defs: dg.Definitions, key: dg.AssetCheckKey,
             ) -> dict[str, str]:
    """Partition key -> resolved status (``SUCCEEDED``, ``FAILED``, ``SKIPPED``, ...) of check
    ``key``, as the UI's partition grid shows it; ``{}`` for a check without partitions."""
    partitions_def = defs.get_repository_def().asset_graph.get(key).partitions_def
    if partitions_def is None:
        return {}
    state = instance.event_log_storage.get_asset_check_state([(key, partitions_def)])[key]
    return {partition: status.value for status, subset in state.subsets.items()
            for partition in subset.subset_value.get_partition_keys()}


def all_statuses(instance, defs, keys) -> dict:
    return {k.name: statuses(instance, defs, k) for k in keys}


@pytest.mark.parametrize("spec_name", sorted(example_specs()))
def test_every_check_over_a_partitioned_asset_is_partitioned_like_it(spec_name, tmp_path):
    """Without a partitions definition Dagster keeps one status per check, whatever ran last."""
    defs = build_definitions(example_specs()[spec_name], str(tmp_path))
    graph = defs.get_repository_def().asset_graph
    for key in graph.asset_check_keys:
        asset_def = graph.get(key.asset_key).partitions_def
        if (key.asset_key.to_user_string(), key.name) not in UNPARTITIONED:
            assert graph.get(key).partitions_def == asset_def, key


@pytest.fixture
def hourly_world(fraud_world, tmp_path):
    """A copy of the world with four new landing hours, hours :data:`BROKEN` over the ingest
    contract's quarantine limit, and the persistent instance the UI reads."""
    end, spec = fraud_world["end"], fraud_world["spec"]
    paths = copy_world(fraud_world, tmp_path / "w")
    new = hours(end, 4)
    sources = hours(end - timedelta(hours=24), 24)
    for i, h in enumerate(new):
        df = pd.concat([shifted_hour(paths, src, h, 10_000_000 * (i + 1) + 1_000_000 * j)
                        for j, src in enumerate(sources)], ignore_index=True)
        df = df.head(24 if i in BROKEN else 120)
        if i in BROKEN:
            df.loc[df.index[:7], "amount"] = -5.0
        df.to_parquet(paths.landing_events_file(h), index=False)
    defs = build_definitions(spec, str(paths.root))
    return defs, dagster_instance(paths), [hour_key(h) for h in new]


@pytest.mark.slow
def test_a_range_run_leaves_each_hours_verdict_and_a_rerun_changes_only_its_hour(hourly_world):
    """One 4-hour range run of the hourly assets (as the UI launches it): the two broken hours
    are FAILED for ``event_contract`` - and for the feature and score contracts, whose tables
    have nothing for them - and every other (check, hour) SUCCEEDED. Rerunning a clean hour
    alone then leaves every other hour's status as it was: the broken hours stay FAILED."""
    defs, instance, keys = hourly_world
    checks = [dg.AssetCheckKey(dg.AssetKey(a), c) for a, c in (
        ("raw_events", "event_contract"), ("raw_events", "landing_events_append_only"),
        ("event_features", "feature_contract"), ("batch_scores", "score_contract"))]
    run(defs, instance, HOURLY_ASSETS, tags=range_tags(keys[0], keys[-1]))

    got = all_statuses(instance, defs, checks)
    broken = {keys[i] for i in BROKEN}
    for name in HOURLY_CHECKS:
        failing = broken if name != "landing_events_append_only" else set()
        assert got[name] == {k: "FAILED" if k in failing else "SUCCEEDED" for k in keys}, name

    clean = keys[2]
    assert run(defs, instance, HOURLY_ASSETS, tags={PARTITION_TAG: clean}).success
    assert all_statuses(instance, defs, checks) == got
    latest = instance.event_log_storage.get_latest_asset_check_execution_by_key(checks)
    assert {r.partition for r in latest.values()} == {clean}  # the last run was the clean hour


def _warn(paths, day: str) -> None:
    """Mark :data:`WARN_FEATURE`'s drift of ``day`` as WARN in the lake (the check's input)."""
    table = Catalog(paths.lake).table("feature_drift")
    df = pd.read_parquet(table.path(day))
    df.loc[df["feature"] == WARN_FEATURE, "severity"] = "warn"
    table.write(day, df)


@pytest.mark.slow
def test_a_range_run_of_daily_monitoring_checks_keeps_warn_days_after_a_clean_rerun(
        fraud_world, tmp_path):
    """The issue's case: the daily monitoring checks over 3 days in one run record each day's
    verdict as that day's status (the WARN day FAILED, the others as their own verdict); a
    clean day rerun alone changes no other day, so the WARN day stays FAILED."""
    paths, spec = copy_world(fraud_world, tmp_path / "w"), fraud_world["spec"]
    days = [day_key(fraud_world["end"] - timedelta(days=d)) for d in (3, 2, 1)]
    _warn(paths, days[1])
    defs = build_definitions(spec, str(paths.root))
    graph = defs.get_repository_def().asset_graph
    monitoring = sorted(k for k in graph.asset_check_keys if k.asset_key.path[-1] in (
        "feature_drift", "prediction_drift", "delayed_evaluation", "early_label_watch",
        "business_metric"))
    job = dg.define_asset_job("monitoring_checks", selection=dg.AssetSelection.checks(*monitoring))
    defs = dg.Definitions.merge(defs, dg.Definitions(jobs=[job]))
    instance = dagster_instance(paths)

    def verdicts(**tags) -> dict:
        result = defs.resolve_job_def("monitoring_checks").execute_in_process(
            instance=instance, raise_on_error=False, tags=tags)
        return {(e.check_name, e.partition): "SUCCEEDED" if e.passed else "FAILED"
                for e in result.get_asset_check_evaluations()}

    ran = verdicts(**range_tags(days[0], days[-1]))
    got = all_statuses(instance, defs, monitoring)
    assert got == {k.name: {d: ran[k.name, d] for d in days} for k in monitoring}
    psi = f"psi_{WARN_FEATURE}"
    assert got[psi][days[1]] == "FAILED"
    assert "SUCCEEDED" in got[psi].values()

    clean = next(d for d in (days[2], days[0]) if got[psi][d] == "SUCCEEDED")
    verdicts(**{PARTITION_TAG: clean})
    assert all_statuses(instance, defs, monitoring) == got
