"""Blocking score contract: a version on every row, finite scores in [0, 1], one champion row
per event."""


import dagster as dg

from ml_assets.defs.partitions import checked_window, hourly
from ml_assets.defs.resources import Project
from ml_assets.lib.datasets import DatasetSpec
from ml_assets.lib.lake import hourly_files, read_parquet_files
from ml_assets.lib.scoring import score_contract_problems


def build_scoring_checks(spec: DatasetSpec) -> list:
    hourly_def = hourly(spec)

    @dg.asset_check(asset="batch_scores", name="score_contract", blocking=True,
                    description="model_version on every row, finite scores in [0, 1], exactly "
                                "one champion row per event.")
    def score_contract(context: dg.AssetCheckExecutionContext, project: Project):
        window = checked_window(context, hourly_def, project.paths.lake / "batch_scores")
        files, missing = hourly_files(project.paths.lake / "batch_scores", *window)
        df = read_parquet_files(files) if files else None
        problems = ([f"{len(missing)} partition(s) missing"] if missing else []) + (
            score_contract_problems(df, spec) if df is not None else [])
        return dg.AssetCheckResult(
            passed=not problems, severity=dg.AssetCheckSeverity.ERROR,
            description="ok" if not problems else "; ".join(problems),
            metadata={"rows": int(len(df)) if df is not None else 0, "problems": len(problems)})

    return [score_contract]
