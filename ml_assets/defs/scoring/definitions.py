"""Scoring domain: hourly batch scores with their contract, the hourly job (ingest -> features
-> scores for one hour), and microbatch scoring of files as they land.

The hourly schedule runs by default and skips (with the reason) when the hour's landing file is
not there yet, so a stalled upstream is visible in the UI instead of producing failed runs."""

from datetime import timedelta

import dagster as dg

from ml_assets.defs.historical import past_end, schedule_status
from ml_assets.defs.partitions import hour_key
from ml_assets.defs.scoring.assets import build_scoring_assets
from ml_assets.defs.scoring.checks import build_scoring_checks
from ml_assets.defs.scoring.microbatch import build_microbatch_defs
from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.lake import hour_floor
from ml_assets.lib.core.workspace import Workspace

HOURLY_ASSETS = ("raw_events", "event_features", "batch_scores")


def build_defs(spec: DatasetSpec) -> dg.Definitions:
    """Scoring assets and checks, ``hourly_scoring_job`` (:15 past each hour) and microbatch
    scoring (``microbatch_scoring_job`` with its landing sensor).

    Parameters
    ----------
    spec : DatasetSpec
        The dataset spec (features, models, owner, partition start).

    Returns
    -------
    dg.Definitions
        Without resources: ``ml_assets.definitions`` adds them once for every domain.
    """
    hourly_job = dg.define_asset_job(
        "hourly_scoring_job", selection=dg.AssetSelection.assets(*HOURLY_ASSETS),
        description="Ingest one hour of events, build its features and score it with every "
                    "live model. Contract checks block downstream steps.")

    @dg.schedule(job=hourly_job, cron_schedule="15 * * * *", execution_timezone="UTC",
                 default_status=schedule_status(spec))
    def hourly_scoring_schedule(context: dg.ScheduleEvaluationContext,
                                project: dg.ResourceParam[Workspace]):
        hour = hour_floor(context.scheduled_execution_time) - timedelta(hours=1)
        if skip := past_end(spec, hour):
            return skip
        path = project.paths.landing_events_file(hour)
        if not path.exists():
            return dg.SkipReason(f"waiting for {path.name}: no landing file for {hour_key(hour)}")
        return dg.RunRequest(run_key=hour_key(hour), partition_key=hour_key(hour))

    hourly = dg.Definitions(assets=build_scoring_assets(spec),
                            asset_checks=build_scoring_checks(spec),
                            jobs=[hourly_job], schedules=[hourly_scoring_schedule])
    return dg.Definitions.merge(hourly, build_microbatch_defs(spec))
