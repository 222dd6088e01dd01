"""Freshness policies: a stalled schedule shows up in the UI as a stale asset.

The freshness daemon (part of ``dagster dev`` / ``dagster-daemon``) evaluates these every 30 s;
the asset page and the catalogue show PASS / WARN / FAIL. They mirror the schedules in
``defs/<domain>/definitions.py``:

- the event-side assets (``raw_events``, ``event_features``, ``batch_scores``) are materialized
  every hour at :15 for the previous hour (a daily-grain spec: every day at 00:15 for the
  previous day). One missed run (no materialization for a period and 20 minutes) warns, two
  missed runs fail (:func:`event_freshness`).
- ``raw_labels`` is ingested daily at 02:30 UTC: it must be materialized between 02:00 and
  04:30 UTC each day.
- the nightly training assets run at 03:00 UTC: they must be materialized between 03:00 and
  06:00 UTC each day (training a model takes minutes; three hours covers a retried run).

A policy judges the latest materialization against now, so on a historical dataset (a spec
with an ``end``: nothing lands after it) it would alarm forever. Such a dataset's assets carry
no policy (:func:`freshness_policy`); its freshness is judged at the end instead
(:func:`judged_at`: ``ml-assets status`` counts the periods each table lacks up to it).
"""

from datetime import datetime, timedelta

import dagster as dg

from ml_assets.lib.core.datasets import DatasetSpec

HOURLY_FRESHNESS = dg.FreshnessPolicy.time_window(
    fail_window=timedelta(hours=2, minutes=20), warn_window=timedelta(minutes=80))
DAILY_EVENTS_FRESHNESS = dg.FreshnessPolicy.time_window(
    fail_window=timedelta(days=2, minutes=20), warn_window=timedelta(days=1, minutes=20))

DAILY_LABELS_FRESHNESS = dg.FreshnessPolicy.cron(
    deadline_cron="30 4 * * *", lower_bound_delta=timedelta(hours=2, minutes=30), timezone="UTC")

NIGHTLY_TRAINING_FRESHNESS = dg.FreshnessPolicy.cron(
    deadline_cron="0 6 * * *", lower_bound_delta=timedelta(hours=3), timezone="UTC")


def freshness_policy(spec: DatasetSpec, policy: dg.FreshnessPolicy) -> dg.FreshnessPolicy | None:
    """``policy`` for a live dataset; None for a historical one (see the module docstring)."""
    return policy if spec.end is None else None


def event_freshness(spec: DatasetSpec) -> dg.FreshnessPolicy | None:
    """The event-side assets' policy at the spec's ``partition_grain`` (None when historical)."""
    return freshness_policy(spec, HOURLY_FRESHNESS if spec.partition_grain == "hourly"
                            else DAILY_EVENTS_FRESHNESS)


def judged_at(spec: DatasetSpec, now: datetime) -> datetime:
    """The time freshness is judged at: ``now`` (UTC), or a historical dataset's end once
    ``now`` is past it."""
    return now if spec.end_utc is None else min(now, spec.end_utc)
