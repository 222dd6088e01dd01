"""Blocking contract checks on ingested partitions: a failing one stops features and scoring."""


import dagster as dg
import pandas as pd

from ml_assets.defs.partitions import checked_window, daily, hourly
from ml_assets.lib.core.catalog import QUARANTINE_FILES, RAW_EVENTS
from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.workspace import Workspace
from ml_assets.lib.ingest.landing import label_feeds

MAX_QUARANTINE_SHARE = 0.02  # above this a partition is too broken to build on


def _share(project: dg.ResourceParam[Workspace], asset: str, files) -> tuple[int, int]:
    valid = sum(pd.read_parquet(f, columns=[]).shape[0] for f in files)
    quarantine = project.catalog.table(QUARANTINE_FILES)
    bad = sum(pd.read_parquet(q, columns=["row"]).shape[0] for f in files
              if (q := quarantine.path(f"{asset}/{f.stem}")).exists())
    return valid, bad


def _contract_result(asset: str, window, files, missing, valid: int, bad: int) -> dg.AssetCheckResult:
    share = bad / max(valid + bad, 1)
    passed = not missing and share <= MAX_QUARANTINE_SHARE
    why = ("ok" if passed else f"{len(missing)} partition(s) not materialized" if missing
           else f"quarantine share {share:.2%} above {MAX_QUARANTINE_SHARE:.0%}: inspect the "
                "`quarantine` asset, fix the source and rerun the partition")
    return dg.AssetCheckResult(
        passed=bool(passed),
        severity=dg.AssetCheckSeverity.ERROR,
        description=f"{asset} contract over {window[0]:%Y-%m-%d %H:00}..{window[1]:%Y-%m-%d %H:00}: {why}",
        metadata={"valid_rows": int(valid), "quarantined_rows": int(bad),
                  "quarantine_share": float(share), "partitions_checked": len(files),
                  "max_quarantine_share": MAX_QUARANTINE_SHARE},
    )


def build_ingest_checks(spec: DatasetSpec) -> list:
    hourly_def, daily_def = hourly(spec), daily(spec)

    @dg.asset_check(asset=RAW_EVENTS, name="event_contract", blocking=True,
                    description="Quarantine share of the run's partitions is at most "
                                f"{MAX_QUARANTINE_SHARE:.0%} and every partition was written.")
    def event_contract(context: dg.AssetCheckExecutionContext, project: dg.ResourceParam[Workspace]):
        table = project.catalog.table(RAW_EVENTS)
        window = checked_window(context, hourly_def, table)
        files, missing = table.coverage(*window)
        return _contract_result(RAW_EVENTS, window, files, missing,
                                *_share(project, RAW_EVENTS, files))

    def feed_contract(asset: str):
        @dg.asset_check(asset=asset, name="label_contract", blocking=True,
                        description="Quarantine share of the run's label partitions is at most "
                                    f"{MAX_QUARANTINE_SHARE:.0%}.")
        def label_contract(context: dg.AssetCheckExecutionContext, project: dg.ResourceParam[Workspace]):
            table = project.catalog.table(asset)
            window = checked_window(context, daily_def, table)
            files, missing = table.coverage(*window)
            return _contract_result(asset, window, files, missing, *_share(project, asset, files))
        return label_contract

    return [event_contract, *(feed_contract(a) for a in label_feeds(spec))]
