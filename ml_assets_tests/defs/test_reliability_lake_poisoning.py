"""Issue 15, items 1-3 through the real Dagster jobs (docs/reliability.md, rows T*/U*/R*): one
oddly written file must not poison later hours, an event_id landed twice is kept once across
runs, and a corrected re-delivery can be accepted so its append-only check turns green."""

import math
from datetime import timedelta

import dagster as dg
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ml_assets.cli.main import main as cli
from ml_assets.definitions import build_definitions
from ml_assets.defs.partitions import day_key, hour_key
from ml_assets.lib.core.catalog import Catalog
from ml_assets.lib.core.paths import DataPaths
from ml_assets.lib.core.registry import Registry
from ml_assets.lib.serving.score_index import load_score_index
from ml_assets.lib.training.reproduce import stage_landing
from ml_assets.lib.training.train import TrainingWindow
from ml_assets_tests.fixtures.reliability_world import copy_world, shifted_hour

pytestmark = pytest.mark.slow


def _run(paths: DataPaths, spec, job: str, key: str):
    defs = build_definitions(spec, str(paths.root))
    return defs.resolve_job_def(job).execute_in_process(
        partition_key=key, instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)


def _failure(result) -> str:
    out = []
    for event in result.all_events:
        if event.is_step_failure:
            error = event.event_specific_data.error
            while error is not None:
                out.append(error.message.strip())
                error = error.cause
    return " | ".join(out)


def _checks(result) -> dict:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def _part(paths: DataPaths, table: str, hour) -> pd.DataFrame:
    return pd.read_parquet(Catalog(paths.lake).table(table).path(hour_key(hour)))


@pytest.fixture
def world(fraud_world, tmp_path):
    """A private copy of the world, its spec, the first hour after it, and a clean file for it."""
    paths = copy_world(fraud_world, tmp_path / "world")
    end = fraud_world["end"]
    return paths, fraud_world["spec"], end, shifted_hour(paths, end - timedelta(hours=1), end,
                                                         id_offset=10_000_000)


def test_T07_a_new_york_hour_with_text_card_ids_scores_and_poisons_nothing(world):
    """The issue's two poisoning files in one hour (event_ts in America/New_York at ns,
    card_id as text), then a clean hour: both hourly runs succeed, every stored partition has
    timestamp[us, UTC] and int64 card ids, and the serving score index finds every card of the
    hour by its integer id (it answered 404 for 20 of 20 before)."""
    paths, spec, hour, good = world
    odd = good.assign(event_ts=good["event_ts"].dt.tz_convert("America/New_York")
                      .astype("datetime64[ns, America/New_York]"),
                      card_id=good["card_id"].astype("str"))
    odd.to_parquet(paths.landing_events_file(hour), index=False)
    nxt = hour + timedelta(hours=1)
    shifted_hour(paths, hour - timedelta(hours=1), nxt, 20_000_000).to_parquet(
        paths.landing_events_file(nxt), index=False)
    for h in (hour, nxt):
        result = _run(paths, spec, "hourly_scoring_job", hour_key(h))
        assert result.success, _failure(result)
        for table in ("raw_events", "event_features", "batch_scores"):
            schema = pq.read_schema(Catalog(paths.lake).table(table).path(hour_key(h)))
            assert schema.field("event_ts").type == pa.timestamp("us", tz="UTC"), table
            assert schema.field("card_id").type == pa.int64(), table
    assert len(_part(paths, "event_features", hour)) == len(good)
    assert len(_part(paths, "event_features", nxt)) > 0  # the look-back over the NY hour works
    index = load_score_index(paths, spec)
    cards = set(good["card_id"].astype("int64"))
    assert all(index.latest_row("card_id", int(c)) is not None for c in cards)  # by int id


def test_T08_a_type_outside_its_family_fails_once_naming_file_and_column(world):
    """A contract error is never retried: one attempt, the message names file and column."""
    paths, spec, hour, good = world
    good.assign(amount=True).to_parquet(paths.landing_events_file(hour), index=False)
    result = _run(paths, spec, "hourly_scoring_job", hour_key(hour))
    assert not result.success
    assert "landing/events/2026-07-31T00.parquet: column 'amount' has type boolean" in \
        _failure(result)
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    started = [e.step_key for e in result.all_events if e.event_type_value == "STEP_START"]
    assert started == ["raw_events"]


def test_U02_an_event_id_landed_in_two_hours_by_two_runs_is_scored_and_labeled_once(world):
    """The same event_id in two hour files ingested by two hourly runs used to be held twice
    by raw_events, event_features and batch_scores, and its label was joined to both (47 label
    rows in, 48 out). Right value: held once, the later copy quarantined naming the earlier
    file, 47 label rows in, 47 out."""
    paths, spec, first, good = world
    second = first + timedelta(hours=1)
    good.to_parquet(paths.landing_events_file(first), index=False)
    # twice the rows, so one duplicate stays under the blocking 2% quarantine share
    later = pd.concat([shifted_hour(paths, first, second, id_offset=o)
                       for o in (1_000_000, 2_000_000)], ignore_index=True)
    dup = int(good["event_id"].iloc[0])
    later.loc[later.index[0], "event_id"] = dup
    later.to_parquet(paths.landing_events_file(second), index=False)
    for h in (first, second):
        assert _run(paths, spec, "hourly_scoring_job", hour_key(h)).success
    for table in ("raw_events", "event_features", "batch_scores"):
        rows = pd.concat([_part(paths, table, h) for h in (first, second)], ignore_index=True)
        rows = rows[rows["event_id"] == dup]
        # batch_scores holds one row per scored model version (champion and shadow challenger)
        per_version = rows.groupby("model_version").size() if table == "batch_scores" \
            else pd.Series([len(rows)])
        assert len(rows) > 0 and per_version.eq(1).all(), table
    q = pd.read_parquet(paths.lake / "_quarantine" / "raw_events" / f"{second:%Y-%m-%dT%H}.parquet")
    assert q["reason"].tolist() == ["duplicate event_id, first seen in "
                                    "landing/events/2026-07-31T00.parquet"]

    day = first + timedelta(days=1)
    ids = [dup, *good["event_id"].iloc[1:24], *later["event_id"].iloc[1:24]]
    assert not paths.landing_labels_file(day).exists() and len(ids) == 47
    labels = pd.DataFrame({"event_id": ids, "label": [i % 2 for i in range(47)],
                           "label_ts": pd.DatetimeIndex([day + timedelta(hours=1)] * 47)
                           .astype("datetime64[us, UTC]")})
    labels.to_parquet(paths.landing_labels_file(day), index=False)
    labels.iloc[0:0].to_parquet(paths.landing_reports_file(day), index=False)  # no early reports
    result = _run(paths, spec, "daily_labels_job", day_key(day))
    assert result.success, _failure(result)
    labels = pd.read_parquet(Catalog(paths.lake).table("raw_labels").path(day_key(day)))
    assert len(labels) == 47 and int((labels["event_id"] == dup).sum()) == 1


def test_R02_a_corrected_redelivery_is_accepted_and_the_append_only_check_turns_green(world):
    """Land an hour with 30% out-of-window rows (the blocking contract stops it), re-deliver the
    fixed file and rerun: the append-only check failed with ERROR for ever. Right value: after
    `ml-assets landing accept` (who, why, old and new checksum, audited) the check is green and
    reproduce stages the accepted version without a problem."""
    paths, spec, hour, good = world
    landing = paths.landing_events_file(hour)
    rel = str(landing.relative_to(paths.root))
    bad = good.copy()
    k = math.ceil(0.3 * len(bad))  # beyond what a 2% rate gives an hour's rows by chance
    bad.loc[bad.index[:k], "event_ts"] -= timedelta(hours=2)  # outside the file's hour
    bad.to_parquet(landing, index=False)
    result = _run(paths, spec, "hourly_scoring_job", hour_key(hour))
    checks = _checks(result)
    assert not checks["event_contract"].passed and checks["landing_events_append_only"].passed

    good.to_parquet(landing, index=False)  # the fixed file, re-delivered
    result = _run(paths, spec, "hourly_scoring_job", hour_key(hour))
    assert result.success, _failure(result)
    checks = _checks(result)
    assert checks["event_contract"].passed
    assert not checks["landing_events_append_only"].passed  # a changed file is still flagged
    assert f"ml-assets landing accept {rel}" in checks["landing_events_append_only"].description

    assert cli(["--data-dir", str(paths.root), "landing", "accept", rel, "--reason",
                "upstream fixed the clock skew and re-sent the hour", "--actor", "oncall-ana"]) == 0
    registry = Registry(paths.control_db)
    [accepted] = registry.landing_acceptances(rel)
    assert accepted["accepted_by"] == "oncall-ana" and accepted["old_sha256"] != accepted["sha256"]
    assert registry.audit_log(1)[0]["action"] == "landing:accept"

    result = _run(paths, spec, "hourly_scoring_job", hour_key(hour))
    assert result.success and _checks(result)["landing_events_append_only"].passed
    scratch = DataPaths(paths.root.parent / "scratch").ensure()
    window = TrainingWindow(spec.start_utc, hour + timedelta(hours=1), spec.start_utc)
    assert stage_landing(paths, registry, scratch, spec, window) == []
    assert (scratch.root / rel).read_bytes() == landing.read_bytes()
