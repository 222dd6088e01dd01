"""Blocking feature contract: a broken feature table stops scoring instead of scoring NaNs."""


import dagster as dg

from ml_assets.defs.partitions import checked_window, hourly
from ml_assets.defs.resources import Project
from ml_assets.lib.datasets import DatasetSpec
from ml_assets.lib.feature_contract import feature_contract_problems
from ml_assets.lib.lake import hourly_files, read_parquet_files


def build_feature_checks(spec: DatasetSpec) -> list:
    hourly_def = hourly(spec)

    @dg.asset_check(asset="event_features", name="feature_contract", blocking=True,
                    description="Columns, dtypes, finiteness, ranges and allowed nulls of every "
                                "declared feature, over the run's partitions.")
    def feature_contract(context: dg.AssetCheckExecutionContext, project: Project):
        window = checked_window(context, hourly_def, project.paths.lake / "event_features")
        files, missing = hourly_files(project.paths.lake / "event_features", *window)
        df = read_parquet_files(files) if files else None
        problems = ([f"{len(missing)} partition(s) missing"] if missing else []) + (
            feature_contract_problems(df, spec) if df is not None else [])
        return dg.AssetCheckResult(
            passed=not problems,
            severity=dg.AssetCheckSeverity.ERROR,
            description="ok" if not problems else "; ".join(problems),
            metadata={"rows": int(len(df)) if df is not None else 0,
                      "problems": len(problems),
                      "feature_schema_version": spec.schema_version},
        )

    return [feature_contract]
