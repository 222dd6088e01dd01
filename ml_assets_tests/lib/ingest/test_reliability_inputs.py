"""Bad-input catalogue (docs/reliability.md, rows I*/L*/S*/O*): each bad input gets a clear
error naming the file/row/field, or quarantine with the reason; valid rows are never dropped.
Rows already proven in test_contracts.py are not repeated here."""

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from ml_assets.lib.core.catalog import Catalog
from ml_assets.lib.core.datasets import Attribute
from ml_assets.lib.core.identifiers import SpecError
from ml_assets.lib.core.paths import DataPaths, write_parquet_atomic
from ml_assets.lib.features.build import MissingUpstreamError, build_features
from ml_assets.lib.features.definitions import (
    Categorical,
    LabelAgg,
    Ratio,
    TimeSincePrevious,
    WindowAgg,
)
from ml_assets.lib.features.online import OnlineState
from ml_assets.lib.ingest.contracts import ContractError
from ml_assets.lib.ingest.landing import ingest_events, ingest_labels
from ml_assets.scenarios.synthetic import DEVICES
from ml_assets.specs.fraud import FRAUD_SPEC
from ml_assets.specs.loading import spec_from_env
from ml_assets_tests.fixtures.reliability_world import HOUR, NOW, good_events, hours, spec_with

SPEC = FRAUD_SPEC
DAY = HOUR.replace(hour=0)


def land(tmp_path, df: pd.DataFrame, hour=HOUR) -> DataPaths:
    paths = DataPaths(tmp_path).ensure()
    df.to_parquet(paths.landing_events_file(hour), index=False)
    return paths


def ingest(paths, hour=HOUR):
    valid, quarantined = ingest_events(paths, SPEC, [hour], NOW)
    return valid[hour].to_pandas(), quarantined


# -- files --------------------------------------------------------------------------------------
def test_I01_truncated_parquet_fails_naming_the_file(tmp_path):
    paths = land(tmp_path, good_events(n=200))
    path = paths.landing_events_file(HOUR)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # an upload cut off half way
    with pytest.raises(ContractError, match=r"events/2026-07-01T10\.parquet: unreadable Parquet"):
        ingest(paths)


def test_I02_csv_is_refused_by_name_not_reported_as_missing(tmp_path):
    """Decision: landing files are Parquet only (CSV loses types and time zones). A CSV that
    arrives instead of the Parquet file is named in the error, so nobody 'fixes' the hour by
    landing an empty file and loses its rows."""
    paths = DataPaths(tmp_path).ensure()
    good_events().to_csv(paths.landing_events_file(HOUR).with_suffix(".csv"), index=False)
    with pytest.raises(ContractError, match=r"\['2026-07-01T10\.csv'\] is there.*must be Parquet"):
        ingest(paths)


def test_I03_csv_bytes_under_a_parquet_name_are_unreadable_parquet(tmp_path):
    paths = DataPaths(tmp_path).ensure()
    paths.landing_events_file(HOUR).write_text(good_events().to_csv(index=False))
    with pytest.raises(ContractError, match=r"T10\.parquet: unreadable Parquet.*re-deliver"):
        ingest(paths)


def test_I04_missing_column_fails_naming_it(tmp_path):
    paths = land(tmp_path, good_events().drop(columns=["device"]))
    with pytest.raises(ContractError, match=r"T10\.parquet: required column\(s\) \['device'\] missing"):
        ingest(paths)


def test_I05_timestamp_column_as_text_fails_naming_it(tmp_path):
    paths = land(tmp_path, good_events().astype({"event_ts": "str"}))
    with pytest.raises(ContractError, match=r"T10\.parquet: column 'event_ts' has type .*expected a UTC"):
        ingest(paths)


def test_I06_zero_row_file_with_the_contract_columns_is_an_empty_partition(tmp_path):
    valid, quarantined = ingest(land(tmp_path, good_events().iloc[0:0]))
    assert len(valid) == 0 and quarantined.empty
    assert list(valid.columns) == SPEC.event_columns


# -- rows ---------------------------------------------------------------------------------------
def test_I07_fractional_entity_key_is_quarantined_not_truncated(tmp_path):
    """Found by this catalogue: 1.5 used to be cast to card 1 - another card's history."""
    df = good_events()
    df["card_id"] = [0.0, 1.5, 0.0, 1.0, np.inf]
    valid, quarantined = ingest(land(tmp_path, df))
    assert sorted(quarantined["row"]) == [1, 4]
    assert quarantined["reason"].str.contains("card_id: not an integer").all()
    assert valid["card_id"].tolist() == [0, 0, 1] and valid["card_id"].dtype == "int64"


def test_I08_text_event_id_in_an_integer_spec_is_quarantined(tmp_path):
    df = good_events().astype({"event_id": "str"})
    df.loc[1, "event_id"] = "abc"
    valid, quarantined = ingest(land(tmp_path, df))
    assert quarantined["row"].tolist() == [1] and "event_id: not an integer" in quarantined["reason"][0]
    assert '"abc"' in quarantined["record"][0]
    assert valid["event_id"].tolist() == [1, 3, 4, 5]


def test_I09_every_row_fault_at_once_loses_no_valid_row(tmp_path):
    """valid + quarantined == arrived, the valid rows are exactly the clean ones, and every
    quarantined row keeps its original record and a reason."""
    df = good_events(n=12).astype({"amount": "str"})  # a text column, as exports produce
    df["event_ts"] = pd.date_range(HOUR, periods=12, freq="4min", tz="UTC").astype("datetime64[us, UTC]")
    faults = {1: ("amount", None), 2: ("amount", "inf"), 3: ("amount", "-1.0"),
              4: ("amount", "12,50"), 5: ("event_id", 1), 6: ("card_id", None),
              7: ("event_ts", pd.Timestamp(NOW + timedelta(days=3))),
              8: ("event_ts", pd.Timestamp(HOUR - timedelta(hours=2))),
              9: ("distance_km", 30_000.0)}
    for row, (col, value) in faults.items():
        df.loc[row, col] = value
    df["card_id"] = df["card_id"].astype("float64")
    valid, quarantined = ingest(land(tmp_path, df))
    assert len(valid) + len(quarantined) == len(df)
    assert sorted(quarantined["row"]) == sorted(faults)
    assert valid["event_id"].tolist() == [1, 11, 12]  # rows 0, 10, 11: nothing valid dropped
    assert (quarantined["reason"].str.len() > 0).all() and quarantined["record"].notna().all()
    assert quarantined["source"].eq("landing/events/2026-07-01T10.parquet").all()


def test_I10_rows_out_of_order_inside_a_file_are_accepted_and_sorted(tmp_path):
    df = good_events(n=8).sample(frac=1.0, random_state=3)
    valid, quarantined = ingest(land(tmp_path, df))
    assert quarantined.empty and valid["event_ts"].is_monotonic_increasing and len(valid) == 8


# -- labels -------------------------------------------------------------------------------------
def label_world(tmp_path) -> DataPaths:
    """Five ingested events at HOUR; label files are landed by each test."""
    paths = land(tmp_path, good_events())
    valid, _ = ingest(paths)
    write_parquet_atomic(valid, Catalog(paths.lake).table("raw_events").path("2026-07-01-10:00"))
    return paths


def labels(rows: list[tuple], day=DAY + timedelta(days=10)) -> pd.DataFrame:
    return pd.DataFrame({
        "event_id": pd.array([r[0] for r in rows], dtype="int64"),
        "label": pd.array([r[1] for r in rows], dtype="object"),
        "label_ts": pd.DatetimeIndex([day + timedelta(hours=r[2]) for r in rows]).astype(
            "datetime64[us, UTC]"),
    })


def ingest_label_day(paths, df, day=DAY + timedelta(days=10)):
    df.to_parquet(paths.landing_labels_file(day), index=False)
    valid, quarantined = ingest_labels(paths, SPEC, [day], NOW)
    write_parquet_atomic(valid[day], Catalog(paths.lake).table("raw_labels").path(day.strftime("%Y-%m-%d")))
    return valid[day].to_pandas(), quarantined


def test_L01_duplicate_and_conflicting_labels_in_one_file(tmp_path):
    paths = label_world(tmp_path)
    valid, q = ingest_label_day(paths, labels([(1, 1, 1), (1, 1, 2), (2, 0, 1), (2, 1, 3),
                                               (3, 0, 4)]))
    reasons = dict(zip(q["row"], q["reason"], strict=True))
    assert "duplicate event_id (first seen in landing/labels/2026-07-11.parquet row 0)" in reasons[1]
    assert "conflicting labels" in reasons[2] and "conflicting labels" in reasons[3]
    assert sorted(valid["event_id"]) == [1, 3] and len(valid) + len(q) == 5


def test_L02_label_repeated_or_contradicted_in_a_later_file_is_quarantined(tmp_path):
    """Found by this catalogue: a label re-sent (or contradicted) in a later day's file used to
    pass, so the training set held the event twice, once with each label."""
    paths = label_world(tmp_path)
    first, _ = ingest_label_day(paths, labels([(1, 0, 1), (2, 1, 1)]))
    later = DAY + timedelta(days=12)
    valid, q = ingest_label_day(paths, labels([(1, 1, 5), (2, 1, 5), (3, 0, 5)], later), later)
    assert valid["event_id"].tolist() == [3]
    assert q["reason"].str.contains("already labeled in raw_labels/2026-07-11").all()
    assert sorted(q["row"]) == [0, 1]
    # rerunning the first day itself is not a duplicate of itself
    again, q_again = ingest_label_day(paths, labels([(1, 0, 1), (2, 1, 1)]))
    assert sorted(again["event_id"]) == [1, 2] and q_again.empty


def test_L03_label_for_an_unknown_event_is_quarantined(tmp_path):
    paths = label_world(tmp_path)
    valid, q = ingest_label_day(paths, labels([(1, 1, 1), (999, 1, 1)]))
    assert valid["event_id"].tolist() == [1]
    assert q["row"].tolist() == [1] and "unknown event_id" in q["reason"][0]


def test_L04_label_dated_before_its_event_is_quarantined(tmp_path):
    paths = label_world(tmp_path)
    day = DAY  # the events are at 10:00-10:28 on this day
    valid, q = ingest_label_day(paths, labels([(1, 1, 9), (2, 1, 11)], day), day)
    assert valid["event_id"].tolist() == [2]
    assert "label_ts not after the event's event_ts" in q["reason"][0]


def test_L05_label_values_outside_0_1_or_not_numbers_are_quarantined(tmp_path):
    paths = label_world(tmp_path)
    df = labels([(1, "2", 1), (2, "yes", 1), (3, None, 1), (4, "1", 1)]).astype({"label": "str"})
    valid, q = ingest_label_day(paths, df)  # a text label column, as a CSV export would give
    reasons = dict(zip(q["row"], q["reason"], strict=True))
    assert "label: failed isin" in reasons[0] and "label: not a number" in reasons[1]
    assert "not_nullable" in reasons[2]
    assert valid["event_id"].tolist() == [4]


def test_L06_naive_label_timestamps_fail_the_file(tmp_path):
    paths = label_world(tmp_path)
    df = labels([(1, 1, 1)])
    df["label_ts"] = df["label_ts"].dt.tz_localize(None)
    with pytest.raises(ContractError, match=r"labels/2026-07-11\.parquet: column 'label_ts' holds "
                                            "timezone-naive"):
        ingest_label_day(paths, df)


# -- out of order and late files ----------------------------------------------------------------
def _lake_hours(paths: DataPaths, hs: list) -> None:
    for h in hs:
        valid, _ = ingest_events(paths, SPEC, [h], NOW)
        write_parquet_atomic(valid[h], Catalog(paths.lake).table("raw_events").path(h.strftime("%Y-%m-%d-%H:00")))


def _features(paths, lo, hi) -> pd.DataFrame:
    return pd.concat([chunk for _, _, chunk in build_features(paths, SPEC, lo, hi)],
                     ignore_index=True)


def test_O01_out_of_order_and_late_files_never_give_features_with_a_gap(tmp_path):
    """Hours land 3, 1, then (late) 2. Features for hour 3 refuse to compute while hour 2 is
    missing (naming it) instead of silently using a gap; once the late file lands, the result
    equals the in-order run."""
    start = SPEC.start_utc
    hs = hours(start, 4)
    in_order = DataPaths(tmp_path / "in_order").ensure()
    shuffled = DataPaths(tmp_path / "shuffled").ensure()
    for i, h in enumerate(hs):
        df = good_events(h, n=6, first_id=100 * i)
        df["card_id"] = 7  # one card, so every window depends on the earlier hours
        for p in (in_order, shuffled):
            df.to_parquet(p.landing_events_file(h), index=False)
    _lake_hours(in_order, hs)
    _lake_hours(shuffled, [hs[3], hs[0], hs[1]])
    with pytest.raises(MissingUpstreamError, match=r"missing 1 partition.*2026-07-01-02:00"):
        _features(shuffled, hs[3], hs[3] + timedelta(hours=1))
    _lake_hours(shuffled, [hs[2]])  # the late file
    got = _features(shuffled, hs[3], hs[3] + timedelta(hours=1))
    want = _features(in_order, hs[3], hs[3] + timedelta(hours=1))
    pd.testing.assert_frame_equal(got, want)
    assert got["card_tx_count_24h"].iloc[0] == 18  # the three earlier hours all count


# -- unknown categories -------------------------------------------------------------------------
def test_C01_unknown_categories_go_to_the_unknown_bucket_offline_and_online(tmp_path):
    start = SPEC.start_utc
    hs = hours(start, 2)
    paths = DataPaths(tmp_path).ensure()
    for i, h in enumerate(hs):
        df = good_events(h, n=4, first_id=10 * i)
        if i == 1:
            df["device"] = ["smart-fridge", None, "web", "WEB"]
            df["country"] = ["ZZ", "US", "US", "US"]
        df.to_parquet(paths.landing_events_file(h), index=False)
    _lake_hours(paths, hs)
    feats = _features(paths, hs[1], hs[1] + timedelta(hours=1)).sort_values("event_id")
    unknown = float(len(DEVICES))
    assert feats["device"].tolist() == [unknown, unknown, float(DEVICES.index("web")), unknown]
    assert feats["country"].iloc[0] == float(len(SPEC.features[3].vocabulary))
    state = OnlineState(SPEC)
    event = good_events(hs[1], n=1, first_id=99).iloc[0].to_dict() | {"device": "smart-fridge"}
    assert state.features(event)["device"] == unknown  # serving puts it in the same bucket


# -- specs and feature definitions --------------------------------------------------------------
@pytest.mark.parametrize("name", ["Card Count", "1h_count", "card-count", 'x"; DROP TABLE t; --',
                                  "", "a" * 64, None])
def test_S01_feature_with_an_invalid_name_is_refused_naming_it(name):
    bad = WindowAgg(name, entity="card_id", agg="count", window="1h")
    with pytest.raises(SpecError, match=r"feature name .* is not a valid identifier"):
        spec_with(features=(*SPEC.features, bad))


@pytest.mark.parametrize("window", ["0h", "1w", "-1d", "24", "1.5h", "", 24, "1 h", "99999d"])
def test_S02_feature_with_an_invalid_window_is_refused_naming_feature_and_window(window):
    for bad in (WindowAgg("bad_window", entity="card_id", agg="count", window=window),
                TimeSincePrevious("bad_window", entity="card_id", within=window),
                LabelAgg("bad_window", entity="card_id", agg="rate", window=window)):
        with pytest.raises(SpecError, match=rf"feature 'bad_window': window {window!r} is invalid"):
            spec_with(features=(*SPEC.features, bad))


@pytest.mark.parametrize("overrides,match", [
    ({"features": (WindowAgg("n_1h", entity="crad_id", agg="count", window="1h"),)},
     r"feature 'n_1h': entity 'crad_id' is not an entity key"),
    ({"features": (WindowAgg("s_1h", entity="card_id", agg="sum", column="amout", window="1h"),)},
     r"feature 's_1h': agg 'sum' needs a column"),
    ({"features": (WindowAgg("s_1h", entity="card_id", agg="summ", column="amount", window="1h"),)},
     r"feature 's_1h': agg 'summ' is not one of"),
    ({"features": (Ratio("r", numerator="amount", denominator="card_mean"),)},
     r"feature 'r': 'card_mean' is neither an earlier feature nor a numeric column"),
    ({"features": (Categorical("dev", column="devise", vocabulary=("web",)),)},
     r"feature 'dev': column 'devise' is not categorical"),
    ({"features": (*SPEC.features[:2], SPEC.features[1])}, r"feature 'distance_km' is declared twice"),
    ({"attributes": (Attribute("amount", "numerc"),)}, r"attribute 'amount': kind 'numerc'"),
    ({"entity_keys": ("card_id", "Merchant ID")}, r"entity key 'Merchant ID' is not a valid"),
    ({"label_ts": "label ts"}, r"label_ts column 'label ts' is not a valid identifier"),
    ({"id_type": "integer"}, r"id_type 'integer' is not 'int64' or 'string'"),
    ({"start": SPEC.start.replace(tzinfo=None)}, r"start must be timezone-aware"),
])
def test_S03_dataset_spec_with_a_typo_is_refused_naming_the_field(overrides, match):
    with pytest.raises(SpecError, match=match):
        spec_with(**overrides)


def test_S04_a_spec_reference_that_is_no_file_or_module_says_what_it_takes(monkeypatch):
    monkeypatch.setenv("ML_ASSETS_SPEC", "card_fruad")
    with pytest.raises(SpecError, match=r"ML_ASSETS_SPEC='card_fruad' is not a spec reference: "
                                        r"use path/to/spec.py\[:NAME\]"):
        spec_from_env()
