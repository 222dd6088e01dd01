"""Jobs and schedules: hourly ingest->features->scores, daily labels, nightly training.

Schedules run by default and skip (with the reason) when the hour's landing file is not there
yet, so a stalled upstream is visible in the UI instead of producing failed runs."""


from datetime import timedelta

import dagster as dg

from ml_assets.defs.partitions import day_key, hour_key
from ml_assets.defs.resources import Project
from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.lake import day_floor, hour_floor
from ml_assets.lib.ingest.landing import label_feeds

HOURLY_ASSETS = ("raw_events", "event_features", "batch_scores")
TRAINING_ASSETS = ("training_set", "data_splits", "frozen_reference_set", "candidate_model")


def build_automation(spec: DatasetSpec) -> tuple[list, list]:
    hourly_job = dg.define_asset_job(
        "hourly_scoring_job", selection=dg.AssetSelection.assets(*HOURLY_ASSETS),
        description="Ingest one hour of events, build its features and score it with every "
                    "live model. Contract checks block downstream steps.")
    labels_job = dg.define_asset_job(
        "daily_labels_job", selection=dg.AssetSelection.assets(*label_feeds(spec)),
        description="Ingest one day of label files (and early reports, if the dataset has them).")
    training_job = dg.define_asset_job(
        "nightly_training_job", selection=dg.AssetSelection.assets(*TRAINING_ASSETS),
        description="Rebuild the as-of training set, retrain with the recorded seed and "
                    "register the candidate with its model card.")

    @dg.schedule(job=hourly_job, cron_schedule="15 * * * *", execution_timezone="UTC",
                 default_status=dg.DefaultScheduleStatus.RUNNING)
    def hourly_scoring_schedule(context: dg.ScheduleEvaluationContext, project: Project):
        hour = hour_floor(context.scheduled_execution_time) - timedelta(hours=1)
        path = project.paths.landing_events_file(hour)
        if not path.exists():
            return dg.SkipReason(f"waiting for {path.name}: no landing file for {hour_key(hour)}")
        return dg.RunRequest(run_key=hour_key(hour), partition_key=hour_key(hour))

    @dg.schedule(job=labels_job, cron_schedule="30 2 * * *", execution_timezone="UTC",
                 default_status=dg.DefaultScheduleStatus.RUNNING)
    def daily_labels_schedule(context: dg.ScheduleEvaluationContext, project: Project):
        day = day_floor(context.scheduled_execution_time) - timedelta(days=1)
        path = project.paths.landing_labels_file(day)
        if not path.exists():
            return dg.SkipReason(f"waiting for {path.name}: no label file for {day_key(day)}")
        return dg.RunRequest(run_key=day_key(day), partition_key=day_key(day))

    nightly_training_schedule = dg.ScheduleDefinition(
        name="nightly_training_schedule", job=training_job, cron_schedule="0 3 * * *",
        execution_timezone="UTC", default_status=dg.DefaultScheduleStatus.RUNNING)

    return ([hourly_job, labels_job, training_job],
            [hourly_scoring_schedule, daily_labels_schedule, nightly_training_schedule])
