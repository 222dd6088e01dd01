"""Landing data is append-only: each ingest run records the SHA-256 of the landing files it
read; a file whose bytes differ from its first recorded checksum fails the check (ERROR), and
so does a late file anywhere in the feed: one no ingest has read although partitions it
covers are already in the lake (``integrity.late_files``)."""

import getpass
from datetime import datetime
from pathlib import Path

import dagster as dg

from ml_assets.defs.contract_checks import checked_partitions, per_partition
from ml_assets.defs.partitions import daily, event_partitions
from ml_assets.lib.core.catalog import RAW_EVENTS
from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.lake import days_between, periods_in
from ml_assets.lib.core.workspace import Workspace
from ml_assets.lib.ingest import integrity as landing_integrity
from ml_assets.lib.ingest.landing import LabelFeed, events_layout, feeds_of
from ml_assets.lib.ingest.landing_layout import Layout


def _checked(project: Workspace, spec: DatasetSpec, asset: str, layout: Layout,
             partitions: list[tuple[str, list[datetime]]]) -> dict[str, dg.AssetCheckResult]:
    """Record the checksums of the files covering each partition (``(key, its layout
    periods)``), each file once however many partitions it covers; ERROR for a partition
    whose file was rewritten, and for each partition a late file covers, inside the run or
    not (one listing and one ledger query after recording, so the files just read are not
    late): the verdict lands on the partitions to reingest, and their rerun clears it."""
    files = {k: list(dict.fromkeys(w[0] for ws in layout.found(starts).values() for w in ws))
             for k, starts in partitions}
    problems = landing_integrity.record(project.paths, project.registry,
                                        list(dict.fromkeys(f for fs in files.values() for f in fs)),
                                        getpass.getuser())
    late = landing_integrity.late_files(project.paths, project.registry, spec, [(asset, layout)])
    by_path = {p.path: p for p in problems}
    root = project.paths.root.resolve()
    table = project.catalog.table(asset)
    late_at: dict[str, list] = {}
    for f in late:
        for stem in f.ingested:
            late_at.setdefault(table.key(table.start(stem)), []).append(f)
    results = {}
    for k in [*files, *(k for k in late_at if k not in files)]:
        fs = files.get(k, [])
        found = [by_path[r] for r in (str(Path(f).resolve().relative_to(root)) for f in fs)
                 if r in by_path]
        here = late_at.get(k, [])
        lines = [p.describe() for p in found[:5]] + [f.describe() for f in here[:5]]
        results[k] = dg.AssetCheckResult(
            passed=not lines, severity=dg.AssetCheckSeverity.ERROR,
            description="; ".join(lines) or "landing files unchanged since first seen",
            metadata={"files_checked": len(fs), "rewritten_files": len(found),
                      "late_files": len(here),
                      "late": dg.MetadataValue.json([f.path for f in here[:50]])})
    return results


def build_landing_checks(spec: DatasetSpec) -> list:
    events_def, daily_def = event_partitions(spec), daily(spec)

    @dg.asset_check(asset=RAW_EVENTS, name="landing_events_append_only",
                    partitions_def=events_def,
                    description="Records the checksum of every event landing file ingested; "
                                "fails if one was rewritten after it first landed, or if a "
                                "file landed after its hours were ingested without it.")
    def landing_events_append_only(context: dg.AssetCheckExecutionContext, project: dg.ResourceParam[Workspace]):
        yield from per_partition(context, _checked(project, spec, RAW_EVENTS,
                                                   events_layout(project.paths, spec), [
            (k, periods_in(lo, hi, spec.partition_step)) for k, lo, hi in checked_partitions(
                context, events_def, project.catalog.table(RAW_EVENTS))]),
            dg.AssetCheckKey(dg.AssetKey(RAW_EVENTS), "landing_events_append_only"))

    def feed_append_only(feed: LabelFeed):
        @dg.asset_check(asset=feed.asset, name="landing_labels_append_only",
                        partitions_def=daily_def,
                        description="Records the checksum of every landing file of this feed "
                                    "ingested; fails if one was rewritten after it first "
                                    "landed, or if a file landed after its days were "
                                    "ingested without it.")
        def landing_labels_append_only(context: dg.AssetCheckExecutionContext, project: dg.ResourceParam[Workspace]):
            yield from per_partition(context, _checked(
                project, spec, feed.asset, feed.layout(project.paths, spec), [
                (k, days_between(lo, hi)) for k, lo, hi in checked_partitions(
                    context, daily_def, project.catalog.table(feed.asset))]),
                dg.AssetCheckKey(dg.AssetKey(feed.asset), "landing_labels_append_only"))
        return landing_labels_append_only

    return [landing_events_append_only, *(feed_append_only(f) for f in feeds_of(spec))]

