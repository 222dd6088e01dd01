"""The same answer however the work is scheduled (issue 14, item 1, acceptance): the real
Dagster definitions driven through random interleavings of hourly runs, range catch-ups of
random sizes, the daily labels schedule and a late label file give ``event_features`` and
``batch_scores`` equal to a one-shot rebuild, bit for bit."""

from datetime import timedelta

import dagster as dg
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ml_assets.definitions import build_definitions
from ml_assets.defs.partitions import hour_key, range_tags
from ml_assets.defs.scoring.definitions import EVENT_ASSETS
from ml_assets.lib.core.catalog import BATCH_SCORES, EVENT_FEATURES, Catalog
from ml_assets.lib.core.lake import days_between, hours_between
from ml_assets.lib.ingest.landing import feeds_of
from ml_assets.scenarios.runner import dagster_instance, run
from ml_assets_tests.fixtures.dagster_contexts import call_schedule
from ml_assets_tests.fixtures.reliability_world import copy_world

SIM_HOURS = 36
RUN_PROVENANCE = ["scored_at", "features_ref"]  # when and from which run range: may differ


def _read(catalog: Catalog, table: str, lo, hi) -> pd.DataFrame:
    df = catalog.table(table).read(lo, hi).drop(columns=RUN_PROVENANCE, errors="ignore")
    keys = list(df.columns[:2]) + (["model_version"] if "model_version" in df else [])
    return df.sort_values(keys, ignore_index=True)


@settings(max_examples=2, deadline=None, suppress_health_check=list(HealthCheck))
@given(chunks=st.lists(st.integers(1, 12), min_size=SIM_HOURS, max_size=SIM_HOURS),
       late=st.none() | st.integers(3, 30))
def test_scheduled_runs_equal_a_one_shot_rebuild_bit_for_bit(fraud_world, tmp_path_factory,
                                                             chunks, late):
    spec, end = fraud_world["spec"], fraud_world["end"]
    paths = copy_world(fraud_world, tmp_path_factory.mktemp("sim") / "world")
    catalog = Catalog(paths.lake)
    lo = end - timedelta(hours=SIM_HOURS)
    # forget what the bulk build did over the simulated window: those labels, features, scores
    tick = {d + timedelta(days=1) + spec.label_ingest_delay: d
            for d in days_between(lo - timedelta(days=1), end)}
    for d in tick.values():
        for feed in feeds_of(spec):
            catalog.table(feed.asset).delete(d)
    for h in hours_between(lo, end):
        catalog.table(EVENT_FEATURES).delete(h)
        catalog.table(BATCH_SCORES).delete(h)
    defs, instance = build_definitions(spec, str(paths.root)), dagster_instance(paths)
    labels_job = [f.asset for f in feeds_of(spec)]
    # the first label day's file misses its tick and lands ``late`` hours after it
    late_day = min(tick.values()) if late is not None else None
    held = paths.landing_labels_file(late_day) if late_day else None
    if held:
        held.rename(held.with_suffix(".held"))
    late_at = min(tick) + timedelta(hours=late) if late is not None else None

    a = lo
    for size in chunks:
        if a >= end:
            break
        b = min(a + timedelta(hours=size), end)
        now = b + timedelta(minutes=15)  # a catch-up / backfill of [a, b) running now
        for at in sorted(t for t in tick if t <= now):
            request = call_schedule(defs.get_schedule_def("daily_labels_schedule"),
                                    instance=instance, scheduled_execution_time=at,
                                    resources=defs.resources)
            if isinstance(request, dg.RunRequest):
                assert run(defs, instance, labels_job,
                           {"dagster/partition": request.partition_key}).success
            del tick[at]
        if held and late_at <= now:
            held.with_suffix(".held").rename(held)
            assert run(defs, instance, labels_job,
                       {"dagster/partition": late_day.strftime("%Y-%m-%d")}).success
            held = None
        assert run(defs, instance, list(EVENT_ASSETS),
                   range_tags(hour_key(a), hour_key(b - timedelta(hours=1)))).success
        a = b
    scheduled = {t: _read(catalog, t, lo, end) for t in (EVENT_FEATURES, BATCH_SCORES)}
    assert len(scheduled[BATCH_SCORES]) > 0

    # one-shot rebuild of the whole window, then compare bit for bit
    assert run(defs, instance, [EVENT_FEATURES, BATCH_SCORES],
               range_tags(hour_key(lo), hour_key(end - timedelta(hours=1)))).success
    for table, before in scheduled.items():
        pd.testing.assert_frame_equal(before, _read(catalog, table, lo, end), check_exact=True)
