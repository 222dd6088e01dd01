"""Training domain: the as-of training set, splits, frozen reference set and candidate, the
nightly training job, and the reproduce job that retrains a registered version from raw."""

from datetime import timedelta

import dagster as dg

from ml_assets.defs.historical import past_end, schedule_status
from ml_assets.defs.training.assets import build_training_assets
from ml_assets.defs.training.reproduce import reproduce_training_job
from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.lake import day_floor

TRAINING_ASSETS = ("training_set", "data_splits", "frozen_reference_set", "candidate_model")


def build_defs(spec: DatasetSpec) -> dg.Definitions:
    """Training assets, ``nightly_training_job`` (03:00 UTC) and ``reproduce_training_job``.

    Parameters
    ----------
    spec : DatasetSpec
        The dataset spec (model config, training window, owner).

    Returns
    -------
    dg.Definitions
        Without resources: ``ml_assets.definitions`` adds them once for every domain.
    """
    training_job = dg.define_asset_job(
        "nightly_training_job", selection=dg.AssetSelection.assets(*TRAINING_ASSETS),
        description="Rebuild the as-of training set, retrain with the recorded seed and "
                    "register the candidate with its model card.")

    @dg.schedule(job=training_job, cron_schedule="0 3 * * *", execution_timezone="UTC",
                 default_status=schedule_status(spec))
    def nightly_training_schedule(context: dg.ScheduleEvaluationContext):
        # the day whose labels tonight's run is the first to know
        day = day_floor(context.scheduled_execution_time) - timedelta(days=1)
        return past_end(spec, day) or dg.RunRequest()

    return dg.Definitions(assets=build_training_assets(spec),
                          jobs=[training_job, reproduce_training_job],
                          schedules=[nightly_training_schedule])
