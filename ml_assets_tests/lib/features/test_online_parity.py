"""Online/offline parity: the realtime feature path evaluates the same declarations as the
compiled batch SQL. Replaying a day gives zero differences; a skewed definition is caught."""

import dataclasses
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from ml_assets.bench.pandas_features import pandas_features
from ml_assets.lib.core.identifiers import SpecError
from ml_assets.lib.core.lake import connect
from ml_assets.lib.core.registry import Registry
from ml_assets.lib.features.definitions import Ratio, TimeSincePrevious, feature_fingerprint
from ml_assets.lib.features.online import state_from_frames
from ml_assets.lib.features.parity import online_and_batch, replay_online, replay_parity
from ml_assets.lib.features.sql import compute_features
from ml_assets.lib.scoring.batch import load_live_model
from ml_assets_tests.fixtures.serving_world import CFG, SPEC, world_copy


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    paths = world_copy(tmp_path_factory.mktemp("parity") / "w")
    registry = Registry(paths.control_db)
    models = {v: load_live_model(paths, registry.get_model(v))["model"]
              for v in registry.aliases(SPEC.model_name).values()}
    return paths, models


def test_replayed_day_has_zero_feature_and_score_differences(world):
    paths, models = world
    day = CFG.end - timedelta(days=2)
    report = replay_parity(paths, SPEC, day, models)
    assert report.events > 200
    assert report.feature_differences == {n: 0 for n in SPEC.feature_names}
    assert set(report.score_differences) == set(models)  # every live version was compared
    assert not any(report.score_differences.values())
    assert report.ok and report.missing_in_batch == 0


def test_replayed_features_are_bit_identical_not_just_close(world):
    """Sums and means add exact decimals on both paths and divide as DuckDB does: a last-bit
    difference within the check's tolerance can still flip a tree split (it once did, for one
    event in ~2,000, in the incident drill)."""
    paths, _ = world
    online, batch = online_and_batch(paths, SPEC, CFG.end - timedelta(days=2))
    both = online.merge(batch, on=SPEC.event_id, suffixes=("_online", "_batch"))
    assert len(both) > 200
    for name in SPEC.feature_names:
        a, b = both[f"{name}_online"].to_numpy("float64"), both[f"{name}_batch"].to_numpy("float64")
        same = (a == b) | (np.isnan(a) & np.isnan(b))
        assert same.all(), (name, both.loc[~same, [f"{name}_online", f"{name}_batch"]].head(3))


def _skewed(spec, name: str, **change):
    feats = tuple(dataclasses.replace(f, **change) if f.name == name else f
                  for f in spec.features)
    return dataclasses.replace(spec, features=feats)


@pytest.mark.parametrize("name,change", [("card_tx_count_24h", {"window": "23h"}),
                                         ("merchant_fraud_rate_30d", {"window": "29d"})])
def test_a_skewed_online_definition_is_detected_and_named(world, name, change):
    paths, models = world
    report = replay_parity(paths, SPEC, CFG.end - timedelta(days=2), models,
                           online_spec=_skewed(SPEC, name, **change))
    assert not report.ok
    assert report.feature_differences[name] > 0
    assert {k for k, v in report.feature_differences.items() if v} <= {
        name, "amount_vs_card_mean_30d"}  # only the skewed feature (and its dependants)
    assert report.examples[name][0]["online"] != report.examples[name][0]["batch"]


def _edge_case_frames():
    """Events and labels with ties at the same instant, nulls, unknown categories, a
    first-ever event and labels that become known exactly at ``t0``."""
    t0 = pd.Timestamp("2026-07-10 12:00", tz="UTC")
    ts = [t0 - pd.Timedelta(days=31), t0 - pd.Timedelta(hours=2), t0 - pd.Timedelta(hours=1),
          t0, t0, t0 + pd.Timedelta(seconds=1), t0 + pd.Timedelta(hours=25)]
    events = pd.DataFrame({
        "event_id": np.arange(1, 8, dtype="int64"), "event_ts": pd.Series(ts).astype(
            "datetime64[us, UTC]"),
        "card_id": np.array([1, 1, 1, 1, 2, 1, 1], dtype="int64"),
        "merchant_id": np.array([9, 9, 8, 9, 9, 7, 9], dtype="int64"),
        "amount": [10.0, 0.0, 250.5, 40.0, 12.0, 99.0, 5.0],
        "merchant_category": ["travel", "fuel", "nope", None, "fuel", "travel", "fuel"],
        "country": ["US", "US", "GB", "US", "ZZ", "US", "US"],
        "device": ["web", None, "ios", "ios", None, "web", "android"],
        "distance_km": [1.0, None, 3.0, 4.0, None, 6.0, 7.0],
    })
    # available_at: the first three at once, the 4th (dated t0-5h) only from exactly t0
    labels = pd.DataFrame({"card_id": np.array([1, 1, 2, 1], dtype="int64"),
                           "merchant_id": np.array([9, 8, 9, 9], dtype="int64"),
                           "label_ts": pd.Series([t0 - pd.Timedelta(hours=3), t0,
                                                  t0 - pd.Timedelta(days=40),
                                                  t0 - pd.Timedelta(hours=5)])
                           .astype("datetime64[us, UTC]"),
                           "available_at": pd.Series([t0 - pd.Timedelta(hours=3), t0,
                                                      t0 - pd.Timedelta(days=40), t0])
                           .astype("datetime64[us, UTC]"),
                           "label": [1.0, 1.0, 0.0, 1.0]})
    return t0, events, labels


def _both_paths(spec, events, labels, t0):
    """Batch (compiled SQL) and online features of every event, merged on the event id."""
    con = connect()
    con.register("events_df", events)
    con.register("labels_df", labels)
    lo, hi = t0 - pd.Timedelta(days=40), t0 + pd.Timedelta(days=2)
    batch = compute_features(con, spec, "events_df", "labels_df", lo, hi)
    online = replay_online(state_from_frames(spec, events.iloc[:0], labels), events)
    return online.merge(batch, on="event_id", suffixes=("_o", "_b"))


def test_edge_cases_agree_with_the_compiled_sql():
    """Ties at the same instant, nulls, unknown categories, a first-ever event, labels that
    become known exactly at the event time: both executions give the same numbers."""
    t0, events, labels = _edge_case_frames()
    merged = _both_paths(SPEC, events, labels, t0)
    assert len(merged) == len(events)
    for name in SPEC.feature_names:
        a, b = merged[f"{name}_o"].to_numpy(float), merged[f"{name}_b"].to_numpy(float)
        same = (np.isnan(a) & np.isnan(b)) | np.isclose(a, b, rtol=1e-12, atol=1e-12)
        assert same.all(), (name, a, b)
    # And the edge cases did happen: a tie excluded, a label at exactly t0 not yet known.
    at_t0 = merged.set_index("event_id")
    assert at_t0.loc[4, "card_tx_count_1h_o"] == 1.0  # event 3 only; 5 (same instant) is card 2
    assert at_t0.loc[4, "card_chargebacks_30d_o"] == 1.0  # the label at t0 is not counted
    # ... nor the one available exactly at t0; a second later all three are
    assert at_t0.loc[6, "card_chargebacks_30d_o"] == 3.0


def test_online_state_never_sees_the_event_itself_or_the_future(world):
    paths, _ = world
    day = CFG.end - timedelta(days=1)
    from ml_assets.lib.core.catalog import Catalog
    from ml_assets.lib.core.lake import read_parquet_files

    files, _ = Catalog(paths.lake).table("raw_events").coverage(day - timedelta(days=31), CFG.end)
    events = read_parquet_files(files)
    state = state_from_frames(SPEC, events, None)  # the whole period, future included
    probe = events[events["event_ts"] >= day].iloc[0].to_dict()
    feats = state.features(probe)
    past = events[(events["card_id"] == probe["card_id"])
                  & (events["event_ts"] < probe["event_ts"])
                  & (events["event_ts"] >= probe["event_ts"] - pd.Timedelta(hours=24))]
    assert feats["card_tx_count_24h"] == len(past)


def test_time_units_and_constant_ratios_agree_on_every_path():
    """A non-default ``TimeSincePrevious`` unit and ``Ratio`` constants give the same bits in
    the compiled SQL, the online state and the bench pandas baseline."""
    extra = (TimeSincePrevious("card_hours_since_prev", entity="card_id", unit="h"),
             TimeSincePrevious("card_minutes_since_prev", entity="card_id", unit="min"),
             Ratio("amount_k", numerator="amount", denominator=1000.0),
             Ratio("mean_in_tenths", numerator="card_amount_mean_30d", denominator=0.1),
             Ratio("inverse_distance", numerator=1, denominator="distance_km"))
    spec = dataclasses.replace(SPEC, features=SPEC.features + extra)
    t0, events, labels = _edge_case_frames()
    merged = _both_paths(spec, events, labels, t0)
    theirs, _ = pandas_features(events.copy(), labels, spec)
    merged = merged.merge(theirs.add_suffix("_p"), left_on="event_id", right_on="event_id_p")
    assert len(merged) == len(events)
    for f in extra:
        o, b, p = (merged[f"{f.name}_{s}"].to_numpy(float) for s in "obp")
        assert ((o == b) | np.isnan(o) & np.isnan(b)).all(), (f.name, o, b)
        assert ((o == p) | np.isnan(o) & np.isnan(p)).all(), (f.name, o, p)
    by_id = merged.set_index("event_id")
    assert by_id.loc[3, "card_hours_since_prev_o"] == 1.0  # card 1's previous event: 1 h before
    assert by_id.loc[3, "card_minutes_since_prev_o"] == 60.0
    assert by_id.loc[3, "amount_k_o"] == 250.5 / 1000.0
    assert np.isnan(by_id.loc[2, "inverse_distance_o"])  # null distance: null ratio


def test_default_unit_keeps_the_recorded_fingerprints():
    """Fingerprints recorded before ``unit`` existed stay valid, so registered models stay
    scorable; a non-default unit is a different feature."""
    since = next(f for f in SPEC.features if isinstance(f, TimeSincePrevious))
    assert feature_fingerprint(since) == "4214246140ab8bf4"
    assert feature_fingerprint(dataclasses.replace(since, unit="h")) != "4214246140ab8bf4"
    ratio = next(f for f in SPEC.features if isinstance(f, Ratio))
    assert feature_fingerprint(ratio) == "5e6bfd0565a1007a"


@pytest.mark.parametrize("feature,message", [
    (lambda: TimeSincePrevious("gap_weeks", entity="card_id", unit="w"), "'gap_weeks': unit 'w'"),
    (lambda: Ratio("per_nothing", numerator="amount", denominator=0), "'per_nothing'.*constant 0"),
    (lambda: Ratio("per_nan", numerator="amount", denominator=float("nan")),
     "'per_nan'.*not a finite"),
    (lambda: Ratio("per_name", numerator="amount", denominator="nope"), "'per_name'.*'nope'"),
])
def test_bad_units_and_constants_are_refused_naming_the_feature(feature, message):
    with pytest.raises(SpecError, match=message):
        dataclasses.replace(SPEC, features=SPEC.features + (feature(),))
