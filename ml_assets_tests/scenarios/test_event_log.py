"""The project's Dagster instance records events through PooledSqliteEventLogStorage: Dagster's
own files and schema, engines kept open, and a copied data directory writes its own log."""

import shutil

import dagster as dg
import yaml
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

from ml_assets.lib.core.paths import DataPaths
from ml_assets.scenarios import event_log
from ml_assets.scenarios.event_log import PooledSqliteEventLogStorage
from ml_assets.scenarios.runner import open_instance

PARTS = dg.StaticPartitionsDefinition([f"p{i:02d}" for i in range(12)])


@dg.asset(partitions_def=PARTS)
def part(context: dg.AssetExecutionContext) -> None:
    context.add_output_metadata({"n": int(context.partition_key[1:])})


def _materialize(instance, key):
    assert dg.materialize([part], instance=instance, partition_key=key).success


def test_events_land_in_dagsters_own_files_and_a_copy_writes_its_own(tmp_path):
    paths = DataPaths(tmp_path / "data")
    instance = open_instance(paths)
    assert isinstance(instance.event_log_storage, PooledSqliteEventLogStorage)
    for key in PARTS.get_partition_keys():  # 12 runs: more run shards than stay open
        _materialize(instance, key)
    storage = instance.event_log_storage
    assert len(storage._engines) <= event_log.OPEN_RUN_SHARDS + 1
    # the stock storage reads the same files: switching back loses nothing
    stock = SqliteEventLogStorage(str(paths.dagster_home / "history" / "runs"))
    assert stock.get_materialized_partitions(dg.AssetKey("part")) == set(PARTS.get_partition_keys())
    instance.dispose()

    copy = DataPaths(tmp_path / "copy")
    shutil.copytree(paths.root, copy.root)
    copied = open_instance(copy)
    config = yaml.safe_load((copy.dagster_home / "dagster.yaml").read_text())
    assert config["event_log_storage"]["config"]["base_dir"] == str(
        copy.dagster_home / "history" / "runs")
    _materialize(copied, "p00")
    records = copied.fetch_materializations(dg.AssetKey("part"), limit=100).records
    assert len(records) == 13
    original = open_instance(paths)
    assert len(original.fetch_materializations(dg.AssetKey("part"), limit=100).records) == 12


DAYS = dg.DailyPartitionsDefinition(start_date="2026-01-01", end_date="2026-03-01")


@dg.asset(partitions_def=DAYS, backfill_policy=dg.BackfillPolicy.single_run())
def daily() -> None:
    return None


@dg.asset_check(asset=daily, partitions_def=DAYS)
def rows_ok() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=True)


def _range_run(instance) -> tuple[int, list]:
    keys = DAYS.get_partition_keys()
    result = dg.materialize([daily, rows_ok], instance=instance, tags={
        "dagster/asset_partition_range_start": keys[0],
        "dagster/asset_partition_range_end": keys[-1]})
    assert result.success
    planned = instance.get_records_for_run(
        result.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED).records
    check = dg.AssetCheckKey(dg.AssetKey("daily"), "rows_ok")
    history = instance.event_log_storage.get_asset_check_execution_history(check, limit=1000)
    assert instance.get_materialized_partitions(dg.AssetKey("daily")) == set(keys)
    return len(planned), sorted((r.partition or "", r.status.value) for r in history)


def test_a_range_run_plans_once_per_asset_and_records_its_checks_as_dagster_does(tmp_path):
    ours = open_instance(DataPaths(tmp_path / "data"))
    stock_home = tmp_path / "stock"
    stock_home.mkdir()
    (stock_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    stock = dg.DagsterInstance.from_config(str(stock_home))
    assert type(stock.event_log_storage) is SqliteEventLogStorage
    planned, rows = _range_run(ours)
    stock_planned, stock_rows = _range_run(stock)
    assert (planned, stock_planned) == (1, len(DAYS.get_partition_keys()))
    assert rows == stock_rows  # the planned check rows written in one batch are Dagster's rows


def _check_events(run_id: str) -> list:
    """Planned checks (partitioned and not) and evaluations: passed and failed, aimed at a
    materialization or not, matching a planned row or not (then inserted)."""
    from dagster._core.definitions.asset_checks.asset_check_evaluation import (
        AssetCheckEvaluationTargetMaterializationData as Target,
    )
    from dagster._core.events import AssetCheckEvaluationPlanned, DagsterEvent
    from dagster._core.events.log import EventLogEntry

    kind = dg.DagsterEventType
    parts = dg.StaticPartitionsDefinition(["a", "b", "c"])
    planned = [AssetCheckEvaluationPlanned(
        asset_key=dg.AssetKey("x"), check_name="part",
        partitions_subset=parts.subset_with_partition_keys(["a", "b"])),
        AssetCheckEvaluationPlanned(asset_key=dg.AssetKey("x"), check_name="whole")]
    evaluated = [dg.AssetCheckEvaluation(
        asset_key=dg.AssetKey("x"), check_name=check, passed=passed, metadata={"n": i},
        partition=partition, target_materialization_data=target)
        for i, (check, partition, passed, target) in enumerate([
            ("part", "a", True, None),
            ("part", "b", False, Target(run_id=run_id, storage_id=7, timestamp=1.0)),
            ("part", "c", True, None), ("whole", None, False, None),
            ("unplanned", None, True, None), ("unplanned", "z", True, None)])]
    return [EventLogEntry(error_info=None, level=10, user_message="", run_id=run_id,
                          timestamp=1.7e9 + i, step_key="s", job_name="j",
                          dagster_event=DagsterEvent(event_type.value, "j", step_key="s",
                                                     event_specific_data=data))
            for i, (event_type, data) in enumerate(
                [(kind.ASSET_CHECK_EVALUATION_PLANNED, p) for p in planned]
                + [(kind.ASSET_CHECK_EVALUATION, e) for e in evaluated])]


def test_check_evaluations_are_stored_row_for_row_as_dagster_stores_them(tmp_path):
    """One serialization and one index transaction per evaluation, the same rows: the
    executions, the index's events and the run's events."""
    import sqlite3

    run_id = "1c7e2d3a-0000-4000-8000-000000000001"
    stored = []
    for cls in (SqliteEventLogStorage, PooledSqliteEventLogStorage):
        base = tmp_path / cls.__name__
        storage = cls(str(base))
        for event in _check_events(run_id):
            storage.store_event(event)
        storage.dispose()
        index, run = sqlite3.connect(base / "index.db"), sqlite3.connect(base / f"{run_id}.db")
        events = "SELECT run_id, event, dagster_event_type, timestamp, asset_key, partition " \
                 "FROM event_logs ORDER BY id"
        stored.append((index.execute(
            "SELECT asset_key, check_name, partition, run_id, execution_status, evaluation_event,"
            " evaluation_event_timestamp, evaluation_event_storage_id,"
            " materialization_event_storage_id FROM asset_check_executions ORDER BY id").fetchall(),
            index.execute(events).fetchall(), run.execute(events).fetchall()))
    stock, ours = stored
    assert len(ours[0]) == 6 and {r[4] for r in ours[0]} == {"SUCCEEDED", "FAILED"}
    assert ours == stock
