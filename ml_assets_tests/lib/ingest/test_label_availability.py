"""A late input counts from when the pipeline could see it: a label file's availability is
recorded at ingestion, and features built hour by hour as the schedules run them equal a
one-shot rebuild bit for bit (issue 14, item 1)."""

from datetime import timedelta

import pandas as pd
import pyarrow.parquet as pq

from ml_assets.lib.core.catalog import EVENT_FEATURES, RAW_EVENTS, RAW_LABELS, Catalog
from ml_assets.lib.core.lake import HOUR, days_between, hours_between
from ml_assets.lib.core.paths import DataPaths
from ml_assets.lib.features.build import build_features, split_by_period
from ml_assets.lib.ingest.landing import AVAILABLE_AT, ingest_events, ingest_labels
from ml_assets.scenarios.synthetic import SyntheticConfig, write_landing
from ml_assets.specs.fraud import FRAUD_SPEC as SPEC

# chargebacks arrive 7-60 days after the event: the schedule is simulated over the last 2 days
WORLD = SyntheticConfig(seed=11, days=20, scale=0.03)
SIMULATED_FROM = WORLD.start + timedelta(days=18)


def _world(root) -> DataPaths:
    paths = DataPaths(root)
    write_landing(WORLD, paths)
    return paths


def _ingest_day(paths: DataPaths, day) -> None:
    valid, _ = ingest_labels(paths, SPEC, [day], WORLD.end + timedelta(days=1))
    for d, df in valid.items():
        Catalog(paths.lake).table(RAW_LABELS).write(d, df)


def _build_hours(paths: DataPaths, lo, hi) -> None:
    table = Catalog(paths.lake).table(EVENT_FEATURES)
    for a, b, chunk in build_features(paths, SPEC, lo, hi):
        for h, df in split_by_period(chunk, SPEC.event_ts, hours_between(a, b), HOUR).items():
            table.write(h, df)


def _schedule(paths: DataPaths, late_day=None, late_until=None) -> pd.DataFrame:
    """Run the world as the schedules do: each hour's events and features at hour end + 15 min,
    each day's labels at 02:30 the next day; ``late_day``'s file is ingested only once the
    hours before ``late_until`` were built."""
    catalog = Catalog(paths.lake)
    events, _ = ingest_events(paths, SPEC, hours_between(WORLD.start, WORLD.end),
                              WORLD.end + timedelta(days=1))
    for h, df in events.items():
        catalog.table(RAW_EVENTS).write(h, df)
    tick = {d + timedelta(days=1) + SPEC.label_ingest_delay: d
            for d in days_between(WORLD.start, WORLD.end)}
    for at, day in list(tick.items()):  # the history before the simulation, loaded in bulk
        if at <= SIMULATED_FROM:
            _ingest_day(paths, day)
            del tick[at]
    _build_hours(paths, WORLD.start, SIMULATED_FROM)
    for h in hours_between(SIMULATED_FROM, WORLD.end):
        for at, day in list(tick.items()):
            if at <= h + timedelta(hours=1, minutes=15) and day != late_day:
                _ingest_day(paths, day)
                del tick[at]
        if late_day is not None and h == late_until:
            _ingest_day(paths, late_day)
        _build_hours(paths, h, h + timedelta(hours=1))
    return catalog.table(EVENT_FEATURES).read().sort_values(SPEC.event_id, ignore_index=True)


def _rebuild(paths: DataPaths) -> pd.DataFrame:
    _build_hours(paths, WORLD.start, WORLD.end)
    return Catalog(paths.lake).table(EVENT_FEATURES).read().sort_values(SPEC.event_id,
                                                                          ignore_index=True)


def test_labels_landing_after_an_hour_was_built_do_not_change_it_on_rebuild(tmp_path):
    paths = _world(tmp_path)
    days = days_between(WORLD.start, WORLD.end)
    # day 17's file misses its 02:30 tick and lands after day 18's 17:00 hour was built
    late_day, until = days[17], days[18] + timedelta(hours=17)
    scheduled = _schedule(paths, late_day, until)
    assert scheduled["merchant_fraud_rate_30d"].notna().sum() > 1000  # labels count
    labels = Catalog(paths.lake).table(RAW_LABELS)
    for day in days[:-1]:  # the last day's file is due after the world ends
        got = pq.read_table(labels.path(day)).to_pandas()[AVAILABLE_AT]
        if day == late_day:  # available from the end of the newest hour built before it
            assert len(got) and (got == pd.Timestamp(until)).all()
        else:  # on time: end of the file's day plus the spec's ingest delay (02:30 next day)
            assert (got == pd.Timestamp(day + timedelta(days=1, hours=2, minutes=30))).all()
    rebuilt = _rebuild(paths)
    # bit for bit: same rows, same values (NaN == NaN)
    pd.testing.assert_frame_equal(scheduled, rebuilt, check_exact=True)
    # re-ingesting a label file later (a backfill) keeps its first availability
    _ingest_day(paths, days[1])
    pd.testing.assert_frame_equal(scheduled, _rebuild(paths), check_exact=True)
