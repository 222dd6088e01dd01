"""Dagster's SQLite event log, with each shard's engine kept open instead of rebuilt per write.

Dagster's ``SqliteEventLogStorage`` creates a SQLAlchemy engine and opens a new SQLite connection
(``NullPool``) for every write, and every commit waits for a full fsync. A materialization is
written to the run's shard and to the index shard, a check evaluation three times, so recording
one partition cost 16-28 ms on this project's machine: most of a range run over hourly
partitions. Here each shard keeps its engine and pooled connection (the few most recently used
run shards, so a webserver reading thousands of runs does not hold thousands of files open), and
SQLite runs WAL with ``synchronous=NORMAL``, which SQLite documents as safe from corruption in
WAL mode (a power loss may drop the last commits; a killed process loses nothing committed).
Whether a table or an asset-key column exists is remembered once seen (asked before every check
evaluation and materialization), a range run's planned check rows are written in one batch
(Dagster's own is quadratic in them), and a run's check evaluation is serialized once and
recorded in the index in one transaction with a statement compiled once (the same rows as
Dagster's: 1.7 ms instead of 3.1 ms per evaluation here).
Recording then costs about 2-3 ms per event. Everything else is Dagster's own storage, schema
and queries: ``dagster.yaml`` names this class (``scenarios.runner.write_instance_config``).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from dagster._core.errors import DagsterInvariantViolationError
from dagster._core.events import DagsterEventType
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._core.storage.event_log.schema import (
    AssetCheckExecutionsTable,
    SqlEventLogStorageTable,
)
from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
    INDEX_SHARD_NAME,
    SqliteEventLogStorage,
)
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._serdes import serialize_value

# The index shard and this many run shards keep an open engine; older ones are disposed.
OPEN_RUN_SHARDS = 8

# A run's check evaluation fills the row its planned event made: (asset, check, run,
# partition) is unique (``idx_asset_check_executions_unique``). Built once with bound
# parameters, so SQLAlchemy compiles each statement once instead of per evaluation.
_EXECUTION = AssetCheckExecutionsTable.c
_PLANNED = sa.and_(_EXECUTION.asset_key == sa.bindparam("k_asset"),
                   _EXECUTION.check_name == sa.bindparam("k_check"),
                   _EXECUTION.run_id == sa.bindparam("k_run"))
_UPDATE_PLANNED = {
    True: AssetCheckExecutionsTable.update().where(
        _PLANNED, _EXECUTION.partition == sa.bindparam("k_partition")),
    False: AssetCheckExecutionsTable.update().where(_PLANNED, _EXECUTION.partition.is_(None)),
}


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    dbapi_connection.execute("PRAGMA synchronous=NORMAL")


class PooledSqliteEventLogStorage(SqliteEventLogStorage):
    """``SqliteEventLogStorage`` reusing one engine per shard (see the module docstring).

    Configured in ``dagster.yaml`` as ``event_log_storage: {module: ml_assets.scenarios.event_log,
    class: PooledSqliteEventLogStorage, config: {base_dir: <dir>}}``; the files, schema and
    queries are Dagster's, so an instance can switch between this and the stock class.
    """

    def __init__(self, base_dir: str, inst_data=None):
        self._engines: OrderedDict[str, sa.Engine] = OrderedDict()
        self._tables: set[str] = set()
        self._asset_key_columns: set[str] = set()
        super().__init__(base_dir, inst_data=inst_data)

    @classmethod
    def from_config_value(cls, inst_data, config_value):  # noqa: D102 - Dagster's hook
        return cls(inst_data=inst_data, **config_value)

    def _engine(self, shard: str) -> sa.Engine:
        engine = self._engines.get(shard)
        if engine is not None:
            self._engines.move_to_end(shard)
            return engine
        engine = sa.create_engine(self.conn_string_for_shard(shard),
                                  connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS})
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        if shard not in self._initialized_dbs:
            self._initdb(engine)
            self._initialized_dbs.add(shard)
        self._engines[shard] = engine
        runs = [s for s in self._engines if s != INDEX_SHARD_NAME]
        for old in runs[:-OPEN_RUN_SHARDS]:
            self._engines.pop(old).dispose()
        return engine

    @contextmanager
    def _connect(self, shard: str) -> Iterator[sa.Connection]:
        with self._db_lock, self._engine(shard).connect() as conn, conn.begin():
            yield conn

    @property
    def supports_partition_subset_in_asset_materialization_planned_events(self) -> bool:
        """One planned event per asset of a range run (its partition subset), not one per
        partition: the stock storage turns this on only through the environment variable
        ``DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS``, and without it a range run over a
        year of hourly partitions spends a minute writing 8,760 planned events before its
        first step. The cost, Dagster's: the partitions of a range run that fails are not
        marked failed, only not materialized (``ml-assets run`` names the failure itself)."""
        return True

    def has_table(self, table_name: str) -> bool:  # noqa: D102
        # Asked before every check evaluation and asset event (a new engine each time upstream);
        # a table once there stays (migrations add tables, never drop them).
        if table_name not in self._tables:
            if not super().has_table(table_name):
                return False
            self._tables.add(table_name)
        return True

    def _has_asset_key_col_on_connection(self, conn, column_name: str) -> bool:  # noqa: D102
        # Inspected (PRAGMA table_info) before every materialization upstream: 3 s of a demo's
        # 8,700. A column once there stays (migrations add columns, never drop them).
        if column_name not in self._asset_key_columns:
            if not super()._has_asset_key_col_on_connection(conn, column_name):
                return False
            self._asset_key_columns.add(column_name)
        return True

    def store_event(self, event) -> None:  # noqa: D102 - Dagster's; see _store_run_check_evaluation
        if (event.dagster_event_type != DagsterEventType.ASSET_CHECK_EVALUATION
                or not event.run_id):
            super().store_event(event)
            return
        self._store_run_check_evaluation(event)

    def _store_run_check_evaluation(self, event) -> None:
        """A run's check evaluation, as Dagster stores it: the event in the run's shard and in
        the index shard, and the check's execution row (planned by the run) updated, or added
        when there was none. Here the event is serialized once, not twice, the index insert
        and the update are one transaction, not two, and the update is a statement compiled
        once: 13,600 evaluations of a demo, each 3.1 ms before.

        Raises
        ------
        DagsterInvariantViolationError
            More than one planned row matched (as Dagster raises).
        """
        evaluation = event.dagster_event.event_specific_data
        row = self._event_to_row(event)
        insert = SqlEventLogStorageTable.insert().values(**row)
        with self.run_connection(event.run_id) as conn:
            conn.execute(insert)
        status = (AssetCheckExecutionRecordStatus.SUCCEEDED if evaluation.passed
                  else AssetCheckExecutionRecordStatus.FAILED)
        target = evaluation.target_materialization_data
        with self.index_connection() as conn:
            event_id = conn.execute(insert).inserted_primary_key[0]
            values = {"execution_status": status.value, "evaluation_event": row["event"],
                      "evaluation_event_timestamp": self._event_insert_timestamp(event),
                      "evaluation_event_storage_id": event_id,
                      "materialization_event_storage_id": target.storage_id if target else None,
                      "partition": evaluation.partition}
            key = {"asset_key": evaluation.asset_key.to_string(),
                   "check_name": evaluation.check_name, "run_id": event.run_id}
            # parameters named as columns are the SET clause, the k_ ones the WHERE
            updated = conn.execute(_UPDATE_PLANNED[evaluation.partition is not None], {
                **values, "k_asset": key["asset_key"], "k_check": key["check_name"],
                "k_run": key["run_id"], "k_partition": evaluation.partition}).rowcount
            if updated == 0:  # no planned row (e.g. a step launcher without planned events)
                conn.execute(AssetCheckExecutionsTable.insert(), {**key, **values})
        if updated > 1:
            raise DagsterInvariantViolationError(
                f"Updated {updated} rows for asset check evaluation "
                f"{evaluation.asset_check_key} as a result of duplicate AssetCheckPlanned events.")

    def _store_asset_check_evaluation_planned(self, event, event_id) -> None:
        # Dagster's own serializes the event once per planned partition and compiles one INSERT
        # with a VALUES row each: quadratic in a range run's partitions (12 s before a year of
        # hourly partitions started). Here: serialized once, the same rows, one executemany.
        planned = event.dagster_event.event_specific_data
        subset = planned.partitions_subset
        row = {"asset_key": planned.asset_key.to_string(), "check_name": planned.check_name,
               "run_id": event.run_id,
               "execution_status": AssetCheckExecutionRecordStatus.PLANNED.value,
               "evaluation_event": serialize_value(event),
               "evaluation_event_timestamp": self._event_insert_timestamp(event),
               "evaluation_event_storage_id": event_id}
        with self.index_connection() as conn:
            conn.execute(AssetCheckExecutionsTable.insert(),
                         [{**row, "partition": key}
                          for key in (subset.get_partition_keys() if subset else [None])])

    def _dispose_engines(self) -> None:
        with self._db_lock:
            while self._engines:
                self._engines.popitem()[1].dispose()

    def wipe(self) -> None:  # noqa: D102 - the shard files are deleted: drop their engines first
        self._dispose_engines()
        super().wipe()

    def delete_events(self, run_id: str) -> None:  # noqa: D102 - as wipe
        self._dispose_engines()
        super().delete_events(run_id)

    def dispose(self) -> None:  # noqa: D102 - Dagster's hook
        self._dispose_engines()
        super().dispose()
