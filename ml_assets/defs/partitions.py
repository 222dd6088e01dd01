"""Partition definitions and the time window a run (or a check inside it) covers."""


from datetime import datetime, timedelta

import dagster as dg

from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.lake_table import (
    DAY_KEY_FORMAT,
    HOUR_KEY_FORMAT,
    LakeTable,
    partition_key,
)

RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
PARTITION_TAG = "dagster/partition"


def _end(spec: DatasetSpec, key_format: str) -> str | None:
    """The exclusive ``end_date`` of a historical dataset's partitions; None (up to now) for a
    live one."""
    return spec.end_utc.strftime(key_format) if spec.end_utc is not None else None


def hourly(spec: DatasetSpec) -> dg.HourlyPartitionsDefinition:
    """Hourly partitions from the spec's start to its end (exclusive), or to now when live."""
    return dg.HourlyPartitionsDefinition(start_date=spec.start_utc.strftime(HOUR_KEY_FORMAT),
                                         end_date=_end(spec, HOUR_KEY_FORMAT), timezone="UTC")


def daily(spec: DatasetSpec) -> dg.DailyPartitionsDefinition:
    """Daily partitions from the spec's start to its end (exclusive), or to now when live."""
    return dg.DailyPartitionsDefinition(start_date=spec.start_utc.strftime(DAY_KEY_FORMAT),
                                        end_date=_end(spec, DAY_KEY_FORMAT), timezone="UTC")


def event_partitions(spec: DatasetSpec) -> dg.TimeWindowPartitionsDefinition:
    """The event-side assets' partitions (``raw_events``, ``event_features``, ``batch_scores``):
    :func:`hourly` or :func:`daily` by the spec's ``partition_grain``."""
    return hourly(spec) if spec.partition_grain == "hourly" else daily(spec)


def event_key(spec: DatasetSpec, start: datetime) -> str:
    """The partition key of the event partition starting at ``start`` (UTC), at the spec's
    ``partition_grain``."""
    return partition_key(start, spec.partition_grain)


def lookback_partitions(spec: DatasetSpec, step: timedelta) -> int:
    """How many partitions of length ``step`` the spec's feature look-back reaches back over
    (rounded up: a part-partition is read whole)."""
    return -(-spec.lookback // step)


def run_window(tags: dict, partitions_def: dg.TimeWindowPartitionsDefinition,
               ) -> tuple[datetime, datetime] | None:
    """The [start, end) a run covers, from its partition tags; None for unpartitioned runs."""
    if PARTITION_TAG in tags:
        w = partitions_def.time_window_for_partition_key(tags[PARTITION_TAG])
        return w.start, w.end
    if RANGE_START_TAG in tags and RANGE_END_TAG in tags:
        return (partitions_def.time_window_for_partition_key(tags[RANGE_START_TAG]).start,
                partitions_def.time_window_for_partition_key(tags[RANGE_END_TAG]).end)
    return None


def range_tags(start_key: str, end_key: str) -> dict[str, str]:
    return {RANGE_START_TAG: start_key, RANGE_END_TAG: end_key}


def event_range_tags(spec: DatasetSpec, lo: datetime, hi: datetime) -> dict[str, str]:
    """The tags of one range run over the event partitions in [lo, hi) (UTC, on the grain)."""
    return range_tags(event_key(spec, lo), event_key(spec, hi - spec.partition_step))


def hour_key(ts: datetime) -> str:
    return ts.strftime(HOUR_KEY_FORMAT)


def day_key(ts: datetime) -> str:
    return ts.strftime(DAY_KEY_FORMAT)


def checked_window(context, partitions_def: dg.TimeWindowPartitionsDefinition,
                   table: LakeTable) -> tuple[datetime, datetime]:
    """The window a check should cover: its run's partitions, or - when the check runs on its
    own - the latest partition of ``table`` written to the lake."""
    window = run_window(context.run.tags, partitions_def)
    if window is not None:
        return window
    latest = table.latest()
    if latest is None:
        raise dg.Failure(f"{table.name} has no materialized partitions to check yet")
    w = partitions_def.time_window_for_partition_key(table.key(latest))
    return w.start, w.end
