"""Checks over partitioned assets give each partition the verdict a run of that partition alone
gives, whatever range the run covers.

Such a check is partitioned like its asset (``partitions_def`` of ``@asset_check`` or of each
``AssetCheckSpec`` of a ``@multi_asset_check``). It computes one :class:`dagster.AssetCheckResult`
per partition of its run and :func:`per_partition` records each one under its partition key,
aimed at that partition's latest materialization: Dagster keeps a status per partition (the
check's partition grid in the UI, ``event_log_storage.get_asset_check_state``), so a range run
over N partitions leaves N verdicts and a later run of one partition changes only that one.

Dagster cannot stop part of a step, partitioned check or not: a failed blocking evaluation fails
the check's whole step and so skips the downstream step for every partition of the range. Inside
a multi-partition run the failed partitions are therefore recorded as ERROR but not blocking,
and each downstream asset leaves them out itself with the same verdict function the check uses
(:func:`quarantine_blocked`, :func:`partition_contract_verdicts`); a run of one partition blocks
the Dagster way."""

from collections.abc import Callable, Iterator, Mapping
from datetime import datetime

import dagster as dg
import pandas as pd
import pyarrow.parquet as pq
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluation,
    AssetCheckEvaluationTargetMaterializationData,
)

from ml_assets.defs.partitions import checked_window
from ml_assets.lib.core.catalog import QUARANTINE_FILES
from ml_assets.lib.core.lake import range_chunks, read_parquet_groups
from ml_assets.lib.core.lake_store import read_source
from ml_assets.lib.core.lake_table import LakeTable
from ml_assets.lib.core.workspace import Workspace
from ml_assets.lib.ingest.quarantine import MAX_QUARANTINE_SHARE, quarantine_excess


def checked_partitions(context, partitions_def: dg.TimeWindowPartitionsDefinition,
                       table: LakeTable) -> list[tuple[str, datetime, datetime]]:
    """``(partition_key, start, end)`` of every partition the check's run covers (the latest
    written one when the check runs alone)."""
    lo, hi = checked_window(context, partitions_def, table)
    windows = partitions_def.get_partition_keys_in_time_window(dg.TimeWindow(lo, hi))
    return [(k, (w := partitions_def.time_window_for_partition_key(k)).start, w.end)
            for k in windows]


def _targets(context, asset_key: dg.AssetKey, partitions: set[str]
             ) -> dict[str, AssetCheckEvaluationTargetMaterializationData]:
    """Partition -> its latest materialization (absent when it has none). Dagster shows a
    partition's check status only while the evaluation targets that partition's latest
    materialization; an evaluation without a target is cleared by any materialization.

    One query per round, newest first: the first record of each still-unresolved partition is
    its latest. A range run's own materializations are the newest, so one round usually
    resolves every partition; each round resolves at least one, or ends the search."""
    found: dict[str, AssetCheckEvaluationTargetMaterializationData] = {}
    remaining = set(partitions)
    while remaining:
        records = context.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=asset_key, asset_partitions=sorted(remaining)),
            limit=len(remaining)).records
        for r in records:
            if r.partition_key in remaining:
                found[r.partition_key] = AssetCheckEvaluationTargetMaterializationData(
                    run_id=r.run_id, storage_id=r.storage_id, timestamp=r.timestamp)
                remaining.discard(r.partition_key)
        if not records:
            break
    return found


def per_partition(context, results: Mapping[str, dg.AssetCheckResult]
                  | list[tuple[str, dg.AssetCheckResult]],
                  default_key: dg.AssetCheckKey | None = None) -> Iterator:
    """Record each partition's result under its key, then the check's (valueless) output.

    Parameters
    ----------
    context : dagster.AssetCheckExecutionContext
        The running check (one or several checks of a multi-asset check).
    results : Mapping[str, dagster.AssetCheckResult] or list of (str, dagster.AssetCheckResult)
        Partition key -> that partition's result, or (key, result) pairs when a multi-asset
        check has several results per partition (each naming ``asset_key`` and ``check_name``).
    default_key : dagster.AssetCheckKey, optional
        The check key for results that name none (a single ``@asset_check``).

    Yields
    ------
    AssetCheckEvaluation or dagster.Output
        One evaluation per partition and one output per check key seen.
    """
    assets_def = context.op_execution_context.assets_def
    pairs = list(results.items() if isinstance(results, Mapping) else results)
    single = len({partition for partition, _ in pairs}) == 1
    keyed = [(partition, dg.AssetCheckKey(r.asset_key, r.check_name) if r.check_name
               else default_key, r) for partition, r in pairs]
    partitions_of: dict[dg.AssetKey, set[str]] = {}
    for partition, key, _ in keyed:
        partitions_of.setdefault(key.asset_key, set()).add(partition)
    # one lookup per asset, not per partition: a year of hourly partitions is 8,760 queries
    targets = {a: _targets(context, a, parts) for a, parts in partitions_of.items()}
    keys = []
    for partition, key, r in keyed:
        spec = assets_def.get_spec_for_check_key(key)
        # one partition: Dagster's own block; several: downstream assets skip failed partitions
        yield AssetCheckEvaluation(
            asset_key=key.asset_key, check_name=key.name, passed=r.passed, metadata=r.metadata,
            target_materialization_data=targets[key.asset_key].get(partition),
            severity=r.severity, description=r.description,
            blocking=bool(spec.blocking and single), partition=partition)
        if key not in keys:
            keys.append(key)
    for key in keys:
        yield dg.Output(None, output_name=assets_def.get_output_name_for_asset_check_key(key))


def _share(project: Workspace, asset: str, files) -> tuple[int, int]:
    """(valid rows, quarantined rows) of partition files, from Parquet footers: no data read."""
    quarantine = project.catalog.table(QUARANTINE_FILES)
    valid = sum(pq.read_metadata(read_source(f)).num_rows for f in files)
    bad = sum(pq.read_metadata(read_source(q)).num_rows for f in files
              if (q := quarantine.path(f"{asset}/{f.stem}")).exists())
    return valid, bad


def ingest_contract(project: Workspace, asset: str, lo: datetime, hi: datetime
                    ) -> dg.AssetCheckResult:
    """The ingest contract of ``asset`` over ``[lo, hi)`` (callers pass one partition): ERROR when
    a partition was not written or its quarantine share is above :data:`MAX_QUARANTINE_SHARE`
    beyond chance (``quarantine.quarantine_excess``)."""
    files, missing = project.catalog.table(asset).coverage(lo, hi)
    valid, bad = _share(project, asset, files)
    excess, share, p_value = quarantine_excess(valid, bad)
    passed = not missing and not excess
    counted = f"quarantine share {share:.2%} ({bad} of {valid + bad} rows)"
    why = (f"{len(missing)} partition(s) not materialized" if missing else
           f"{counted} above {MAX_QUARANTINE_SHARE:.0%} beyond chance (binomial p={p_value:.1e}):"
           " inspect the `quarantine` asset, fix the source and rerun the partition" if excess
           else f"ok, {counted}" + (f" within what a {MAX_QUARANTINE_SHARE:.0%} rate gives "
                                    f"{valid + bad} rows by chance (p={p_value:.2g})"
                                    if share > MAX_QUARANTINE_SHARE else ""))
    return dg.AssetCheckResult(
        passed=bool(passed),
        severity=dg.AssetCheckSeverity.ERROR,
        description=f"{asset} contract over {lo:%Y-%m-%d %H:00}..{hi:%Y-%m-%d %H:00}: {why}",
        metadata={"valid_rows": int(valid), "quarantined_rows": int(bad),
                  "quarantine_share": float(share), "quarantine_p_value": float(p_value),
                  "partitions_checked": len(files), "max_quarantine_share": MAX_QUARANTINE_SHARE},
    )


def quarantine_blocked(project: Workspace, asset: str, starts: list[datetime]) -> list[datetime]:
    """Partitions of ``asset`` (by start) whose written file fails the ingest contract, so that
    nothing is built on them: the per-partition block of :func:`ingest_contract`."""
    table = project.catalog.table(asset)
    return [s for s in starts if table.path(s).exists()
            and not ingest_contract(project, asset, s, s + table.step).passed]


def partition_problems(table: LakeTable, starts: list[datetime],
                       problems_of: Callable[[pd.DataFrame], list[str]],
                       ) -> dict[datetime, tuple[list[str], int] | None]:
    """Partition start -> (``problems_of`` its rows, its row count); None when not written.

    The partitions are read a week at a time (``lake.range_chunks``: a year's range holds one
    week in memory) and each week is judged in one call of ``problems_of`` per Parquet schema
    (one, unless writers disagree; ``lake.read_parquet_groups``); only when that finds a
    problem is each of its partitions judged on its own, so a verdict is always that of the
    partition's own rows (a problem among all rows that no single partition has, e.g. an id in
    two partitions, fails none)."""
    out: dict[datetime, tuple[list[str], int] | None] = {}
    for chunk in range_chunks(sorted(starts), table.step):
        files, _ = table.coverage(chunk[0], chunk[-1] + table.step)
        wanted = {table.path(s) for s in chunk}
        groups = read_parquet_groups([f for f in files if f in wanted])  # one per schema
        rows_of = {table.start(f.stem): (df, rows) for df, slices in groups
                   for f, rows in slices.items()}
        clean = bool(rows_of) and not any(problems_of(df) for df, _ in groups)
        for lo in chunk:
            if lo not in rows_of:
                out[lo] = None
                continue
            df, rows = rows_of[lo]
            own = [] if clean else problems_of(df.iloc[rows].reset_index(drop=True))
            out[lo] = own, rows.stop - rows.start
    return {lo: out[lo] for lo in starts}


def partition_contract_verdicts(context, project: Workspace,
                                partitions_def: dg.TimeWindowPartitionsDefinition, asset: str,
                                problems_of: Callable[[pd.DataFrame], list[str]],
                                metadata: dict | None = None) -> dict[str, dg.AssetCheckResult]:
    """Partition key -> the contract of that partition of ``asset`` for the check's run
    (:func:`partition_problems`): ERROR when it is missing or ``problems_of`` names a
    violation of its rows."""
    table = project.catalog.table(asset)
    partitions = checked_partitions(context, partitions_def, table)
    judged = partition_problems(table, [lo for _, lo, _ in partitions], problems_of)
    out = {}
    for key, lo, _ in partitions:
        problems, rows = judged[lo] or (["1 partition(s) missing"], 0)
        out[key] = dg.AssetCheckResult(
            passed=not problems,
            severity=dg.AssetCheckSeverity.ERROR,
            description="ok" if not problems else "; ".join(problems),
            metadata={"rows": int(rows), "problems": len(problems), **(metadata or {})})
    return out
