"""Point-in-time features, per event partition, computed by one vectorized DuckDB pass per
range."""


import time

import dagster as dg

from ml_assets.defs.contract_checks import quarantine_blocked
from ml_assets.defs.freshness import event_freshness
from ml_assets.defs.metadata import record_partitions
from ml_assets.defs.partitions import event_key, event_partitions, lookback_partitions
from ml_assets.defs.resources import PartitionChunks
from ml_assets.lib.core.catalog import RAW_EVENTS
from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.lake import DAY, periods_in
from ml_assets.lib.core.workspace import Workspace
from ml_assets.lib.features.build import build_features, split_by_period


def lookback_deps(spec: DatasetSpec) -> list[dg.AssetDep]:
    """What a feature build of a range reads: ``raw_events`` and ``raw_labels`` from the
    spec's look-back before the range's start (on any engine)."""
    return [
        dg.AssetDep("raw_events", partition_mapping=dg.TimeWindowPartitionMapping(
            start_offset=-lookback_partitions(spec, spec.partition_step),
            allow_nonexistent_upstream_partitions=True)),
        dg.AssetDep("raw_labels", partition_mapping=dg.TimeWindowPartitionMapping(
            start_offset=-lookback_partitions(spec, DAY),
            allow_nonexistent_upstream_partitions=True)),
    ]


def build_feature_assets(spec: DatasetSpec) -> list:
    step = spec.partition_step

    @dg.asset(
        name="event_features",
        group_name="features",
        partitions_def=event_partitions(spec),
        backfill_policy=dg.BackfillPolicy.single_run(),
        freshness_policy=event_freshness(spec),
        deps=lookback_deps(spec),
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
    def event_features(context: dg.AssetExecutionContext, project: dg.ResourceParam[Workspace]) -> PartitionChunks:
        start, end = context.partition_time_window
        # a partition whose events fail their contract gets no features, as a run of it alone
        blocked = {event_key(spec, p) for p in
                   quarantine_blocked(project, RAW_EVENTS, periods_in(start, end, step))}
        for key in blocked:
            context.add_asset_metadata({"blocked_by": "raw_events event_contract"},
                                       partition_key=key)
        context.add_output_metadata({"feature_schema_version": spec.schema_version})

        def feature_chunks():
            """One chunk's features at a time: the IO manager writes them before the next."""
            t0, rows = time.perf_counter(), 0
            for lo, hi, chunk in build_features(project.paths, spec, start, end):
                periods = split_by_period(chunk, spec.event_ts, periods_in(lo, hi, step), step)
                part = {event_key(spec, p): t for p, t in periods.items()}
                part.update(dict.fromkeys(blocked & part.keys()))
                del chunk, periods  # only ``part`` holds the chunk's tables now
                rows += sum(len(t) for t in part.values() if t is not None)
                # from_pandas stores NaN as null, so null_count is what isna() would count
                record_partitions(context, part, {
                    key: {f"null_share/{f}": t[f].null_count / len(t) for f in spec.feature_names}
                    for key, t in part.items() if t is not None and len(t)})
                yield part
                del part
            seconds = time.perf_counter() - t0
            # the range's timing describes the run, not any one partition: logged once
            context.log.info(f"{rows:,} feature rows in {seconds:.1f} s "
                             f"({rows / seconds if seconds else 0:,.0f} rows/s)")

        return PartitionChunks(feature_chunks())

    return [event_features]
