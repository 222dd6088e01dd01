"""Batch scores: every live model scores every event, each row tagged with its version."""


from datetime import UTC, datetime

import dagster as dg
import pandas as pd

from ml_assets.defs.contract_checks import partition_problems, quarantine_blocked
from ml_assets.defs.freshness import event_freshness
from ml_assets.defs.metadata import by_version, record_partitions
from ml_assets.defs.partitions import event_key, event_partitions
from ml_assets.defs.resources import PartitionChunks
from ml_assets.lib.core.catalog import EVENT_FEATURES, RAW_EVENTS
from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.lake import periods_in, range_chunks, read_parquet_files
from ml_assets.lib.core.workspace import Workspace
from ml_assets.lib.features.build import MissingUpstreamError, split_by_period
from ml_assets.lib.features.contract import feature_contract_problems
from ml_assets.lib.release.rollout import arm_rule
from ml_assets.lib.scoring.batch import (
    check_features_computable,
    live_versions,
    load_live_model,
    score_frame,
)


def _blocked(project: Workspace, spec: DatasetSpec, starts: list) -> set:
    """Partitions a run of each alone would not score: events failing their contract (so no
    features) or features failing theirs."""
    blocked = set(quarantine_blocked(project, RAW_EVENTS, starts))
    judged = partition_problems(project.catalog.table(EVENT_FEATURES),
                                [h for h in starts if h not in blocked],
                                lambda df: feature_contract_problems(df, spec))
    return blocked | {h for h, verdict in judged.items() if verdict and verdict[0]}


def _version_figures(scores: pd.DataFrame, spec: DatasetSpec) -> dict[str, dict]:
    """Each partition's events and, by model version (role beside it), mean score and decision
    rate: one grouped pass over the run's scores."""
    period = scores[spec.event_ts].dt.floor(pd.Timedelta(spec.partition_step))
    stats = (scores.groupby([period.rename("period"), "model_version", "role"])
             .agg(events=("score", "size"), mean_score=("score", "mean"),
                  decision_rate=("decision", "mean")).reset_index())
    return {event_key(spec, p.to_pydatetime()): {
                "events": int(g["events"].max()),
                **by_version(g, {"mean_score": "mean_score", "decision_rate": "decision_rate"})}
            for p, g in stats.groupby("period")}


def build_scoring_assets(spec: DatasetSpec) -> list:
    @dg.asset(
        name="batch_scores",
        group_name="scoring",
        partitions_def=event_partitions(spec),
        backfill_policy=dg.BackfillPolicy.single_run(),
        freshness_policy=event_freshness(spec),
        deps=["event_features", "candidate_model"],
        kinds={"scikitlearn", "parquet"},
        owners=[spec.owner],
        description="Champion, challenger and previous model all score every event, so a kill "
                    "switch flip or promotion needs no recompute. Every row has model_version, "
                    "role, score, decision and acted (only the champion's decision acts). "
                    "Partitions before the first model's training cutoff stay unmaterialized on "
                    "purpose: no model existed at their time, and scoring them later would score "
                    "events that model was trained on.",
    )
    def batch_scores(context: dg.AssetExecutionContext, project: dg.ResourceParam[Workspace]) -> PartitionChunks:
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
        step = spec.partition_step
        starts = periods_in(start, end, step)
        blocked = _blocked(project, spec, starts)
        features_table = project.catalog.table(EVENT_FEATURES)
        files, missing = features_table.coverage(start, end)
        missing = [h for h in missing if h not in blocked]
        if missing:
            raise MissingUpstreamError(
                f"event_features lacks {len(missing)} partition(s) of this run (first: "
                f"{features_table.key(missing[0])}); materialize event_features for them first")
        file_of = {features_table.start(f.stem): f for f in files}
        scored_at, arm_of = datetime.now(UTC), arm_rule(registry, spec)
        features_ref = f"event_features/{event_key(spec, start)}..{event_key(spec, end)}"

        def scored_chunks():
            """One chunk's scores at a time: the IO manager writes them before the next."""
            for chunk in range_chunks([p for p in starts if p not in blocked], step):
                features = read_parquet_files([file_of[p] for p in chunk])
                scores = score_frame(features, spec, models, scored_at, features_ref,
                                     challenger_arm=arm_of(features))
                del features
                part = {event_key(spec, p): t
                        for p, t in split_by_period(scores, spec.event_ts, chunk, step).items()}
                record_partitions(context, part, _version_figures(scores, spec))
                del scores
                yield part
                del part
            # scored by no run of that partition alone either
            yield {event_key(spec, p): None for p in blocked}

        for p in blocked:
            context.add_asset_metadata({"blocked_by": "an upstream contract"},
                                       partition_key=event_key(spec, p))
        return PartitionChunks(scored_chunks())

    return [batch_scores]
