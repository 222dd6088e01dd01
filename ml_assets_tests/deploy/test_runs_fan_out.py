"""Issue 19, items 1 and 4: the shipped instance profile (``deploy/postgres/dagster.yaml``) puts
Dagster's runs, event log and schedules on a real PostgreSQL, and four partition ranges
launched through its run queue run side by side within its limits."""

import json

import duckdb
import psycopg2
import pytest
import yaml

from ml_assets.lib.core.catalog import RAW_EVENTS
from ml_assets.lib.core.workspace import Workspace
from ml_assets.scenarios.runner import RUN_MONITORING, write_instance_config
from ml_assets.specs.fraud import FRAUD_SPEC
from ml_assets_tests.deploy.fan_out import (
    PG_URL_ENV,
    PROFILE,
    RANGES,
    WAVES,
    WORLD,
    all_keys,
    fan_out,
    partition_ranges,
    prepare,
)


def _range_limit() -> int:
    limits = yaml.safe_load(PROFILE.read_text())["run_coordinator"]["config"]
    return next(t["limit"] for t in limits["tag_concurrency_limits"]
                if t["key"] == "dagster/asset_partition_range_start")


def _query(url: str, sql: str, args: tuple = ()) -> list[tuple]:
    con = psycopg2.connect(url)
    try:
        with con.cursor() as cur:
            cur.execute(sql, args)
            return cur.fetchall()
    finally:
        con.close()


def _errors(url: str) -> list[str]:
    """The error messages of the failure events in the run storage's event log."""
    rows = _query(url, "SELECT event FROM event_logs WHERE dagster_event_type IN "
                       "('RUN_FAILURE', 'STEP_FAILURE', 'ENGINE_EVENT') ORDER BY id")
    out = []
    for (event,) in rows:
        data = (json.loads(event).get("dagster_event") or {}).get("event_specific_data") or {}
        error = data.get("error") or {}
        while error.get("cause"):  # the user's exception, innermost
            error = error["cause"]
        if error:
            out.append(f"{error.get('cls_name')}: {error.get('message', '')[-1500:]}")
    return out


def test_four_ranges_fan_out_on_postgres_within_the_profiles_limits(tmp_path, postgres_database):
    url = postgres_database.url
    paths, env = prepare(tmp_path / "data", PROFILE)
    env[PG_URL_ENV] = postgres_database.sqlalchemy_url

    def statuses() -> dict[str, str]:
        try:
            return dict(_query(url, "SELECT run_id, status FROM runs"))
        except psycopg2.errors.UndefinedTable:  # the first Dagster process creates the schema
            return {}

    result = fan_out(paths, env, statuses)

    runs = _query(url, "SELECT r.run_id, r.status, r.start_time, r.end_time, t.value FROM runs r "
                       "JOIN run_tags t ON t.run_id = r.run_id "
                       "AND t.key = 'dagster/asset_partition_range_start'")
    assert sorted(r[4] for r in runs) == sorted(
        first for first, _ in partition_ranges() for _ in WAVES)
    assert {r[1] for r in runs} == {"SUCCESS"}, _errors(url)
    # the limit held: at no time more range runs in progress than the profile allows, and the
    # queue did fan out (as many at once as the limit)
    limit = _range_limit()
    assert 1 < limit < RANGES
    assert result.most_in_progress == limit  # a queue of four: two started at once
    moments = sorted([(r[2], 1) for r in runs] + [(r[3], -1) for r in runs])
    running = [sum(d for _, d in moments[:i + 1]) for i in range(len(moments))]
    assert max(running) <= limit, runs

    # the event log is in PostgreSQL: each partition of each asset materialized exactly once
    materialized = _query(url, "SELECT asset_key, partition, count(*) FROM event_logs "
                               "WHERE dagster_event_type = 'ASSET_MATERIALIZATION' "
                               "GROUP BY asset_key, partition")
    for asset in WAVES:
        counts = {p: n for key, p, n in materialized if key == f'["{asset}"]'}
        assert sorted(counts) == all_keys() and set(counts.values()) == {1}, (asset, counts)
    per_run = dict(_query(url, "SELECT run_id, count(*) FROM event_logs GROUP BY run_id"))
    assert all(per_run.get(r[0], 0) > 10 for r in runs), per_run
    # and nothing went to the SQLite event log of a default instance
    assert not (paths.dagster_home / "history").exists()

    # the lake holds every hour once: no partition missing, no event twice
    catalog = Workspace(paths, FRAUD_SPEC).catalog
    files, missing = catalog.table(RAW_EVENTS).coverage(WORLD.start, WORLD.end)
    assert not missing and len(files) == WORLD.days * 24, missing
    [(rows, ids)] = duckdb.sql(f"SELECT count(*), count(DISTINCT event_id) FROM read_parquet("
                               f"{[str(f) for f in files]})").fetchall()
    assert rows == ids > 0
    print(f"fan-out on PostgreSQL: {result.seconds:.1f} s")  # the README's figure (pytest -s)


def test_the_profile_becomes_the_instance_config_with_run_monitoring(tmp_path):
    paths, _ = prepare(tmp_path / "data", PROFILE)
    config = yaml.safe_load((paths.dagster_home / "dagster.yaml").read_text())
    assert config["storage"]["postgres"]["postgres_url"] == {"env": PG_URL_ENV}
    assert "event_log_storage" not in config  # Dagster refuses it next to `storage`
    assert config["run_monitoring"] == RUN_MONITORING
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert config["telemetry"] == {"enabled": False}


def test_a_missing_profile_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="no Dagster instance profile at .*nope.yaml"):
        write_instance_config(prepare(tmp_path / "data", PROFILE)[0], tmp_path / "nope.yaml")
