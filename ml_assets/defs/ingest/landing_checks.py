"""Landing data is append-only: each ingest run records the SHA-256 of the landing files it
read; a file whose bytes differ from its first recorded checksum fails the check (ERROR)."""

import getpass

import dagster as dg

from ml_assets.defs.contract_checks import checked_partitions, per_partition
from ml_assets.defs.partitions import daily, hourly
from ml_assets.lib.core.catalog import RAW_EVENTS
from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.lake import days_between, hours_between
from ml_assets.lib.core.workspace import Workspace
from ml_assets.lib.ingest import integrity as landing_integrity
from ml_assets.lib.ingest.landing import LabelFeed, feeds_of


def _checked(project: Workspace, files) -> dg.AssetCheckResult:
    """Record the checksums of one partition's landing files; ERROR when one was rewritten."""
    problems = landing_integrity.record(project.paths, project.registry, files, getpass.getuser())
    return dg.AssetCheckResult(
        passed=not problems, severity=dg.AssetCheckSeverity.ERROR,
        description="landing files unchanged since first seen" if not problems else
        "; ".join(p.describe() for p in problems[:5]),
        metadata={"files_checked": len(files), "rewritten_files": len(problems)})


def build_landing_checks(spec: DatasetSpec) -> list:
    hourly_def, daily_def = hourly(spec), daily(spec)

    @dg.asset_check(asset=RAW_EVENTS, name="landing_events_append_only",
                    partitions_def=hourly_def,
                    description="Records the checksum of every event landing file ingested; "
                                "fails if one was rewritten after it first landed.")
    def landing_events_append_only(context: dg.AssetCheckExecutionContext, project: dg.ResourceParam[Workspace]):
        paths = project.paths
        yield from per_partition(context, {
            k: _checked(project, [paths.landing_events_file(h) for h in hours_between(lo, hi)])
            for k, lo, hi in checked_partitions(context, hourly_def,
                                                project.catalog.table(RAW_EVENTS))},
            dg.AssetCheckKey(dg.AssetKey(RAW_EVENTS), "landing_events_append_only"))

    def feed_append_only(feed: LabelFeed):
        @dg.asset_check(asset=feed.asset, name="landing_labels_append_only",
                        partitions_def=daily_def,
                        description="Records the checksum of every landing file of this feed "
                                    "ingested; fails if one was rewritten after it first landed.")
        def landing_labels_append_only(context: dg.AssetCheckExecutionContext, project: dg.ResourceParam[Workspace]):
            paths = project.paths
            yield from per_partition(context, {
                k: _checked(project, [feed.landing_file(paths, d) for d in days_between(lo, hi)])
                for k, lo, hi in checked_partitions(context, daily_def,
                                                    project.catalog.table(feed.asset))},
                dg.AssetCheckKey(dg.AssetKey(feed.asset), "landing_labels_append_only"))
        return landing_labels_append_only

    return [landing_events_append_only, *(feed_append_only(f) for f in feeds_of(spec))]

