"""The one Dagster entry point: ``defs``. ``build_definitions`` serves other specs and data dirs."""


import dagster as dg

from ml_assets.defs.automation import build_automation
from ml_assets.defs.docs.assets import build_docs_assets
from ml_assets.defs.features.assets import build_feature_assets
from ml_assets.defs.features.checks import build_feature_checks
from ml_assets.defs.ingest.assets import build_ingest_assets
from ml_assets.defs.ingest.checks import build_ingest_checks
from ml_assets.defs.monitoring.assets import build_monitoring_assets
from ml_assets.defs.monitoring.checks import build_monitoring_checks
from ml_assets.defs.monitoring.sensors import build_monitoring_automation
from ml_assets.defs.reproduce.assets import build_criteria_assets
from ml_assets.defs.reproduce.checks import build_landing_checks
from ml_assets.defs.reproduce.jobs import reproduce_training
from ml_assets.defs.resources import default_resources
from ml_assets.defs.rollout.assets import build_rollout_assets, build_rollout_checks
from ml_assets.defs.scoring.assets import build_scoring_assets
from ml_assets.defs.scoring.checks import build_scoring_checks
from ml_assets.defs.serving.assets import build_serving_assets
from ml_assets.defs.serving.checks import build_serving_checks
from ml_assets.defs.serving.jobs import build_serving_jobs
from ml_assets.defs.serving.schedules import build_serving_schedules
from ml_assets.defs.serving.sensors import build_serving_sensors
from ml_assets.defs.training.assets import build_training_assets
from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.paths import default_data_dir
from ml_assets.specs import active_spec


def build_definitions(spec: DatasetSpec | None = None, data_dir: str | None = None) -> dg.Definitions:
    spec = spec or active_spec()
    jobs, schedules = build_automation(spec)
    drill_job, microbatch_job = build_serving_jobs()
    mon_jobs, mon_schedules, mon_sensors = build_monitoring_automation(spec)
    return dg.Definitions(
        assets=[*build_ingest_assets(spec), *build_feature_assets(spec),
                *build_training_assets(spec), *build_criteria_assets(spec),
                *build_scoring_assets(spec),
                *build_serving_assets(spec), *build_monitoring_assets(spec),
                *build_rollout_assets(spec), *build_docs_assets(spec)],
        asset_checks=[*build_ingest_checks(spec), *build_landing_checks(spec),
                      *build_feature_checks(spec),
                      *build_scoring_checks(spec), *build_serving_checks(spec),
                      *build_monitoring_checks(spec), *build_rollout_checks(spec)],
        jobs=[*jobs, drill_job, microbatch_job, reproduce_training, *mon_jobs],
        schedules=[*schedules, *build_serving_schedules(drill_job), *mon_schedules],
        sensors=[*build_serving_sensors(microbatch_job), *mon_sensors],
        resources=default_resources(data_dir or str(default_data_dir()), spec),
    )


defs = build_definitions()
