"""Blocking contract checks on ingested partitions: a failing one stops features and scoring.

Each partition of the run gets its own verdict (``defs/contract_checks.py``): a range run fails
exactly the partitions a run of each alone would fail."""


import dagster as dg

from ml_assets.defs.contract_checks import (
    MAX_QUARANTINE_SHARE,
    checked_partitions,
    ingest_contract,
    per_partition,
)
from ml_assets.defs.partitions import daily, event_partitions
from ml_assets.lib.core.catalog import RAW_EVENTS
from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.workspace import Workspace
from ml_assets.lib.ingest.landing import label_feeds


def build_ingest_checks(spec: DatasetSpec) -> list:
    events_def, daily_def = event_partitions(spec), daily(spec)

    def verdicts(context, project: Workspace, asset: str, partitions_def):
        table = project.catalog.table(asset)
        return {k: ingest_contract(project, asset, lo, hi)
                for k, lo, hi in checked_partitions(context, partitions_def, table)}

    @dg.asset_check(asset=RAW_EVENTS, name="event_contract", blocking=True,
                    partitions_def=events_def,
                    description="Each partition of the run was written and its quarantine "
                                f"share is not above {MAX_QUARANTINE_SHARE:.0%} beyond chance "
                                "(one-sided binomial test at p<0.001 for the partition's rows: "
                                "one bad row of an hour's five is not an outage).")
    def event_contract(context: dg.AssetCheckExecutionContext, project: dg.ResourceParam[Workspace]):
        yield from per_partition(context, verdicts(context, project, RAW_EVENTS, events_def),
                                 dg.AssetCheckKey(dg.AssetKey(RAW_EVENTS), "event_contract"))

    def feed_contract(asset: str):
        @dg.asset_check(asset=asset, name="label_contract", blocking=True,
                        partitions_def=daily_def,
                        description="Quarantine share of each label partition of the run is "
                                    f"not above {MAX_QUARANTINE_SHARE:.0%} beyond chance "
                                    "(one-sided binomial test at p<0.001).")
        def label_contract(context: dg.AssetCheckExecutionContext, project: dg.ResourceParam[Workspace]):
            yield from per_partition(context, verdicts(context, project, asset, daily_def),
                                     dg.AssetCheckKey(dg.AssetKey(asset), "label_contract"))
        return label_contract

    return [event_contract, *(feed_contract(a) for a in label_feeds(spec))]
