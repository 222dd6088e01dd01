"""Point-in-time correctness: every compiled feature equals a brute-force recomputation that
only sees strictly earlier events and labels dated and available before the event. A definition that peeks
one second into the future must be caught by the same comparison."""

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ml_assets.lib.core.lake import connect
from ml_assets.lib.features import dialect as feature_sql
from ml_assets.lib.features.sql import compute_features
from ml_assets.specs.fraud import FRAUD_SPEC
from ml_assets_tests.fixtures.brute_force import assert_all_match_brute_force, compiled_features

T0 = datetime(2026, 7, 1, tzinfo=UTC)
# Offsets on a coarse grid so ties, exact window edges (1h, 24h, 7d, 30d) and label arrivals
# at the same instant as an event all happen often.
OFFSETS = st.integers(0, 40 * 24 * 4).map(lambda q: timedelta(minutes=15 * q))

event_rows = st.lists(
    st.tuples(OFFSETS, st.integers(0, 2), st.integers(0, 2),
              st.sampled_from([1.0, 2.5, 10.0, 99.99]),
              st.sampled_from(["grocery", "travel", "not_a_category", None]),
              st.sampled_from([None, 3.0]),
              st.sampled_from([None, 0, 1]),
              st.sampled_from([timedelta(minutes=15 * k) for k in (0, 1, 4, 96, 2880)]),
              # availability lag after label_ts: on time, a day late, later than a window
              st.sampled_from([timedelta(minutes=15 * k) for k in (0, 1, 4, 106, 960, 3000)])),
    min_size=2, max_size=40)


def make_world(rows) -> tuple[pd.DataFrame, pd.DataFrame]:
    events = pd.DataFrame({
        "event_id": range(1, len(rows) + 1),
        "event_ts": pd.to_datetime([T0 + r[0] for r in rows], utc=True).astype("datetime64[us, UTC]"),
        "card_id": [r[1] for r in rows],
        "merchant_id": [r[2] for r in rows],
        "amount": [r[3] for r in rows],
        "merchant_category": pd.Series([r[4] for r in rows], dtype="str"),
        "country": "US",
        "device": pd.Series(["web" if r[5] is None else "ios" for r in rows], dtype="str"),
        "distance_km": [float("nan") if r[5] is None else r[5] for r in rows],
    })
    # an optional 9th field delays availability past label_ts (default: available at once)
    lab = [(i + 1, r[6], T0 + r[0] + r[7], T0 + r[0] + r[7] + (r[8] if len(r) > 8 else timedelta(0)))
           for i, r in enumerate(rows) if r[6] is not None]
    labels = pd.DataFrame(lab, columns=["event_id", "label", "label_ts", "available_at"])
    for col in ("label_ts", "available_at"):
        labels[col] = pd.to_datetime(labels[col], utc=True).astype("datetime64[us, UTC]")
    labels = labels.merge(events[["event_id", "card_id", "merchant_id"]], on="event_id")
    return events, labels


def compiled(events: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    return compiled_features(FRAUD_SPEC, events, labels, T0, T0 + timedelta(days=45))


def first_mismatch(events: pd.DataFrame, labels: pd.DataFrame) -> str | None:
    try:
        assert_all_match_brute_force(compiled(events, labels), events, labels, FRAUD_SPEC)
    except AssertionError as exc:
        return str(exc)
    return None


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event_rows)
def test_every_feature_equals_brute_force_point_in_time(rows):
    events, labels = make_world(rows)
    assert first_mismatch(events, labels) is None


def test_one_row_per_event_and_nothing_from_outside_the_range():
    events, labels = make_world([(timedelta(hours=h), 0, 0, 1.0, "grocery", None, 1,
                                  timedelta(hours=1)) for h in range(10)])
    con = connect()
    con.register("events_in", events)
    out = compute_features(con, FRAUD_SPEC, "events_in", None, T0 + timedelta(hours=3),
                           T0 + timedelta(hours=6))
    assert out["event_id"].tolist() == [4, 5, 6]
    # history before the range still counts: the 4th event sees exactly one event in 1h
    assert out.set_index("event_id").loc[4, "card_tx_count_1h"] == 1.0


def test_a_feature_peeking_one_second_into_the_future_is_caught(monkeypatch):
    rows = [(timedelta(0), 0, 0, 5.0, "grocery", None, 1, timedelta(0)),
            (timedelta(minutes=0), 0, 0, 7.0, "grocery", None, 0, timedelta(minutes=15))]
    events, labels = make_world(rows)
    # move the second event half a second after the first: a 1-second peek would see it
    events.loc[1, "event_ts"] += pd.Timedelta(milliseconds=500)
    assert first_mismatch(events, labels) is None
    monkeypatch.setattr(feature_sql, "STRICTLY_BEFORE", "1000000 FOLLOWING")  # 1 s
    problem = first_mismatch(events, labels)
    assert problem is not None and "event 1" in problem


def test_a_label_known_at_the_same_instant_as_the_event_is_not_used():
    rows = [(timedelta(0), 0, 0, 5.0, "grocery", None, 1, timedelta(hours=2)),
            (timedelta(hours=2), 0, 0, 7.0, "grocery", None, None, timedelta(0))]
    events, labels = make_world(rows)
    got = compiled(events, labels)
    assert got.loc[2, "card_chargebacks_30d"] == 0.0  # label_ts == t: not yet known
    events.loc[1, "event_ts"] += pd.Timedelta(microseconds=1)
    assert compiled(events, labels).loc[2, "card_chargebacks_30d"] == 1.0


def test_a_label_counts_only_once_available_not_from_its_label_ts():
    # labelled at +2h, but its file is ingested only at +30h: events between see nothing
    rows = [(timedelta(0), 0, 0, 5.0, "grocery", None, 1, timedelta(hours=2), timedelta(hours=28)),
            (timedelta(hours=3), 0, 0, 7.0, "grocery", None, None, timedelta(0)),
            (timedelta(hours=30), 0, 0, 7.0, "grocery", None, None, timedelta(0)),
            (timedelta(hours=30, microseconds=1), 0, 0, 7.0, "grocery", None, None, timedelta(0))]
    events, labels = make_world(rows)
    got = compiled(events, labels)
    assert got.loc[[2, 3, 4], "card_chargebacks_30d"].tolist() == [0.0, 0.0, 1.0]
    assert first_mismatch(events, labels) is None


def test_a_label_available_after_its_window_ended_never_counts_in_that_window():
    # label_ts +1h, available only +40d: past the 30-day window by then
    rows = [(timedelta(0), 0, 0, 5.0, "grocery", None, 1, timedelta(hours=1), timedelta(days=40)),
            (timedelta(days=20), 0, 0, 7.0, "grocery", None, None, timedelta(0)),
            (timedelta(days=41), 0, 0, 7.0, "grocery", None, None, timedelta(0))]
    events, labels = make_world(rows)
    got = compiled(events, labels)
    assert got.loc[[2, 3], "card_chargebacks_30d"].tolist() == [0.0, 0.0]
    assert first_mismatch(events, labels) is None


@pytest.mark.parametrize("window_edge", [timedelta(hours=1), timedelta(hours=1, microseconds=1)])
def test_window_start_is_inclusive(window_edge):
    rows = [(timedelta(0), 0, 0, 5.0, "grocery", None, None, timedelta(0)),
            (timedelta(hours=1), 0, 0, 7.0, "grocery", None, None, timedelta(0))]
    events, labels = make_world(rows)
    events.loc[1, "event_ts"] = events.loc[0, "event_ts"] + pd.Timedelta(window_edge)
    expected = 1.0 if window_edge == timedelta(hours=1) else 0.0
    assert compiled(events, labels).loc[2, "card_tx_count_1h"] == expected


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event_rows, st.integers(1, 39))
def test_a_range_built_from_its_lookback_alone_gives_the_same_bits(rows, split_day):
    """As ``build_features`` chunks: ``[lo, hi)`` computed from events since ``lo - lookback``
    only equals the same rows of one build over everything, bit for bit."""
    events, labels = make_world(rows)
    lo, hi = T0 + timedelta(days=split_day), T0 + timedelta(days=45)
    whole = compiled(events, labels)
    part = compiled_features(FRAUD_SPEC, events[events["event_ts"] >= lo - FRAUD_SPEC.lookback],
                             labels, lo, hi)
    pd.testing.assert_frame_equal(part, whole[whole["event_ts"] >= lo], check_exact=True)
