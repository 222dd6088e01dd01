"""One shape for blocking table-contract checks over the hourly partitions a run covers."""

from collections.abc import Callable

import dagster as dg
import pandas as pd

from ml_assets.defs.partitions import checked_window
from ml_assets.lib.core.lake import read_parquet_files
from ml_assets.lib.core.workspace import Workspace


def hourly_contract_result(context: dg.AssetCheckExecutionContext, project: dg.ResourceParam[Workspace],
                           partitions_def: dg.TimeWindowPartitionsDefinition, asset: str,
                           problems_of: Callable[[pd.DataFrame], list[str]],
                           metadata: dict | None = None) -> dg.AssetCheckResult:
    """Read the run's partitions of ``asset`` from the lake; ERROR when any are missing or
    ``problems_of`` names a contract violation."""
    table = project.catalog.table(asset)
    files, missing = table.coverage(*checked_window(context, partitions_def, table))
    df = read_parquet_files(files) if files else None
    problems = ([f"{len(missing)} partition(s) missing"] if missing else []) + (
        problems_of(df) if df is not None else [])
    return dg.AssetCheckResult(
        passed=not problems,
        severity=dg.AssetCheckSeverity.ERROR,
        description="ok" if not problems else "; ".join(problems),
        metadata={"rows": int(len(df)) if df is not None else 0, "problems": len(problems),
                  **(metadata or {})},
    )
