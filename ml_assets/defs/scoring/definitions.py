"""Scoring domain: batch scores with their contract, the scoring job (ingest -> features ->
scores for one event partition: ``hourly_scoring_job`` at :15 past each hour, or
``daily_scoring_job`` at 00:15 UTC for a spec whose ``partition_grain`` is daily), and
microbatch scoring of files as they land.

The schedule runs by default and skips (with the reason) when the period is not landed
yet (no file covers it and it is not complete by ``spec.landing_completeness``), so a stalled
upstream is visible in the UI instead of producing failed runs. Hours of a daily landing file
run together once that file lands. A late file (``integrity.late_files``: it landed after its
partitions were ingested without it, e.g. as empty under ``later_file``) is rerun once per
delivery: the rerun replaces those partitions and its append-only check records the file."""

from datetime import datetime, timedelta

import dagster as dg

from ml_assets.defs.historical import past_end, schedule_status
from ml_assets.defs.partitions import event_key, range_tags
from ml_assets.defs.scoring.assets import build_scoring_assets
from ml_assets.defs.scoring.checks import build_scoring_checks
from ml_assets.defs.scoring.microbatch import build_microbatch_defs
from ml_assets.lib.core.catalog import RAW_EVENTS
from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.lake import period_floor
from ml_assets.lib.core.workspace import Workspace
from ml_assets.lib.ingest.contracts import ContractError
from ml_assets.lib.ingest.integrity import late_files
from ml_assets.lib.ingest.landing import events_layout
from ml_assets.lib.ingest.landing_layout import Layout

EVENT_ASSETS = ("raw_events", "event_features", "batch_scores")
# a daily landing file lands after its day ends: look back far enough to run it a day late
LOOKBACK = timedelta(days=2)
# per partition_grain: the scoring schedule's cron (UTC) and what one partition is called
SCHEDULES = {"hourly": ("15 * * * *", "hour"), "daily": ("15 0 * * *", "day")}


def _request(spec: DatasetSpec, first: datetime, last: datetime, run_key: str) -> dg.RunRequest:
    """A run of the scoring job over partitions ``first``..``last`` (one, or a range)."""
    if first == last:
        return dg.RunRequest(run_key=run_key, partition_key=event_key(spec, first))
    return dg.RunRequest(run_key=run_key,
                         tags=range_tags(event_key(spec, first), event_key(spec, last)))


def _late_requests(project: Workspace, spec: DatasetSpec, layout: Layout) -> list[dg.RunRequest]:
    """A rerun of each late event file's partitions (``integrity.late_files``). The run key is
    the file's name, size and change time: once per delivery, again if it is re-delivered.
    An hourly file under daily partitions reruns its day."""
    out, step = [], spec.partition_step
    for late in late_files(project.paths, project.registry, spec, [(RAW_EVENTS, layout)]):
        info = (project.paths.root / late.path).stat()
        key = f"late:{late.path}:{info.st_size}:{max(info.st_mtime_ns, info.st_ctime_ns)}"
        out.append(_request(spec, period_floor(max(late.lo, spec.start_utc), step),
                            period_floor(late.hi - timedelta(microseconds=1), step), key))
    return out


def _tick_requests(project: Workspace, spec: DatasetSpec, period: datetime):
    """The runs a tick for the partition starting at ``period`` starts: every partition of the
    last ``LOOKBACK`` up to ``period`` that has no raw_events partition yet and can be read now
    (``Layout.ready``: one run per daily file, one per other partition), and a rerun of every
    late file's partitions. Without any, a SkipReason naming what ``period`` waits for. Run
    keys are the partitions (ranges) run, so a tick never starts the same run twice."""
    layout = events_layout(project.paths, spec)
    pending = project.catalog.table(RAW_EVENTS).missing(max(period - LOOKBACK, spec.start_utc),
                                                        period + spec.partition_step)
    requests = []
    for run in layout.ready(pending):
        first, last = event_key(spec, run[0]), event_key(spec, run[-1])
        requests.append(_request(spec, run[0], run[-1],
                                 first if len(run) == 1 else f"{first}...{last}"))
    requests += _late_requests(project, spec, layout)
    if not requests:
        if period not in pending:
            return dg.SkipReason(f"{event_key(spec, period)} is already ingested; nothing new "
                                 "landed")
        try:
            layout.cover([period])
        except ContractError as exc:
            return dg.SkipReason(f"waiting: {exc}")
    return requests[0] if len(requests) == 1 else requests


def build_defs(spec: DatasetSpec) -> dg.Definitions:
    """Scoring assets and checks, the scoring job of the spec's ``partition_grain``
    (``hourly_scoring_job`` at :15 past each hour, or ``daily_scoring_job`` at 00:15 UTC) with
    its schedule, and microbatch scoring (``microbatch_scoring_job`` with its landing sensor).

    Parameters
    ----------
    spec : DatasetSpec
        The dataset spec (features, models, owner, partition start and grain).

    Returns
    -------
    dg.Definitions
        Without resources: ``ml_assets.definitions`` adds them once for every domain.
    """
    grain, step = spec.partition_grain, spec.partition_step
    cron, period_name = SCHEDULES[grain]
    job = dg.define_asset_job(
        f"{grain}_scoring_job", selection=dg.AssetSelection.assets(*EVENT_ASSETS),
        description=f"Ingest one {period_name} of events, build its features and score it "
                    "with every live model. Contract checks block downstream steps.")

    @dg.schedule(name=f"{grain}_scoring_schedule", job=job, cron_schedule=cron,
                 execution_timezone="UTC", default_status=schedule_status(spec))
    def scoring_schedule(context: dg.ScheduleEvaluationContext,
                         project: dg.ResourceParam[Workspace]):
        period = period_floor(context.scheduled_execution_time, step) - step
        if skip := past_end(spec, period):
            return skip
        return _tick_requests(project, spec, period)

    scoring = dg.Definitions(assets=build_scoring_assets(spec),
                             asset_checks=build_scoring_checks(spec),
                             jobs=[job], schedules=[scoring_schedule])
    return dg.Definitions.merge(scoring, build_microbatch_defs(spec))
