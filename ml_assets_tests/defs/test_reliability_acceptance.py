"""Acceptance, run as a new user would (docs/reliability.md, rows A*): a corrupt or
schema-broken file dropped into data/landing/ makes the hourly job fail with a clear message
and leaves every earlier output intact; replacing the file and rerunning succeeds. Plus the
all-or-nothing rule for range runs, the blocking contract check, and freshness policies."""

import re
from datetime import timedelta

import dagster as dg
import pandas as pd
import pytest

from ml_assets.definitions import build_definitions
from ml_assets.defs.freshness import (
    DAILY_LABELS_FRESHNESS,
    HOURLY_FRESHNESS,
    NIGHTLY_TRAINING_FRESHNESS,
)
from ml_assets.defs.partitions import hour_key, range_tags
from ml_assets.lib.core.catalog import Catalog
from ml_assets.lib.core.registry import Registry
from ml_assets.scenarios.synthetic import DEVICES
from ml_assets_tests.fixtures.reliability_world import copy_world, shifted_hour, tree_digest

pytestmark = pytest.mark.slow


def _hourly_job(root, spec, hour):
    defs = build_definitions(spec, str(root))
    return defs.resolve_job_def("hourly_scoring_job").execute_in_process(
        partition_key=hour_key(hour), instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False)


def _failure(result) -> str:
    """What the run page shows: each failed step's error and the chain of its causes."""
    out = []
    for event in result.all_events:
        if event.is_step_failure:
            error = event.event_specific_data.error
            while error is not None:
                out.append(f"{event.step_key}: {error.message.strip()}")
                error = error.cause
    return " | ".join(out)


@pytest.fixture
def next_hour(fraud_world, tmp_path):
    """A copy of the world and the first hour after it, with a good landing file ready."""
    paths = copy_world(fraud_world, tmp_path / "world")
    end = fraud_world["end"]
    good = shifted_hour(paths, end - timedelta(hours=1), end, id_offset=10_000_000)
    good.loc[good.index[:3], "device"] = ["smart-fridge", None, "WEB"]  # unknown categories
    return paths, end, good


@pytest.mark.parametrize("breakage,message", [
    ("corrupt", r"raw_events: .*landing/events/2026-07-31T00\.parquet: unreadable Parquet "
                r"\(ArrowInvalid: .*\); re-deliver the file"),
    ("renamed_column", r"raw_events: .*landing/events/2026-07-31T00\.parquet: required column\(s\) "
                       r"\['amount'\] missing; unexpected column\(s\) \['amount_usd'\]"),
])
def test_A01_A02_broken_landing_file_fails_the_hourly_job_clearly_and_keeps_every_output(
        fraud_world, next_hour, breakage, message):
    paths, hour, good = next_hour
    spec = fraud_world["spec"]
    landing = paths.landing_events_file(hour)
    if breakage == "corrupt":
        good.to_parquet(landing, index=False)
        landing.write_bytes(landing.read_bytes()[:-200])  # footer cut off
    else:
        good.rename(columns={"amount": "amount_usd"}).to_parquet(landing, index=False)
    before = tree_digest(paths.root)
    aliases = Registry(paths.control_db).aliases("fraud")

    result = _hourly_job(paths.root, spec, hour)
    assert not result.success
    assert re.search(message, _failure(result)), _failure(result)
    # only the raw step ran: features and scores never started on a broken hour
    started = {e.step_key for e in result.all_events if e.event_type_value == "STEP_START"}
    assert started == {"raw_events"}
    # a broken file is not retried (RetryPolicy is for IO errors; retrying cannot fix a file)
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert tree_digest(paths.root) == before  # every earlier output intact, nothing half-written

    good.to_parquet(landing, index=False)  # the file is re-delivered
    result = _hourly_job(paths.root, spec, hour)
    assert result.success, _failure(result)
    raw = pd.read_parquet(Catalog(paths.lake).table("raw_events").path(hour_key(hour)))
    feats = pd.read_parquet(Catalog(paths.lake).table("event_features").path(hour_key(hour)))
    scores = pd.read_parquet(Catalog(paths.lake).table("batch_scores").path(hour_key(hour)))
    assert len(raw) == len(good) == len(feats)
    assert set(scores["event_id"]) == set(good["event_id"]) and scores["score"].between(0, 1).all()
    unknown = feats.set_index("event_id").loc[good["event_id"][:3], "device"]
    assert (unknown == float(len(DEVICES))).all()  # the unknown bucket, not a crash
    after = tree_digest(paths.root)
    changed = {k for k in before if after[k] != before[k]}
    # earlier outputs untouched; the control plane records the accepted file's checksum
    assert changed <= {f"landing/events/{hour:%Y-%m-%dT%H}.parquet", "control.sqlite"}, changed
    registry = Registry(paths.control_db)
    assert [m["version"] for m in registry.list_models("fraud")] == ["fraud-v1", "fraud-v2"]
    assert registry.aliases("fraud") == aliases


def test_A03_a_range_run_with_one_broken_file_applies_nothing(fraud_world, next_hour):
    """Three new hours, the middle one broken: no partition, no quarantine file, nothing."""
    paths, start, good = next_hour
    spec = fraud_world["spec"]
    for i in range(3):
        hour = start + timedelta(hours=i)
        df = good.assign(event_id=good["event_id"] + i * 100_000,
                         event_ts=good["event_ts"] + timedelta(hours=i))
        if i == 0:
            df.loc[df.index[0], "amount"] = -1.0  # a row that would be quarantined
        df.to_parquet(paths.landing_events_file(hour), index=False)
    paths.landing_events_file(start + timedelta(hours=1)).write_bytes(b"PAR1 broken PAR1")
    before = tree_digest(paths.root)
    defs = build_definitions(spec, str(paths.root))
    result = dg.materialize([*defs.assets, *defs.asset_checks], selection=["raw_events"],
                            instance=dg.DagsterInstance.ephemeral(), resources=defs.resources,
                            tags=range_tags(hour_key(start), hour_key(start + timedelta(hours=2))),
                            raise_on_error=False)
    assert not result.success and "2026-07-31T01.parquet: unreadable Parquet" in _failure(result)
    assert tree_digest(paths.root) == before


def test_A04_too_many_bad_rows_quarantine_them_and_the_blocking_check_stops_scoring(
        fraud_world, next_hour):
    paths, hour, good = next_hour
    bad = good.copy()
    bad.loc[bad.index[: len(bad) // 4], "amount"] = -5.0  # a quarter of the hour is broken
    bad.to_parquet(paths.landing_events_file(hour), index=False)
    result = _hourly_job(paths.root, fraud_world["spec"], hour)
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert not checks["event_contract"].passed
    assert "quarantine share" in checks["event_contract"].description
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert materialized == {"raw_events"}  # features and scores were not built on it
    q = pd.read_parquet(paths.lake / "_quarantine" / "raw_events" / f"{hour:%Y-%m-%dT%H}.parquet")
    raw = pd.read_parquet(Catalog(paths.lake).table("raw_events").path(hour_key(hour)))
    assert len(q) == len(good) // 4 and len(q) + len(raw) == len(good)  # nothing lost
    assert q["reason"].str.contains("amount: failed greater_than_or_equal_to").all()


def test_F01_hourly_and_nightly_assets_carry_freshness_policies(fraud_world):
    defs = build_definitions(fraud_world["spec"], str(fraud_world["paths"].root))
    graph = defs.resolve_asset_graph()
    policies = {n.key.to_user_string(): n.freshness_policy for n in graph.asset_nodes}
    for asset in ("raw_events", "event_features", "batch_scores"):
        assert policies[asset] == HOURLY_FRESHNESS
    assert policies["raw_labels"] == DAILY_LABELS_FRESHNESS
    for asset in ("training_set", "data_splits", "frozen_reference_set", "candidate_model"):
        assert policies[asset] == NIGHTLY_TRAINING_FRESHNESS
    # one missed hourly run warns, two fail; the hourly schedule runs every hour at :15
    assert HOURLY_FRESHNESS.warn_window.to_timedelta() > timedelta(hours=1)
    assert HOURLY_FRESHNESS.fail_window.to_timedelta() > timedelta(hours=2)
    # the nightly deadline falls after the schedule (03:00) and the label run (02:30)
    assert NIGHTLY_TRAINING_FRESHNESS.deadline_cron == "0 6 * * *"
    schedules = {s.name: s.cron_schedule for s in defs.schedules}
    assert schedules["nightly_training_schedule"] == "0 3 * * *"
    assert schedules["hourly_scoring_schedule"] == "15 * * * *"
