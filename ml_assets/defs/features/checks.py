"""Blocking feature contract: a broken feature table stops scoring instead of scoring NaNs."""


import dagster as dg

from ml_assets.defs.contract_checks import partition_contract_verdicts, per_partition
from ml_assets.defs.partitions import event_partitions
from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.workspace import Workspace
from ml_assets.lib.features.contract import feature_contract_problems


def build_feature_checks(spec: DatasetSpec) -> list:
    events_def = event_partitions(spec)

    @dg.asset_check(asset="event_features", name="feature_contract", blocking=True,
                    partitions_def=events_def,
                    description="Columns, dtypes, finiteness, ranges and allowed nulls of every "
                                "declared feature, for each partition of the run.")
    def feature_contract(context: dg.AssetCheckExecutionContext, project: dg.ResourceParam[Workspace]):
        yield from per_partition(context, partition_contract_verdicts(
            context, project, events_def, "event_features",
            lambda df: feature_contract_problems(df, spec),
            {"feature_schema_version": spec.schema_version}),
            dg.AssetCheckKey(dg.AssetKey("event_features"), "feature_contract"))

    return [feature_contract]
