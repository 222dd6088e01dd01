"""Nullable entity keys (``DatasetSpec.nullable_keys``): an event lacking a nullable key is
valid, gets for every feature over that key exactly what an unseen entity's first event gets,
still counts in its other keys' windows, and is scored alike offline and online. NULL-key
events never form one shared "null entity"."""

import dataclasses
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ml_assets.lib.core.catalog import RAW_EVENTS, RAW_LABELS, Catalog
from ml_assets.lib.core.datasets import Attribute, DatasetSpec
from ml_assets.lib.core.identifiers import SpecError
from ml_assets.lib.core.paths import DataPaths
from ml_assets.lib.docs.interface_contract import InterfaceContract, RequestError, default_config
from ml_assets.lib.features.build import build_features
from ml_assets.lib.features.contract import feature_contract_problems
from ml_assets.lib.features.definitions import (
    LabelAgg,
    Numeric,
    Ratio,
    TimeSincePrevious,
    WindowAgg,
)
from ml_assets.lib.features.online import state_from_frames
from ml_assets.lib.features.parity import differences, replay_online
from ml_assets.lib.ingest.contracts import validate_events
from ml_assets.serving.openapi import openapi_document
from ml_assets_tests.fixtures.brute_force import assert_all_match_brute_force, compiled_features

T0 = datetime(2026, 7, 1, tzinfo=UTC)


def _over(key) -> tuple:
    tag = key if isinstance(key, str) else "both"
    return (WindowAgg(f"{tag}_n_1h", key, "count", "1h"),
            WindowAgg(f"{tag}_sum_1h", key, "sum", "1h", "amount"),
            WindowAgg(f"{tag}_mean_1d", key, "mean", "1d", "amount"),
            WindowAgg(f"{tag}_max_1d", key, "max", "1d", "amount"),
            WindowAgg(f"{tag}_distinct_1d", key, "distinct", "1d", "amount"),
            TimeSincePrevious(f"{tag}_gap", key, within="1d"),
            LabelAgg(f"{tag}_pos_7d", key, "positives", "7d"),
            LabelAgg(f"{tag}_lab_7d", key, "count", "7d"),
            LabelAgg(f"{tag}_rate_7d", key, "rate", "7d"))


SPEC = DatasetSpec(
    name="orders", model_name="orders_model", event_id="order_id", event_ts="order_ts",
    entity_keys=("customer_id", "device_id"),
    attributes=(Attribute("amount", "numeric", min_value=0.0),),
    label="returned", label_ts="returned_ts",
    features=(Numeric("amount_raw", "amount"), *_over("customer_id"), *_over("device_id"),
              *_over(("customer_id", "device_id")),
              Ratio("amount_vs_device_mean", "amount", "device_id_mean_1d")),
    start=T0, owner="orders-team", nullable_keys=("device_id",))
DEVICE_FEATURES = [f.name for f in SPEC.features
                   if "device_id" in getattr(f, "entities", ()) or f.name == "amount_vs_device_mean"]


def _events(rows: list[tuple]) -> pd.DataFrame:
    """``rows``: (minutes after T0, customer_id, device_id or None, amount)."""
    return pd.DataFrame({
        "order_id": range(1, len(rows) + 1),
        "order_ts": pd.to_datetime([T0 + timedelta(minutes=r[0]) for r in rows], utc=True)
        .astype("datetime64[us, UTC]"),
        "customer_id": pd.array([r[1] for r in rows], dtype="int64"),
        "device_id": pd.array([r[2] for r in rows], dtype="Int64"),
        "amount": [float(r[3]) for r in rows],
    })


def _labels(events: pd.DataFrame, returned: dict[int, int], delay: timedelta) -> pd.DataFrame:
    """Labels of the given order ids, dated ``delay`` after the order and available at once."""
    lab = events[events["order_id"].isin(list(returned))].copy()
    lab["label"] = lab["order_id"].map(returned).astype("float64")
    lab["label_ts"] = lab["order_ts"] + delay
    lab["available_at"] = lab["label_ts"]
    return lab[["order_id", "customer_id", "device_id", "label_ts", "available_at", "label"]]


def _offline(events: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    return compiled_features(SPEC, events, labels, T0, T0 + timedelta(days=10))


# Two customers; device 7 is used by both; orders 4, 5 and 6 have no device (4 and 5 are six seconds
# apart), order 8 is device 9's first-ever order. Returns are known for orders 1-5.
ROWS = [(0, 1, 7, 10), (10, 1, 7, 20), (20, 2, 7, 30), (30, 1, None, 40), (30.1, 2, None, 50),
        (35, 1, None, 60), (40, 1, 7, 70), (45, 2, 9, 80)]
EVENTS = _events(ROWS)
LABELS = _labels(EVENTS, {1: 1, 2: 0, 3: 1, 4: 1, 5: 1}, timedelta(minutes=1))


@pytest.fixture(scope="module")
def offline() -> pd.DataFrame:
    return _offline(EVENTS, LABELS)


# -- (a) contract -------------------------------------------------------------------------------
def test_null_in_a_nullable_key_is_valid_and_in_another_key_is_quarantined_naming_it():
    batch = pd.DataFrame({
        "order_id": [1, 2, 3], "order_ts": pd.to_datetime([T0] * 3, utc=True),
        "customer_id": [1.0, None, 3.0], "device_id": [None, 5.0, None],
        "amount": [1.0, 2.0, 3.0],
        "_source": "landing/events/x.parquet", "_row": [0, 1, 2],
        "_lo": pd.Timestamp(T0), "_hi": pd.Timestamp(T0 + timedelta(hours=1)),
    })
    valid, quarantined = validate_events(batch, SPEC, T0 + timedelta(hours=2))
    assert valid["order_id"].tolist() == [1, 3]
    assert valid["device_id"].dtype == "Int64" and valid["device_id"].isna().all()
    assert valid["customer_id"].dtype == "int64"
    assert quarantined["row"].tolist() == [1]
    assert "customer_id" in quarantined["reason"].iloc[0]
    assert "device_id" not in quarantined["reason"].iloc[0]


# -- (b) offline features -------------------------------------------------------------------------
def test_null_key_event_gets_what_a_first_ever_event_gets(offline):
    fresh = offline.loc[8, DEVICE_FEATURES]  # device 9's first order (customer 2 has history)
    for order in (4, 5, 6):
        got = offline.loc[order, DEVICE_FEATURES]
        assert got.isna().equals(fresh.isna()), (order, got[got.isna() != fresh.isna()])
        assert (got.fillna(-1) == fresh.fillna(-1)).all(), order
    assert offline.loc[6, "device_id_n_1h"] == 0  # orders 4 and 5 (5 and 4.9 min before) unseen
    assert offline.loc[6, "device_id_lab_7d"] == 0  # their returns (known by then) too
    assert offline.loc[8, "device_id_lab_7d"] == 0


def test_null_key_event_counts_in_its_other_keys_windows(offline):
    # customer 1 at minute 35: orders 1, 2 and 4 (null device) before it
    assert offline.loc[6, "customer_id_n_1h"] == 3
    assert offline.loc[6, "customer_id_sum_1h"] == 10 + 20 + 40
    assert offline.loc[6, "customer_id_lab_7d"] == 3  # returns of orders 1, 2 and 4
    assert offline.loc[7, "customer_id_n_1h"] == 4
    assert offline.loc[7, "customer_id_gap"] == 5 * 60  # the previous order is null-device 6
    # device 7 at minute 40 sees only its own orders 1-3, none of the null-device ones
    assert offline.loc[7, "device_id_n_1h"] == 3
    assert offline.loc[7, "both_n_1h"] == 2


def test_offline_equals_brute_force_and_meets_the_feature_contract(offline):
    assert_all_match_brute_force(offline, EVENTS, LABELS, SPEC)
    assert feature_contract_problems(offline.reset_index()[
        ["order_id", "order_ts", "customer_id", "device_id", *SPEC.feature_names]], SPEC) == []


# -- (c) online / serving ------------------------------------------------------------------------
def _online(history: pd.DataFrame, labels: pd.DataFrame, replay: pd.DataFrame) -> pd.DataFrame:
    return replay_online(state_from_frames(SPEC, history, labels.rename(
        columns={"label": "returned", "label_ts": "returned_ts"})), replay)


def test_online_equals_offline_for_null_key_events(offline):
    # history loaded in bulk (orders 1-5), the rest replayed one request at a time
    online = _online(EVENTS.iloc[:5], LABELS, EVENTS.iloc[5:])
    counts, examples = differences(online, offline.loc[6:].reset_index(), SPEC.feature_names,
                                   "order_id")
    assert not any(counts.values()), examples
    # everything replayed: null-device events learnt one by one never meet either
    online = _online(EVENTS.iloc[:0], LABELS, EVENTS)
    counts, examples = differences(online, offline.reset_index(), SPEC.feature_names, "order_id")
    assert not any(counts.values()), examples


def test_request_may_omit_a_nullable_key_but_not_another():
    contract = InterfaceContract(SPEC, default_config(SPEC))
    schema = contract.input_schema()
    assert schema["device_id"]["nullable"] and not schema["device_id"]["required"]
    assert not schema["customer_id"]["nullable"] and schema["customer_id"]["required"]
    event_schema = openapi_document(contract)["components"]["schemas"]["Event"]
    assert event_schema["properties"]["device_id"]["type"] == ["integer", "null"]
    assert "device_id" not in event_schema["required"]
    assert event_schema["properties"]["customer_id"]["type"] == "integer"
    at = "2026-07-01T00:40:00+00:00"
    now = T0 + timedelta(hours=1)
    for body in ({"order_id": 9, "order_ts": at, "customer_id": 1, "amount": 5.0},
                 {"order_id": 9, "order_ts": at, "customer_id": 1, "device_id": None,
                  "amount": 5.0}):
        event = contract.validate_event(body, now)
        assert event["device_id"] is None
        state = state_from_frames(SPEC, EVENTS.iloc[:7], None)
        feats = state.features(event)
        assert feats["device_id_n_1h"] == 0 and np.isnan(feats["device_id_gap"])
        assert feats["customer_id_n_1h"] == 4
        assert state.unknown_entities(event) == ["device_id"]
        state.add_event(event)  # learnt for its customer only
        later = {**event, "order_id": 10, "order_ts": event["order_ts"] + pd.Timedelta(minutes=1)}
        assert state.features(later)["customer_id_n_1h"] == 6  # orders 1, 2, 4, 6, 7, 9
        assert state.features(later)["device_id_n_1h"] == 0
    for body, field in (({"order_id": 9, "order_ts": at, "device_id": 7, "amount": 5.0},
                         "customer_id"),
                        ({"order_id": 9, "order_ts": at, "customer_id": None, "device_id": 7,
                          "amount": 5.0}, "customer_id")):
        with pytest.raises(RequestError) as err:
            contract.validate_event(body, now)
        assert err.value.status == 422 and err.value.field == field


# -- (d) property: random events with random null devices, offline == brute force == online ------
event_rows = st.lists(
    st.tuples(st.integers(0, 48 * 6).map(lambda q: 10 * q), st.integers(0, 2),
              st.sampled_from([None, None, 0, 1]), st.sampled_from([1, 2.5, 10])),
    min_size=2, max_size=30)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event_rows, st.sampled_from([0, 1]))
def test_random_null_keys_match_brute_force_and_online(rows, returned):
    events = _events(rows)
    labels = _labels(events, dict.fromkeys(events["order_id"][::2], returned),
                     timedelta(minutes=30))
    got = _offline(events, labels)
    assert_all_match_brute_force(got, events, labels, SPEC)
    online_labels = labels.rename(columns={"label": "returned", "label_ts": "returned_ts"})
    state = state_from_frames(SPEC, events.iloc[:0], online_labels)
    online = replay_online(state, events)
    counts, examples = differences(online, got.reset_index(), SPEC.feature_names, "order_id")
    assert not any(counts.values()), examples


def test_the_rollout_arm_key_cannot_be_nullable():
    with pytest.raises(SpecError, match="first entity key .'customer_id'. decides rollout arms"):
        dataclasses.replace(SPEC, nullable_keys=("customer_id",))


DAILY = dataclasses.replace(SPEC, partition_grain="daily")


def _lake_with_empty_label_days(tmp_path, label_days: list[int]) -> tuple:
    """Three days of events in a daily lake and empty ``raw_labels`` files of ``label_days``
    stored as an empty ingest writes them: key and time columns of Parquet NULL type."""
    paths = DataPaths(tmp_path)
    events = _events([(m, m % 3, (m % 2) or None, m % 7) for m in range(0, 3 * 24 * 60, 97)])
    catalog = Catalog(paths.lake, DAILY.partition_grain)
    for d in range(3):
        day = T0 + timedelta(days=d)
        catalog.table(RAW_EVENTS).write(day, events[(events["order_ts"] >= day)
                                                    & (events["order_ts"] < day + timedelta(days=1))])
    empty = pa.table({"order_id": pa.array([], pa.int64()), "returned": pa.array([], pa.int8()),
                      "returned_ts": pa.array([], pa.null()), "customer_id": pa.array([], pa.null()),
                      "device_id": pa.array([], pa.null()),
                      "available_at": pa.array([], pa.timestamp("us", tz="UTC"))})
    for d in label_days:
        path = catalog.table(RAW_LABELS).path(T0 + timedelta(days=d))
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(empty, path)
    return paths, events


def test_empty_label_history_builds_the_no_history_features(tmp_path):
    """Issue 16: every label partition of the look-back empty (NULL-typed columns) gave a
    DuckDB binder error on ``date_trunc``; it gives the brute force with no labels."""
    paths, events = _lake_with_empty_label_days(tmp_path, [0, 1, 2])
    got = pd.concat(df for _, _, df in build_features(paths, DAILY, T0, T0 + timedelta(days=3)))
    got = got.set_index("order_id")
    assert len(got) == len(events)
    assert_all_match_brute_force(got, events, _labels(events, {}, timedelta(0)), DAILY)
    label_feats = [f.name for f in DAILY.features if isinstance(f, LabelAgg)]
    counts = [n for n in label_feats if "_rate_" not in n]
    assert (got[counts] == 0).all().all()
    assert got[[n for n in label_feats if "_rate_" in n]].isna().all().all()

