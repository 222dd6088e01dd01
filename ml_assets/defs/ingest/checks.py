"""Blocking contract checks on ingested partitions: a failing one stops features and scoring."""


import dagster as dg
import pandas as pd

from ml_assets.defs.partitions import checked_window, daily, hourly
from ml_assets.defs.resources import Project
from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.lake import daily_files, hourly_files
from ml_assets.lib.ingest.landing import label_feeds
from ml_assets.lib.ingest.quarantine import quarantine_dir

MAX_QUARANTINE_SHARE = 0.02  # above this a partition is too broken to build on


def _share(project: Project, asset: str, files) -> tuple[int, int]:
    valid = sum(pd.read_parquet(f, columns=[]).shape[0] for f in files)
    qdir = quarantine_dir(project.paths, asset)
    bad = sum(pd.read_parquet(q, columns=["row"]).shape[0] for f in files
              if (q := qdir / f.name).exists())
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

    @dg.asset_check(asset="raw_events", name="event_contract", blocking=True,
                    description="Quarantine share of the run's partitions is at most "
                                f"{MAX_QUARANTINE_SHARE:.0%} and every partition was written.")
    def event_contract(context: dg.AssetCheckExecutionContext, project: Project):
        window = checked_window(context, hourly_def, project.paths.lake / "raw_events")
        files, missing = hourly_files(project.paths.lake / "raw_events", *window)
        return _contract_result("raw_events", window, files, missing,
                                *_share(project, "raw_events", files))

    def feed_contract(asset: str):
        @dg.asset_check(asset=asset, name="label_contract", blocking=True,
                        description="Quarantine share of the run's label partitions is at most "
                                    f"{MAX_QUARANTINE_SHARE:.0%}.")
        def label_contract(context: dg.AssetCheckExecutionContext, project: Project):
            window = checked_window(context, daily_def, project.paths.lake / asset)
            files, missing = daily_files(project.paths.lake / asset, *window)
            return _contract_result(asset, window, files, missing, *_share(project, asset, files))
        return label_contract

    return [event_contract, *(feed_contract(a) for a in label_feeds(spec))]
