"""Microbatch scoring: event files landing in ``landing/microbatch/`` are scored within minutes.

The sensor polls every 30 s; new files become runs of 100-1000 rows of ``microbatch_scores``.
The cursor holds the files requested (name and signature) until they are scored, so each file
is scored once, whatever its mtime or arrival order."""

import json
from datetime import UTC, datetime

import dagster as dg

from ml_assets.defs.historical import past_end, sensor_status
from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.identifiers import UnsafePath
from ml_assets.lib.core.workspace import Workspace
from ml_assets.lib.ingest.contracts import ContractError
from ml_assets.lib.scoring.microbatch import (
    Landed,
    pending_files,
    plan_batches,
    run_key,
    score_files,
)


class MicrobatchConfig(dg.Config):
    files: list[str]
    """Landing file names (in landing/microbatch/) that make up this batch; bare names only,
    anything that would leave that directory (``../``, ``/``, symlinks out) fails the run."""


def build_microbatch_defs(spec: DatasetSpec) -> dg.Definitions:
    """The ``microbatch_scores`` asset, its job and the landing sensor.

    Parameters
    ----------
    spec : DatasetSpec
        The dataset spec (owner, features, models).

    Returns
    -------
    dg.Definitions
        One asset (group ``serving``), ``microbatch_scoring_job`` and
        ``microbatch_landing_sensor``.
    """
    common = {"group_name": "serving", "owners": [spec.owner]}

    @dg.asset(name="microbatch_scores", kinds={"duckdb", "scikitlearn", "parquet"},
              deps=["raw_events", "raw_labels", "candidate_model"],
              description="Events landing in landing/microbatch/ scored within minutes: the same "
                          "compiled feature SQL as the hourly batch, every live model, batches "
                          "of 100-1000 rows, written atomically to lake/microbatch_scores/. "
                          "Records landing-to-score latency per batch.", **common)
    def microbatch_scores(context: dg.AssetExecutionContext, config: MicrobatchConfig,
                          project: dg.ResourceParam[Workspace]) -> dg.MaterializeResult:
        try:
            stats = score_files(project.paths, spec, project.registry, config.files)
        except (UnsafePath, ContractError) as exc:  # a retry cannot fix a name or a file
            raise dg.Failure(description=str(exc), allow_retries=False) from exc
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

    microbatch_job = dg.define_asset_job(
        "microbatch_scoring_job", selection=dg.AssetSelection.assets("microbatch_scores"),
        description="Score one microbatch of landed event files with every live model.")

    @dg.sensor(name="microbatch_landing_sensor", job=microbatch_job, minimum_interval_seconds=30,
               default_status=sensor_status(spec),
               description="Scores event files landing in landing/microbatch/ in batches of "
                           "100-1000 rows; a partial batch waits at most 2 minutes.")
    def microbatch_landing_sensor(context: dg.SensorEvaluationContext, project: dg.ResourceParam[Workspace]):
        if skip := past_end(spec, datetime.now(UTC)):
            return skip
        pending = pending_files(project.paths)
        requested = _requested(context.cursor, pending)
        batches, requested = plan_batches(pending, requested, datetime.now(UTC))
        context.update_cursor(json.dumps(requested, sort_keys=True))
        if not batches:
            fresh = [f for f in pending if f.name not in requested]
            return dg.SkipReason(
                f"{sum(f.rows for f in fresh)} row(s) in {len(fresh)} file(s) waiting; scoring "
                f"at 100 rows or after 2 min; {len(requested)} requested file(s) not scored yet "
                "(a failed run leaves its files in landing/microbatch/)")
        by_name = {f.name: f for f in pending}
        return [dg.RunRequest(run_key=run_key([by_name[n] for n in names]), run_config={
            "ops": {"microbatch_scores": {"config": {"files": names}}}}) for names in batches]

    return dg.Definitions(assets=[microbatch_scores], jobs=[microbatch_job],
                          sensors=[microbatch_landing_sensor])


def _requested(cursor: str | None, pending: list[Landed]) -> dict[str, list[int]]:
    """The requested files from the stored cursor; a cursor of the old ``[mtime_ns, name]``
    watermark form counts the pending files at or below it as requested (what it meant)."""
    state = json.loads(cursor) if cursor else {}
    if isinstance(state, list):
        return {f.name: [f.mtime_ns, f.rows] for f in pending
                if (f.mtime_ns, f.name) <= tuple(state)}
    return state
