"""Scoring domain: hourly batch scores with their contract, the hourly job (ingest -> features
-> scores for one hour), and microbatch scoring of files as they land.

The hourly schedule runs by default and skips (with the reason) when the hour is not landed
yet (no file covers it and it is not complete by ``spec.landing_completeness``), so a stalled
upstream is visible in the UI instead of producing failed runs. Hours of a daily landing file
run together once that file lands. A late file (``integrity.late_files``: it landed after its
hours were ingested without it, e.g. as empty under ``later_file``) is rerun once per delivery:
the rerun replaces those partitions and its append-only check records the file."""

from datetime import datetime, timedelta

import dagster as dg

from ml_assets.defs.historical import past_end, schedule_status
from ml_assets.defs.partitions import hour_key, range_tags
from ml_assets.defs.scoring.assets import build_scoring_assets
from ml_assets.defs.scoring.checks import build_scoring_checks
from ml_assets.defs.scoring.microbatch import build_microbatch_defs
from ml_assets.lib.core.catalog import RAW_EVENTS
from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.lake import hour_floor
from ml_assets.lib.core.workspace import Workspace
from ml_assets.lib.ingest.contracts import ContractError
from ml_assets.lib.ingest.integrity import late_files
from ml_assets.lib.ingest.landing import events_layout
from ml_assets.lib.ingest.landing_layout import HOUR, Layout

HOURLY_ASSETS = ("raw_events", "event_features", "batch_scores")
# a daily landing file lands after its day ends: look back far enough to run it a day late
LOOKBACK = timedelta(days=2)


def _request(first: datetime, last: datetime, run_key: str) -> dg.RunRequest:
    """A run of the hourly job over hours ``first``..``last`` (one partition, or a range)."""
    if first == last:
        return dg.RunRequest(run_key=run_key, partition_key=hour_key(first))
    return dg.RunRequest(run_key=run_key, tags=range_tags(hour_key(first), hour_key(last)))


def _late_requests(project: Workspace, spec: DatasetSpec, layout: Layout) -> list[dg.RunRequest]:
    """A rerun of each late event file's hours (``integrity.late_files``). The run key is the
    file's name, size and change time: once per delivery, again if it is re-delivered."""
    out = []
    for late in late_files(project.paths, project.registry, spec, [(RAW_EVENTS, layout)]):
        info = (project.paths.root / late.path).stat()
        key = f"late:{late.path}:{info.st_size}:{max(info.st_mtime_ns, info.st_ctime_ns)}"
        out.append(_request(max(late.lo, spec.start_utc), late.hi - HOUR, key))
    return out


def _hourly_requests(project: Workspace, spec: DatasetSpec, hour: datetime):
    """The runs a tick for ``hour`` starts: every hour of the last ``LOOKBACK`` up to ``hour``
    that has no raw_events partition yet and can be read now (``Layout.ready``: one run per
    daily file, one per other hour), and a rerun of every late file's hours. Without any, a
    SkipReason naming what ``hour`` waits for. Run keys are the hours (ranges) run, so a tick
    never starts the same run twice."""
    layout = events_layout(project.paths, spec)
    pending = project.catalog.table(RAW_EVENTS).missing(max(hour - LOOKBACK, spec.start_utc),
                                                        hour + HOUR)
    requests = [_request(r[0], r[-1], hour_key(r[0]) if len(r) == 1 else
                         f"{hour_key(r[0])}...{hour_key(r[-1])}") for r in layout.ready(pending)]
    requests += _late_requests(project, spec, layout)
    if not requests:
        if hour not in pending:
            return dg.SkipReason(f"{hour_key(hour)} is already ingested; nothing new landed")
        try:
            layout.cover([hour])
        except ContractError as exc:
            return dg.SkipReason(f"waiting: {exc}")
    return requests[0] if len(requests) == 1 else requests


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
        return _hourly_requests(project, spec, hour)

    hourly = dg.Definitions(assets=build_scoring_assets(spec),
                            asset_checks=build_scoring_checks(spec),
                            jobs=[hourly_job], schedules=[hourly_scoring_schedule])
    return dg.Definitions.merge(hourly, build_microbatch_defs(spec))
