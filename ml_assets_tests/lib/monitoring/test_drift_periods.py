"""Issue 17 item 2: drift is judged over each feature's period. Calendar features read PSI in
the several units every day when judged per day; over their period (or excluded by
declaration) clean weeks give no alarm, an open period and a partial last day are reported,
never alarmed."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from ml_assets.lib.core.identifiers import SpecError
from ml_assets.lib.core.policies import MonitoringConfig
from ml_assets.lib.monitoring import drift
from ml_assets.lib.monitoring.drift_periods import parse_period
from ml_assets.lib.monitoring.feature_drift import judge_day
from ml_assets.specs.fraud import FRAUD_SPEC

START = pd.Timestamp("2026-01-05", tz="UTC")  # a Monday
REF_DAYS, CUR_DAYS, PER_DAY = 56, 28, 600
FEATURES = ["day_of_week", "month", "hour_of_day", "amount"]


def _events(lo: pd.Timestamp, days: int, seed: int) -> pd.DataFrame:
    """Clean traffic: calendar fields, a busy-evening hour of day, a lognormal amount."""
    rng = np.random.default_rng(seed)
    n = days * PER_DAY
    ts = lo + pd.to_timedelta(rng.integers(0, days * 86_400, n), unit="s")
    ts = pd.Series(ts).sort_values(ignore_index=True)
    return pd.DataFrame({"event_ts": ts, "day_of_week": ts.dt.day_of_week.astype("float64"),
                         "month": ts.dt.month.astype("float64"),
                         "hour_of_day": ts.dt.hour.astype("float64"),
                         "amount": rng.lognormal(3.5, 0.6, n)})


def _profile(ref: pd.DataFrame, cfg: MonitoringConfig) -> drift.DriftProfile:
    """As ``feature_drift.reference_profile`` builds it: clean variability per period kind."""
    lo, hi = START, START + pd.Timedelta(days=REF_DAYS)
    periods = {f: cfg.period_of(f) for f in FEATURES}
    return drift.build_profile(ref, FEATURES, [], period={
        f: p.reference_keys(ref["event_ts"], lo, hi) for f, p in periods.items()})


def _judge(cfg: MonitoringConfig, cur: pd.DataFrame, newest=None) -> pd.DataFrame:
    ref = _events(START, REF_DAYS, 1)
    profile = _profile(ref, cfg)
    periods = {f: cfg.period_of(f) for f in FEATURES if cfg.period_of(f).kind != "off"}
    frame = pd.concat([ref, cur], ignore_index=True)
    newest = newest if newest is not None else frame["event_ts"].max()
    days = pd.date_range(START + pd.Timedelta(days=REF_DAYS), periods=CUR_DAYS, freq="D")
    return pd.concat([judge_day(profile, frame, d, periods, cfg, "event_ts", START, newest)
                      .assign(day=d) for d in days], ignore_index=True)


def test_calendar_features_judged_per_day_alarm_every_day():
    cur = _events(START + pd.Timedelta(days=REF_DAYS), CUR_DAYS, 2)
    rows = _judge(MonitoringConfig(), cur)
    dow = rows[rows["feature"] == "day_of_week"]
    # one weekday against a reference spanning all seven: PSI in the units, every day
    assert (dow["psi"] > 3).all()
    # and no clean day is "ok" for it: an error, or a WARN of its own for being unmonitorable
    assert ((dow["severity"] == "error") | dow["unmonitored"]).all()


def test_over_their_periods_clean_weeks_raise_nothing_and_open_periods_are_reported():
    cfg = MonitoringConfig(drift_periods={"day_of_week": "week", "month": "off"})
    cur = _events(START + pd.Timedelta(days=REF_DAYS), CUR_DAYS, 2)
    rows = _judge(cfg, cur)
    assert "month" not in set(rows["feature"])  # excluded by declaration: not compared
    assert (rows["severity"] != "error").all() and not rows["unmonitored"].any()
    dow = rows[rows["feature"] == "day_of_week"]
    closed = dow[dow["day"].dt.day_of_week == 6]
    assert len(closed) == 4 and closed["period_complete"].all()
    assert (closed["psi"] < 0.01).all()  # a whole week against whole weeks
    assert (closed["n_cur"] == [len(cur[(cur["event_ts"] >= d - pd.Timedelta(days=6))
                                         & (cur["event_ts"] < d + pd.Timedelta(days=1))])
                                for d in closed["day"]]).all()
    open_ = dow[dow["day"].dt.day_of_week != 6]
    assert not open_["period_complete"].any() and (open_["severity"] == "ok").all()
    assert open_["period_note"].str.contains("week to date").all()
    # the profile measured day_of_week's clean variability over whole weeks: none
    assert _profile(_events(START, REF_DAYS, 1), cfg).features["day_of_week"].noise_psi < 0.01


def test_a_partial_last_day_is_reported_not_alarmed():
    """The data ends before 04:00 of its last day: 88 events where a day has 600, all at night."""
    cfg = MonitoringConfig(drift_periods={"day_of_week": "week", "month": "off"})
    cur = _events(START + pd.Timedelta(days=REF_DAYS), CUR_DAYS, 2)
    last = START + pd.Timedelta(days=REF_DAYS + CUR_DAYS - 1)
    night = cur[(cur["event_ts"] >= last) & (cur["event_ts"] < last + pd.Timedelta(hours=4))]
    cur = pd.concat([cur[cur["event_ts"] < last], night.head(88)], ignore_index=True)
    newest = cur["event_ts"].max()
    rows = _judge(cfg, cur, newest)
    hour = rows[(rows["feature"] == "hour_of_day") & (rows["day"] == last)].iloc[0]
    assert hour["n_cur"] == 88 and hour["psi"] > 1  # night hours only: far from a whole day
    assert not hour["period_complete"] and hour["severity"] == "ok"
    assert "partial" in hour["period_note"]
    # the same rows on a day the data continues past would be judged, and fail
    judged = _judge(cfg, cur, newest=last + pd.Timedelta(days=1))
    hour = judged[(judged["feature"] == "hour_of_day") & (judged["day"] == last)].iloc[0]
    assert hour["period_complete"] and hour["severity"] == "error"
    # the days before it are whole: judged as usual
    before = rows[(rows["day"] < last) & (rows["period"] == "day")]
    assert before["period_complete"].all()


def test_trailing_days_pool_a_sparse_feature_and_open_at_the_data_start():
    cfg = MonitoringConfig(drift_period="7d", drift_periods={"day_of_week": "week",
                                                              "month": "off"})
    cur = _events(START + pd.Timedelta(days=REF_DAYS), CUR_DAYS, 2)
    rows = _judge(cfg, cur)
    amount = rows[rows["feature"] == "amount"]
    assert (amount["n_cur"] >= 7 * PER_DAY * 0.9).all()  # seven days of rows pooled
    assert amount["period_complete"].all() and (amount["severity"] == "ok").all()
    period = parse_period("7d")
    start, end, closes = period.bounds(START + pd.Timedelta(days=3))
    assert start < START and closes  # judged on day 3 it reaches before the data: incomplete


@pytest.mark.parametrize("declared", ["fortnight", "0d", "7 d", "weekly"])
def test_an_unknown_period_is_refused_naming_the_field(declared):
    with pytest.raises(SpecError, match=r"drift_periods\['amount'\]"):
        MonitoringConfig(drift_periods={"amount": declared})
    with pytest.raises(SpecError, match="monitoring.drift_period"):
        MonitoringConfig(drift_period=declared)


def test_a_period_for_a_feature_the_spec_lacks_is_refused():
    with pytest.raises(SpecError, match="not features of the spec"):
        replace(FRAUD_SPEC, monitoring=MonitoringConfig(drift_periods={"day_of_week": "week"}))
