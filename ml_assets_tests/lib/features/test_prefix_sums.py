"""The numpy prefix-sum execution of count/sum windows and time since previous
(``lib/features/prefix_sums.py``) gives the pure-SQL query's frame bit for bit: same rows, order,
columns, dtypes and DOUBLEs, NULL where NULL."""

import dataclasses
from datetime import UTC, datetime, timedelta
from unittest.mock import patch

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ml_assets.lib.core.lake import connect
from ml_assets.lib.features import prefix_sums
from ml_assets.lib.features.build import build_features
from ml_assets.lib.features.definitions import Numeric, Ratio, TimeSincePrevious, WindowAgg
from ml_assets.lib.features.prefix_sums import (
    _search_keys,
    _Times,
    compute_prefix_features,
    prefix_sum_features,
)
from ml_assets.lib.features.sql import (
    compile_feature_query,
    compute_features,
    labels_with_entities_sql,
)
from ml_assets.scenarios.synthetic import SyntheticConfig, generate_all
from ml_assets.specs.fraud import FRAUD_SPEC
from ml_assets_tests.fixtures.example_specs import example_specs
from ml_assets_tests.lib.features.test_nullable_keys import DAILY, _lake_with_empty_label_days
from ml_assets_tests.lib.features.test_nullable_keys import SPEC as ORDERS

T0 = datetime(2026, 7, 1, tzinfo=UTC)


def assert_same_as_sql(spec, events, labels: str | None, start, end, con=None) -> pd.DataFrame:
    """``compute_features`` (numpy where it can) equals the pure-SQL query on the same views."""
    con = con or connect()
    if not isinstance(events, str):
        con.register("events_in", events)
        events = "events_in"
    got = compute_features(con, spec, events, labels, start, end)
    sql = con.execute(compile_feature_query(spec), {"start": start, "end": end}).df()
    pd.testing.assert_frame_equal(got, sql, check_exact=True)
    return got


def test_fraud_spec_on_a_synthetic_world_equals_sql():
    cfg = SyntheticConfig(days=12, scale=0.02)
    events, labels, _ = generate_all(cfg)
    con = connect()
    con.register("events_t", events)
    con.register("labels_t", labels)
    lb = f"({labels_with_entities_sql(FRAUD_SPEC, 'events_t', 'labels_t')})"
    assert {f.name for f in prefix_sum_features(FRAUD_SPEC)} >= {"card_tx_count_1h",
                                                                  "card_amount_sum_24h"}
    for lo in (cfg.start, cfg.start + timedelta(days=5)):  # a later range: look-back as history
        assert_same_as_sql(FRAUD_SPEC, "events_t", lb, lo, cfg.end, con)


def _tickets(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "ticket_id": [f"t{i:x}" for i in rng.permutation(n)],  # string ids, not in time order
        "opened_at": pd.to_datetime([T0 + timedelta(hours=int(h)) for h in rng.integers(0, 400, n)],
                                    utc=True).astype("datetime64[us, UTC]"),
        "customer_id": [f"c{k}" for k in rng.integers(0, 6, n)],
        "priority": rng.choice(["low", "high", "odd"], n),
        "message_chars": rng.integers(0, 5000, n).astype("float64"),
    })


def test_example_specs_equal_sql():
    tickets = example_specs()["support_tickets"]
    assert_same_as_sql(tickets, _tickets(300, 1), None, T0, T0 + timedelta(days=20))


AMOUNTS = st.sampled_from([None, 0.0, 1.0, 2.5, -5.25, 0.1, 0.3, 1e-10, 123456.789123456,
                           -98765432.1, 3.3e8, 7e9])
rows = st.lists(st.tuples(st.integers(0, 12 * 24).map(lambda q: timedelta(minutes=5 * q)),
                          st.integers(0, 2), st.sampled_from([None, None, 0, 1]), AMOUNTS),
                min_size=1, max_size=40)
WINDOWED = dataclasses.replace(ORDERS, features=tuple(
    f for key, tag in (("customer_id", "c"), ("device_id", "d"), (("customer_id", "device_id"), "cd"))
    for f in (WindowAgg(f"n_5m_{tag}", key, "count", "5m"),
              WindowAgg(f"sum_1h_{tag}", key, "sum", "1h", "amount"),
              WindowAgg(f"max_1h_{tag}", key, "max", "1h", "amount"),  # stays in SQL
              WindowAgg(f"sum_1d_{tag}", key, "sum", "1d", "amount"),
              TimeSincePrevious(f"gap_{tag}", key, within="1h", unit="min"))))
# the query keeps row-wise features only: with events in (ts, id) order it skips its sort
ROW_WISE_REST = dataclasses.replace(WINDOWED, features=(
    Numeric("amount_raw", "amount"), *(f for f in WINDOWED.features if not f.name.startswith("max_")),
    Ratio("amount_per_1k", "amount", 1000.0)))


def _orders(rows_: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame({
        "order_id": np.arange(len(rows_)) * 7 % 101,  # ids not in time order
        "order_ts": pd.to_datetime([T0 + r[0] for r in rows_], utc=True).astype("datetime64[us, UTC]"),
        "customer_id": pd.array([r[1] for r in rows_], dtype="int64"),
        "device_id": pd.array([r[2] for r in rows_], dtype="Int64"),
        "amount": [np.nan if r[3] is None else r[3] for r in rows_],
    })


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows, st.integers(0, 24), st.booleans(), st.sampled_from([WINDOWED, ROW_WISE_REST]),
       st.sampled_from([1, 2, 3, 5, prefix_sums.BLOCK_ROWS]), st.booleans())
def test_ties_edges_null_keys_null_and_large_amounts_equal_sql(rows_, start_hour, presorted, spec,
                                                               block, ranks):
    """Ties at one instant, events exactly ``w`` apart (a 5-minute grid), NULL devices, NULL,
    negative, tiny and large amounts (window sums beyond 2**53 units); events in time order or
    not; a range starting after the first events; blocks of a few rows, so that runs of ties,
    entities and blocks without targets straddle block edges; keys by time or, as when
    ``groups * stride`` would overflow int64, by rank among the distinct times."""
    events = _orders(rows_)
    if presorted:
        events = events.sort_values(["order_ts", "order_id"], kind="stable")
    with (patch.object(prefix_sums, "BLOCK_ROWS", block),
          patch.object(prefix_sums, "KEY_LIMIT", 1 if ranks else prefix_sums.KEY_LIMIT)):
        assert_same_as_sql(spec, events, None, T0 + timedelta(hours=start_hour),
                           T0 + timedelta(days=2))


@pytest.mark.parametrize("amount", [5e9, 1e10])  # units beyond int64 total / beyond int64
def test_a_sum_that_could_overflow_int64_is_left_to_sql(amount):
    events = _orders([(timedelta(minutes=m), 1, 1, amount) for m in range(3)])
    con = connect()
    got = assert_same_as_sql(WINDOWED, events, None, T0, T0 + timedelta(days=1), con)
    assert got["sum_1h_c"].tolist() == [0.0, amount, 2 * amount]
    computed, _ = compute_prefix_features(con, WINDOWED, prefix_sum_features(WINDOWED), T0,
                                          T0 + timedelta(days=1))
    assert "n_5m_c" in computed and "sum_1h_c" not in computed


def test_two_events_sharing_time_and_id_leave_everything_to_sql():
    events = _orders([(timedelta(0), 1, 1, 1.0), (timedelta(0), 2, 1, 2.0)])
    events["order_id"] = 5
    con = connect()
    con.register("events_in", events)
    compute_features(con, WINDOWED, "events_in", None, T0, T0 + timedelta(days=1))
    assert compute_prefix_features(con, WINDOWED, prefix_sum_features(WINDOWED), T0,
                                   T0 + timedelta(days=1)) == ({}, False)


@pytest.mark.parametrize("steps", [2**25, 64])  # 64 one-second steps: ties, starts on a time
def test_search_keys_that_would_overflow_int64_fall_back_to_ranks_with_the_same_positions(steps):
    rng = np.random.default_rng(3)
    group = np.sort(rng.integers(0, 20, 500)) << 40  # groups x (span + window) beyond int64
    at = np.concatenate([np.sort(rng.integers(0, steps, n)) for n in np.bincount(
        np.unique(group, return_inverse=True)[1])]) * 1_000_000
    at -= at.min()  # relative to the first time, as _entity_features passes it
    by_time = np.argsort(at, kind="stable")
    order = np.empty_like(by_time)
    order[by_time] = np.arange(len(at))  # at == (times.t - times.t0)[order]
    key, starts_of = _search_keys(group.copy(), at, [5_000_000, 60_000_000],
                                   _Times(at[by_time] + 7), order)
    for w in (5_000_000, 60_000_000):
        start = starts_of(w, slice(None))
        brute = [np.sum((group == g) & (at < t - w)) + np.sum(group < g)
                 for g, t in zip(group, at, strict=True)]
        assert np.searchsorted(key, start).tolist() == brute


def test_a_chunked_build_over_the_lake_equals_one_chunk(tmp_path):
    """``build_features`` reads each chunk's look-back from Parquet (an expression: read once
    into a temp table); 7-hour chunks give the rows of one 3-day chunk, bit for bit."""
    paths, _ = _lake_with_empty_label_days(tmp_path, [])
    whole, chunked = (pd.concat(df for _, _, df in build_features(
        paths, DAILY, T0, T0 + timedelta(days=3), chunk=chunk)).reset_index(drop=True)
        for chunk in (timedelta(days=3), timedelta(hours=7)))
    pd.testing.assert_frame_equal(chunked, whole, check_exact=True)
