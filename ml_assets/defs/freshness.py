"""Freshness policies: a stalled schedule shows up in the UI as a stale asset.

The freshness daemon (part of ``dagster dev`` / ``dagster-daemon``) evaluates these every 30 s;
the asset page and the catalogue show PASS / WARN / FAIL. They mirror the schedules in
``defs/<domain>/definitions.py``:

- hourly assets (``raw_events``, ``event_features``, ``batch_scores``) are materialized every
  hour at :15 for the previous hour. One missed run (no materialization for 80 minutes) warns,
  two missed runs (2 h 20 min) fail.
- ``raw_labels`` is ingested daily at 02:30 UTC: it must be materialized between 02:00 and
  04:30 UTC each day.
- the nightly training assets run at 03:00 UTC: they must be materialized between 03:00 and
  06:00 UTC each day (training a model takes minutes; three hours covers a retried run).
"""

from datetime import timedelta

import dagster as dg

HOURLY_FRESHNESS = dg.FreshnessPolicy.time_window(
    fail_window=timedelta(hours=2, minutes=20), warn_window=timedelta(minutes=80))

DAILY_LABELS_FRESHNESS = dg.FreshnessPolicy.cron(
    deadline_cron="30 4 * * *", lower_bound_delta=timedelta(hours=2, minutes=30), timezone="UTC")

NIGHTLY_TRAINING_FRESHNESS = dg.FreshnessPolicy.cron(
    deadline_cron="0 6 * * *", lower_bound_delta=timedelta(hours=3), timezone="UTC")
