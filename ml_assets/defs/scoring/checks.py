"""Blocking score contract: a version on every row, finite scores in [0, 1], one champion row
per event - for each partition of the run."""


import dagster as dg

from ml_assets.defs.contract_checks import partition_contract_verdicts, per_partition
from ml_assets.defs.partitions import event_partitions
from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.workspace import Workspace
from ml_assets.lib.scoring.batch import score_contract_problems


def build_scoring_checks(spec: DatasetSpec) -> list:
    events_def = event_partitions(spec)

    @dg.asset_check(asset="batch_scores", name="score_contract", blocking=True,
                    partitions_def=events_def,
                    description="model_version on every row, finite scores in [0, 1], exactly "
                                "one champion row per event.")
    def score_contract(context: dg.AssetCheckExecutionContext, project: dg.ResourceParam[Workspace]):
        yield from per_partition(context, partition_contract_verdicts(
            context, project, events_def, "batch_scores",
            lambda df: score_contract_problems(df, spec)),
            dg.AssetCheckKey(dg.AssetKey("batch_scores"), "score_contract"))

    return [score_contract]
