"""Serving assets: microbatch scores (scored as files land) and the rollback drill record."""

import getpass

import dagster as dg

from ml_assets.defs.resources import Project
from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.release.rollback import run_rollback_drill
from ml_assets.lib.scoring.microbatch import score_files
from ml_assets.serving.app import running_server


class MicrobatchConfig(dg.Config):
    files: list[str]
    """Landing file names (in landing/microbatch/) that make up this batch."""


class DrillConfig(dg.Config):
    serving_url: str | None = None
    """A running serving app to drill against; default: start one on localhost for the drill."""


def build_serving_assets(spec: DatasetSpec) -> list:
    common = {"group_name": "serving", "owners": [spec.owner]}

    @dg.asset(name="microbatch_scores", kinds={"duckdb", "scikitlearn", "parquet"},
              deps=["raw_events", "raw_labels", "candidate_model"],
              description="Events landing in landing/microbatch/ scored within minutes: the same "
                          "compiled feature SQL as the hourly batch, every live model, batches "
                          "of 100-1000 rows, written atomically to lake/microbatch_scores/. "
                          "Records landing-to-score latency per batch.", **common)
    def microbatch_scores(context: dg.AssetExecutionContext, config: MicrobatchConfig,
                          project: Project) -> dg.MaterializeResult:
        stats = score_files(project.paths, spec, project.registry, config.files)
        context.log.info(f"microbatch {stats['batch_id']}: {stats}")
        return dg.MaterializeResult(metadata={
            "batch_id": stats["batch_id"],
            "files": stats["files"],
            "events_scored": stats["events_scored"],
            "chunks": stats["chunks"],
            "quarantined": stats["quarantined"],
            "landing_to_score_p50_s": stats["landing_to_score_p50_s"],
            "landing_to_score_max_s": stats["landing_to_score_max_s"],
            "versions": dg.MetadataValue.json(stats["versions"]),
        })

    @dg.asset(name="rollback_drills", kinds={"sqlite"},
              description="Exercises the rollback for real: flips the kill switch, verifies via "
                          "the HTTP serving path that the previous model answers, flips back, "
                          "and records the drill (time to effect, who, result) in the control "
                          "plane. Fails when the drill fails.", **common)
    def rollback_drills(context: dg.AssetExecutionContext, config: DrillConfig,
                        project: Project) -> dg.MaterializeResult:
        actor = f"dagster:{getpass.getuser()}"
        if config.serving_url:
            result = run_rollback_drill(project.registry, project.paths, spec,
                                        config.serving_url, actor)
        else:
            with running_server(project.paths, spec, log_predictions=False) as url:
                result = run_rollback_drill(project.registry, project.paths, spec, url, actor)
        if not result["ok"]:
            raise dg.Failure(f"rollback drill failed: {'; '.join(result['errors'])}",
                             metadata={"drill_id": int(result["drill_id"])})
        return dg.MaterializeResult(metadata={
            "drill_id": int(result["drill_id"]),
            "time_to_effect_ms": float(result["time_to_effect_ms"]),
            "restore_ms": float(result["restore_ms"]),
            "champion_version": result["champion_version"],
            "previous_version": result["previous_version"],
        })

    return [microbatch_scores, rollback_drills]
