"""Serving checks: online/offline parity of features and scores (training/serving skew)."""

from datetime import datetime, timedelta

import dagster as dg
import pyarrow.parquet as pq

from ml_assets.lib.core.catalog import BATCH_SCORES, EVENT_FEATURES
from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.lake import day_floor
from ml_assets.lib.core.workspace import Workspace
from ml_assets.lib.features.parity import replay_parity
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
        if any(pq.read_metadata(f).num_rows for f in scores.coverage(start, end)[0]):
            return start
    return None


def build_serving_checks(spec: DatasetSpec) -> list:
    # Not partitioned like batch_scores: the verdict is about the newest complete day, whatever
    # hours the run covers, so no hour partition owns it.
    @dg.asset_check(asset="batch_scores", name="online_offline_parity",
                    description="Replays the newest complete day of events through the realtime "
                                "feature path and compares every feature and live-model score with "
                                "the batch pipeline's. Any difference is training/serving skew.")
    def online_offline_parity(project: dg.ResourceParam[Workspace]) -> dg.AssetCheckResult:
        day = parity_day(project)
        if day is None:
            return dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity.WARN,
                                       description="no complete day of features with scored "
                                                   "events yet")
        registry = project.registry
        models = {}  # scored the way the serving app scores: compiled trees when verified
        for _, version in live_versions(registry, spec):
            model = load_live_model(project.paths, registry.get_model(version))["model"]
            models[version] = compile_trees(model) or model
        report = replay_parity(project.paths, spec, day, models)
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
                      "seconds": float(report.seconds)})

    return [online_offline_parity]
