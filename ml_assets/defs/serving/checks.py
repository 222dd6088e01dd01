"""Serving checks: online/offline parity of features and scores (training/serving skew)."""

from datetime import datetime, timedelta

import dagster as dg
import pyarrow.parquet as pq
from dagster._core.storage.asset_check_execution_record import (
    COMPLETED_ASSET_CHECK_EXECUTION_RECORD_STATUSES,
)

from ml_assets.lib.core.catalog import BATCH_SCORES, EVENT_FEATURES
from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.lake import day_floor
from ml_assets.lib.core.lake_store import read_source
from ml_assets.lib.core.workspace import Workspace
from ml_assets.lib.features.parity import replay_fingerprint, replay_inputs, replay_parity
from ml_assets.lib.scoring.batch import live_versions, load_live_model
from ml_assets.lib.serving.tree_predictor import compile_trees


def parity_day(project: dg.ResourceParam[Workspace]) -> datetime | None:
    """The newest day with all 24 hours of event features and at least one scored event (a
    day without events - a closed store's Sunday, the days after a historical dataset's last
    event - has nothing to replay)."""
    catalog = project.catalog
    scores = catalog.table(BATCH_SCORES)
    days = sorted({day_floor(h) for h in scores.partitions()}, reverse=True)
    for start in days:
        end = start + timedelta(days=1)
        if catalog.table(EVENT_FEATURES).missing(start, end):
            continue
        if any(pq.read_metadata(read_source(f)).num_rows for f in scores.coverage(start, end)[0]):
            return start
    return None


def build_serving_checks(spec: DatasetSpec) -> list:
    # Not partitioned like batch_scores: the verdict is about the newest complete day, whatever
    # hours the run covers, so no hour partition owns it.
    @dg.asset_check(asset="batch_scores", name="online_offline_parity",
                    description="Replays the newest complete day of events through the realtime "
                                "feature path and compares every feature and live-model score with "
                                "the batch pipeline's. Any difference is training/serving skew. "
                                "While nothing it reads has changed, it repeats the verdict of "
                                "the run that replayed (metadata replayed_in_run).")
    def online_offline_parity(context: dg.AssetCheckExecutionContext,
                              project: dg.ResourceParam[Workspace]) -> dg.AssetCheckResult:
        day = parity_day(project)
        if day is None:
            return dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity.WARN,
                                       description="no complete day of features with scored "
                                                   "events yet")
        registry = project.registry
        cards = {version: registry.get_model(version)
                 for _, version in live_versions(registry, spec)}
        inputs = replay_inputs(project.paths, spec, day)  # listed once: fingerprinted and read
        fingerprint = replay_fingerprint(inputs, spec, day,
                                         {v: c["artifact_sha256"] for v, c in cards.items()})
        reused = _unchanged_verdict(context, fingerprint)
        if reused is not None:
            return reused
        models = {}  # scored the way the serving app scores: compiled trees when verified
        for version, card in cards.items():
            model = load_live_model(project.paths, card)["model"]
            models[version] = compile_trees(model) or model
        report = replay_parity(project.paths, spec, day, models, inputs=inputs)
        skewed = {k: v for k, v in report.feature_differences.items() if v}
        description = "zero differences" if report.ok else (
            f"skew on {day:%Y-%m-%d}: feature differences {skewed}, score differences "
            f"{report.score_differences}, missing in batch {report.missing_in_batch}; "
            f"examples {report.examples}")
        return dg.AssetCheckResult(
            passed=bool(report.ok), severity=dg.AssetCheckSeverity.ERROR,
            description=description[:2000],
            metadata={"day": report.day, "events": int(report.events),
                      "features_compared": int(report.features_compared),
                      "feature_differences": int(sum(report.feature_differences.values())),
                      "features_with_differences": len(skewed),
                      "score_differences": int(sum(report.score_differences.values())),
                      "max_abs_score_difference": float(report.max_abs_score_difference),
                      "seconds": float(report.seconds),
                      "replayed_in_run": context.run.run_id,
                      INPUTS_FINGERPRINT: fingerprint})

    return [online_offline_parity]


INPUTS_FINGERPRINT = "inputs_fingerprint"


def _unchanged_verdict(context: dg.AssetCheckExecutionContext,
                       fingerprint: str) -> dg.AssetCheckResult | None:
    """The previous evaluation's verdict, again, if it replayed exactly these inputs
    (``replay_fingerprint``); None when there is none or anything changed. The fingerprint is
    read from the instance's event log, which the lake's writers cannot rewrite."""
    history = context.instance.event_log_storage.get_asset_check_execution_history(
        context.check_specs[0].key, limit=1,
        status=COMPLETED_ASSET_CHECK_EXECUTION_RECORD_STATUSES)
    if not history or history[0].event is None:
        return None
    evaluation = history[0].event.dagster_event.event_specific_data
    metadata = {k: v.value for k, v in evaluation.metadata.items()}
    if metadata.get(INPUTS_FINGERPRINT) != fingerprint:
        return None
    return dg.AssetCheckResult(passed=evaluation.passed, severity=evaluation.severity,
                               description=evaluation.description, metadata=metadata)
