"""Serving checks: drill recency (90 days), rollback readiness, online/offline parity."""

from datetime import UTC, datetime, timedelta

import dagster as dg

from ml_assets.defs.resources import Project
from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.lake import hourly_files
from ml_assets.lib.features.parity import replay_parity
from ml_assets.lib.release.rollback import drill_status, rollback_readiness
from ml_assets.lib.scoring.batch import live_versions, load_live_model
from ml_assets.lib.serving.tree_predictor import compile_trees


def parity_day(project: Project) -> datetime | None:
    """The newest day with all 24 hours of event features and some batch scores."""
    lake = project.paths.lake
    days = sorted({p.stem[:10] for p in (lake / "batch_scores").glob("*.parquet")}, reverse=True)
    for day in days:
        start = datetime.fromisoformat(day).replace(tzinfo=UTC)
        _, missing = hourly_files(lake / "event_features", start, start + timedelta(days=1))
        if not missing:
            return start
    return None


def build_serving_checks(spec: DatasetSpec) -> list:
    @dg.asset_check(asset="rollback_drills", name="drill_recency",
                    description="Fails when the last successful rollback drill is older than 90 "
                                "days (or there is none): an unexercised rollback is theoretical.")
    def drill_recency(project: Project) -> dg.AssetCheckResult:
        status = drill_status(project.registry, spec)
        return dg.AssetCheckResult(
            passed=bool(status["ok"]), severity=dg.AssetCheckSeverity.ERROR,
            description=status["reason"],
            metadata={"age_days": float(status["age_days"] if status["age_days"] is not None
                                        else -1.0),
                      "last_successful_drill": status["last_successful_drill"] or "never"})

    @dg.asset_check(asset="rollback_drills", name="rollback_readiness",
                    description="The previous model can be served right now: artifact present "
                                "and SHA-256 verified, features still computable.")
    def readiness_check(project: Project) -> dg.AssetCheckResult:
        ready = rollback_readiness(project.registry, project.paths, spec)
        return dg.AssetCheckResult(
            passed=bool(ready.ok), severity=dg.AssetCheckSeverity.ERROR,
            description="ok" if ready.ok else "; ".join(ready.reasons),
            metadata={"previous_version": ready.version or "none",
                      "problems": len(ready.reasons)})

    @dg.asset_check(asset="batch_scores", name="online_offline_parity",
                    description="Replays the newest complete day of events through the realtime "
                                "feature path and compares every feature and live-model score with "
                                "the batch pipeline's. Any difference is training/serving skew.")
    def online_offline_parity(project: Project) -> dg.AssetCheckResult:
        day = parity_day(project)
        if day is None:
            return dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity.WARN,
                                       description="no complete day of features and scores yet")
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

    return [drill_recency, readiness_check, online_offline_parity]
