"""Ingest domain: landing events and label feeds into the lake, their contracts, the append-only
landing ledger, and the daily labels job.

The schedule runs by default and skips (with the reason) when the day is not landed yet (no
label file and not complete by ``spec.landing_completeness``), so a stalled upstream is visible
in the UI instead of producing failed runs."""

from datetime import timedelta

import dagster as dg

from ml_assets.defs.historical import past_end, schedule_status
from ml_assets.defs.ingest.assets import build_ingest_assets
from ml_assets.defs.ingest.checks import build_ingest_checks
from ml_assets.defs.ingest.landing_checks import build_landing_checks
from ml_assets.defs.partitions import day_key
from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.lake import day_floor
from ml_assets.lib.core.workspace import Workspace
from ml_assets.lib.ingest.contracts import ContractError
from ml_assets.lib.ingest.landing import LABELS, label_feeds


def build_defs(spec: DatasetSpec) -> dg.Definitions:
    """Ingest assets, contract and append-only checks, ``daily_labels_job`` (label feeds and
    the quarantine summary) and its schedule.

    Parameters
    ----------
    spec : DatasetSpec
        The dataset spec (columns, label feeds, owner, partition start).

    Returns
    -------
    dg.Definitions
        Without resources: ``ml_assets.definitions`` adds them once for every domain.
    """
    labels_job = dg.define_asset_job(
        "daily_labels_job", selection=dg.AssetSelection.assets(*label_feeds(spec), "quarantine"),
        description="Ingest one day of label files (and early reports, if the dataset has them), "
                    "then refresh the quarantine's summary of every rejected row.")

    # The tick time is the spec's ingest delay after midnight: the on-time availability of a
    # label file (lib/ingest/landing.py) is exactly when this schedule ingests it.
    minutes = int(spec.label_ingest_delay.total_seconds() // 60) % (24 * 60)

    @dg.schedule(job=labels_job, cron_schedule=f"{minutes % 60} {minutes // 60} * * *",
                 execution_timezone="UTC",
                 default_status=schedule_status(spec))
    def daily_labels_schedule(context: dg.ScheduleEvaluationContext,
                              project: dg.ResourceParam[Workspace]):
        day = day_floor(context.scheduled_execution_time) - timedelta(days=1)
        if skip := past_end(spec, day):
            return skip
        try:  # the day's label file landed, or the day is complete and empty
            LABELS.layout(project.paths, spec).cover([day])
        except ContractError as exc:
            return dg.SkipReason(f"waiting: {exc}")
        return dg.RunRequest(run_key=day_key(day), partition_key=day_key(day))

    return dg.Definitions(
        assets=build_ingest_assets(spec),
        asset_checks=[*build_ingest_checks(spec), *build_landing_checks(spec)],
        jobs=[labels_job], schedules=[daily_labels_schedule])
