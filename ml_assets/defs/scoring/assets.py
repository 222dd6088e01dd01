"""Batch scores: every live model scores every event, each row tagged with its version."""


from datetime import UTC, datetime

import dagster as dg
import pandas as pd

from ml_assets.defs.contract_checks import hourly_contract_result, quarantine_blocked
from ml_assets.defs.freshness import HOURLY_FRESHNESS, freshness_policy
from ml_assets.defs.partitions import hour_key, hourly
from ml_assets.lib.core.catalog import EVENT_FEATURES, RAW_EVENTS
from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.lake import hours_between, read_parquet_files
from ml_assets.lib.core.workspace import Workspace
from ml_assets.lib.features.build import MissingUpstreamError, split_by_hour
from ml_assets.lib.features.contract import feature_contract_problems
from ml_assets.lib.release.rollout import acting_arm
from ml_assets.lib.scoring.batch import (
    check_features_computable,
    live_versions,
    load_live_model,
    score_frame,
)


def _blocked_hours(project: Workspace, spec: DatasetSpec, hours: list) -> set:
    """Hours a run of each alone would not score: events failing their contract (so no
    features) or features failing theirs."""
    table = project.catalog.table(EVENT_FEATURES)
    blocked = set(quarantine_blocked(project, RAW_EVENTS, hours))
    return blocked | {h for h in hours if h not in blocked and table.path(h).exists()
                      and not hourly_contract_result(
                          table, h, h + table.step,
                          lambda df: feature_contract_problems(df, spec)).passed}


def build_scoring_assets(spec: DatasetSpec) -> list:
    @dg.asset(
        name="batch_scores",
        group_name="scoring",
        partitions_def=hourly(spec),
        backfill_policy=dg.BackfillPolicy.single_run(),
        freshness_policy=freshness_policy(spec, HOURLY_FRESHNESS),
        deps=["event_features", "candidate_model"],
        kinds={"scikitlearn", "parquet"},
        owners=[spec.owner],
        description="Champion, challenger and previous model all score every event, so a kill "
                    "switch flip or promotion needs no recompute. Every row has model_version, "
                    "role, score, decision and acted (only the champion's decision acts).",
    )
    def batch_scores(context: dg.AssetExecutionContext, project: dg.ResourceParam[Workspace]) -> dict[str, pd.DataFrame | None]:
        start, end = context.partition_time_window
        registry = project.registry
        live = live_versions(registry, spec)
        if not any(role == "champion" for role, _ in live):
            raise dg.Failure("no champion model registered: materialize candidate_model first")
        models = []
        for role, version in live:
            card = registry.get_model(version)
            check_features_computable(card, spec)
            models.append((role, card, load_live_model(project.paths, card)))
        blocked = _blocked_hours(project, spec, hours_between(start, end))
        files, missing = project.catalog.table(EVENT_FEATURES).coverage(start, end)
        files = [f for f in files if project.catalog.table(EVENT_FEATURES).start(f.stem)
                 not in blocked]
        missing = [h for h in missing if h not in blocked]
        if missing:
            raise MissingUpstreamError(
                f"event_features lacks {len(missing)} partition(s) of this run (first: "
                f"{missing[0]:%Y-%m-%d-%H:00}); materialize event_features for them first")
        features = read_parquet_files(files)
        scores = score_frame(features, spec, models, datetime.now(UTC),
                             features_ref=f"event_features/{hour_key(start)}..{hour_key(end)}",
                             challenger_arm=acting_arm(registry, spec, features))
        champion = scores[scores["role"] == "champion"]
        context.add_output_metadata({
            "rows": len(scores),
            "events": len(features),
            "versions": dg.MetadataValue.json({r: v for r, v in live}),
            "champion_mean_score": float(champion["score"].mean()) if len(champion) else 0.0,
            "champion_decision_rate": float(champion["decision"].mean()) if len(champion) else 0.0,
        })
        by_hour = split_by_hour(scores, spec.event_ts, hours_between(start, end))
        for h in blocked:  # scored by no run of that hour alone either
            context.add_asset_metadata({"blocked_by": "an upstream contract"},
                                       partition_key=hour_key(h))
        return {hour_key(h): None if h in blocked else df for h, df in by_hour.items()}

    return [batch_scores]
