"""Monitoring domain: the business metric and the diagnostics that explain it, their checks,
the daily monitoring job, the label-arrival and check-alert sensors."""

import dagster as dg

from ml_assets.defs.monitoring.assets import build_monitoring_assets
from ml_assets.defs.monitoring.checks import build_monitoring_checks
from ml_assets.defs.monitoring.sensors import build_monitoring_automation
from ml_assets.lib.core.datasets import DatasetSpec


def build_defs(spec: DatasetSpec) -> dg.Definitions:
    """Monitoring assets and checks, ``daily_monitoring_job``, ``label_evaluation_job``, the
    daily schedule and both sensors.

    Parameters
    ----------
    spec : DatasetSpec
        The dataset spec (monitoring thresholds, business metric, early reports).

    Returns
    -------
    dg.Definitions
        Without resources: ``ml_assets.definitions`` adds them once for every domain.
    """
    jobs, schedules, sensors = build_monitoring_automation(spec)
    return dg.Definitions(assets=build_monitoring_assets(spec),
                          asset_checks=build_monitoring_checks(spec),
                          jobs=jobs, schedules=schedules, sensors=sensors)
