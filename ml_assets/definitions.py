"""The one Dagster entry point: ``defs``. ``build_definitions`` serves other specs and data dirs."""


import dagster as dg

from ml_assets.defs.automation import build_automation
from ml_assets.defs.features.assets import build_feature_assets
from ml_assets.defs.features.checks import build_feature_checks
from ml_assets.defs.ingest.assets import build_ingest_assets
from ml_assets.defs.ingest.checks import build_ingest_checks
from ml_assets.defs.resources import default_resources
from ml_assets.defs.scoring.assets import build_scoring_assets
from ml_assets.defs.scoring.checks import build_scoring_checks
from ml_assets.defs.training.assets import build_training_assets
from ml_assets.lib.datasets import DatasetSpec
from ml_assets.lib.paths import default_data_dir
from ml_assets.specs import active_spec


def build_definitions(spec: DatasetSpec | None = None, data_dir: str | None = None) -> dg.Definitions:
    spec = spec or active_spec()
    jobs, schedules = build_automation(spec)
    return dg.Definitions(
        assets=[*build_ingest_assets(spec), *build_feature_assets(spec),
                *build_training_assets(spec), *build_scoring_assets(spec)],
        asset_checks=[*build_ingest_checks(spec), *build_feature_checks(spec),
                      *build_scoring_checks(spec)],
        jobs=jobs,
        schedules=schedules,
        resources=default_resources(data_dir or str(default_data_dir()), spec),
    )


defs = build_definitions()
