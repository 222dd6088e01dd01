"""Ingest: landing files -> validated Parquet partitions + quarantine."""


from contextlib import contextmanager
from datetime import UTC, datetime

import dagster as dg
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ml_assets.defs.freshness import (
    DAILY_LABELS_FRESHNESS,
    event_freshness,
    freshness_policy,
)
from ml_assets.defs.metadata import record_partitions
from ml_assets.defs.partitions import daily, day_key, event_key, event_partitions
from ml_assets.lib.core.catalog import RAW_EVENTS
from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.lake import days_between, periods_in
from ml_assets.lib.core.markdown import table
from ml_assets.lib.core.workspace import Workspace
from ml_assets.lib.ingest.contracts import ContractError
from ml_assets.lib.ingest.landing import LabelFeed, feeds_of, ingest_events, ingest_labels
from ml_assets.lib.ingest.quarantine import read_quarantine, write_quarantine

IO_RETRY = dg.RetryPolicy(max_retries=2, delay=5, backoff=dg.Backoff.EXPONENTIAL)


@contextmanager
def contract_failures():
    """A broken file fails the run at once with its message: retrying cannot fix it."""
    try:
        yield
    except ContractError as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from exc


def _reason_table(quarantined: pd.DataFrame, limit: int = 10) -> str:
    if quarantined.empty:
        return "No rows quarantined."
    counts = quarantined["reason"].value_counts().head(limit)
    return table(["reason", "rows"], counts.items())


def _quarantine_figures(context: dg.AssetExecutionContext, out: dict, quarantined: pd.DataFrame,
                        key_of_stem: dict[str, str], figures_of=lambda data: {}) -> dict:
    """Each partition's own quarantine figures (rows, share, reasons when any) and
    ``figures_of(its valid rows)``, by partition key; the range's total is logged once."""
    by_stem = dict(tuple(quarantined.groupby("partition"))) if len(quarantined) else {}
    figures = {}
    for stem, key in key_of_stem.items():
        bad, good = by_stem.get(stem, quarantined.iloc[:0]), out.get(key)
        n_good = 0 if good is None else len(good)
        figures[key] = {"quarantined_rows": len(bad),
                        "quarantine_share": len(bad) / max(n_good + len(bad), 1),
                        **({"quarantine_reasons": dg.MetadataValue.md(_reason_table(bad))}
                           if len(bad) else {}),
                        **(figures_of(good) if good is not None else {})}
    context.log.info(f"{len(quarantined)} row(s) quarantined over {len(key_of_stem)} partition(s)")
    return figures


def build_ingest_assets(spec: DatasetSpec) -> list:
    owners = [spec.owner]

    @dg.asset(
        name="raw_events",
        group_name="ingest",
        partitions_def=event_partitions(spec),
        backfill_policy=dg.BackfillPolicy.single_run(),
        kinds={"parquet", "pandera"},
        owners=owners,
        retry_policy=IO_RETRY,
        freshness_policy=event_freshness(spec),
        description=f"{spec.description} {spec.partition_grain.capitalize()} landing files "
                    "validated against the event contract; broken rows go to quarantine with a "
                    "reason, a broken file fails.",
    )
    def raw_events(context: dg.AssetExecutionContext, project: dg.ResourceParam[Workspace]) -> dict[str, pa.Table]:
        start, end = context.partition_time_window
        starts = periods_in(start, end, spec.partition_step)
        notes: list[str] = []  # defined coercions that lose something (sub-µs digits)
        with contract_failures():
            valid, quarantined = ingest_events(project.paths, spec, starts, datetime.now(UTC),
                                               notes)
        for note in notes:
            context.log.warning(note)
        stem_of = {p: project.catalog.table(RAW_EVENTS).stem(p) for p in starts}
        write_quarantine(project.paths, RAW_EVENTS, quarantined, list(stem_of.values()))
        out = {event_key(spec, p): df for p, df in valid.items()}
        record_partitions(context, out, _quarantine_figures(
            context, out, quarantined, {s: event_key(spec, p) for p, s in stem_of.items()}))
        return out

    def label_feed_asset(feed: LabelFeed):
        @dg.asset(
            name=feed.asset,
            group_name="ingest",
            partitions_def=daily(spec),
            backfill_policy=dg.BackfillPolicy.single_run(),
            deps=["raw_events"],
            kinds={"parquet", "pandera"},
            owners=owners,
            retry_policy=IO_RETRY,
            freshness_policy=freshness_policy(spec, DAILY_LABELS_FRESHNESS),
            description=feed.description,
        )
        def _asset(context: dg.AssetExecutionContext, project: dg.ResourceParam[Workspace]) -> dict[str, pa.Table]:
            start, end = context.partition_time_window
            days = days_between(start, end)
            with contract_failures():
                valid, quarantined = ingest_labels(project.paths, spec, days, datetime.now(UTC),
                                                   feed)
            stem_of = {d: project.catalog.table(feed.asset).stem(d) for d in days}
            write_quarantine(project.paths, feed.asset, quarantined, list(stem_of.values()))
            out = {day_key(d): df for d, df in valid.items()}
            record_partitions(context, out, _quarantine_figures(
                context, out, quarantined, {s: day_key(d) for d, s in stem_of.items()},
                lambda t: {"positives": int(pc.sum(t[spec.label]).as_py() or 0)}))
            return out
        return _asset

    feeds = [label_feed_asset(f) for f in feeds_of(spec)]

    @dg.asset(
        name="quarantine",
        group_name="ingest",
        deps=["raw_events", *(f.key for f in feeds)],
        kinds={"parquet"},
        owners=owners,
        description="Every row that failed a contract, with its source file, row number, "
                    "reason and the original record (JSON). Nothing is silently dropped.",
    )
    def quarantine(context: dg.AssetExecutionContext, project: dg.ResourceParam[Workspace]) -> pd.DataFrame:
        rows = read_quarantine(project.paths)
        by_asset = rows.groupby("asset").size().to_dict() if len(rows) else {}
        context.add_output_metadata({
            "rows": len(rows),
            **{f"rows_{k}": int(v) for k, v in by_asset.items()},
            "reasons": dg.MetadataValue.md(_reason_table(rows, limit=25)),
        })
        return rows

    return [raw_events, *feeds, quarantine]
