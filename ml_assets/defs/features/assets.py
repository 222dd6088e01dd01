"""Point-in-time features, hourly, computed by one vectorized DuckDB pass per range."""


import time
from datetime import timedelta

import dagster as dg
import pandas as pd

from ml_assets.defs.contract_checks import quarantine_blocked
from ml_assets.defs.freshness import HOURLY_FRESHNESS, freshness_policy
from ml_assets.defs.partitions import hour_key, hourly
from ml_assets.lib.core.catalog import RAW_EVENTS
from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.lake import hours_between
from ml_assets.lib.core.workspace import Workspace
from ml_assets.lib.features.build import build_features, split_by_hour


def build_feature_assets(spec: DatasetSpec) -> list:
    lookback_hours = int(spec.lookback / timedelta(hours=1))
    lookback_days = -(-lookback_hours // 24)

    @dg.asset(
        name="event_features",
        group_name="features",
        partitions_def=hourly(spec),
        backfill_policy=dg.BackfillPolicy.single_run(),
        freshness_policy=freshness_policy(spec, HOURLY_FRESHNESS),
        deps=[
            dg.AssetDep("raw_events", partition_mapping=dg.TimeWindowPartitionMapping(
                start_offset=-lookback_hours, allow_nonexistent_upstream_partitions=True)),
            dg.AssetDep("raw_labels", partition_mapping=dg.TimeWindowPartitionMapping(
                start_offset=-lookback_days, allow_nonexistent_upstream_partitions=True)),
        ],
        kinds={"duckdb", "parquet"},
        owners=[spec.owner],
        description=(
            "One row per event with every declared feature, computed point-in-time: windows "
            "cover [t - window, t) and label aggregates only labels with label_ts < t. "
            f"Feature schema version {spec.schema_version}; look-back {spec.lookback}."
        ),
        metadata={"feature_schema_version": spec.schema_version,
                  "features": dg.MetadataValue.md(
                      "\n".join(f"- `{f.name}`: {type(f).__name__}" for f in spec.features))},
    )
    def event_features(context: dg.AssetExecutionContext, project: dg.ResourceParam[Workspace]) -> dict[str, pd.DataFrame | None]:
        start, end = context.partition_time_window
        t0 = time.perf_counter()
        out: dict[str, pd.DataFrame | None] = {}
        for lo, hi, chunk in build_features(project.paths, spec, start, end):
            for h, df in split_by_hour(chunk, spec.event_ts, hours_between(lo, hi)).items():
                out[hour_key(h)] = df
        # an hour whose events fail their contract gets no features, as a run of it alone
        for h in quarantine_blocked(project, RAW_EVENTS, hours_between(start, end)):
            out[hour_key(h)] = None
            context.add_asset_metadata({"blocked_by": "raw_events event_contract"},
                                       partition_key=hour_key(h))
        built = [df for df in out.values() if df is not None]
        seconds = time.perf_counter() - t0
        rows = sum(len(df) for df in built)
        nulls = pd.concat(built)[spec.feature_names].isna().mean() if rows else None
        context.add_output_metadata({
            "rows": rows,
            "seconds": float(seconds),
            "rows_per_second": float(rows / seconds) if seconds else 0.0,
            "feature_schema_version": spec.schema_version,
            **({f"null_share/{k}": float(v) for k, v in nulls.items()} if nulls is not None else {}),
        })
        return out

    return [event_features]
