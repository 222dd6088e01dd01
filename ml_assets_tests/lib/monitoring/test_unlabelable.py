"""Events never labelled by design (issue 16/17 item 8): a spec declares them, by a filter over
the raw event's attributes (``unlabelable_when``) or by age (``label_timeout_days``), and label
coverage counts only the events a label is still expected for.

The world: the synthetic fraud stream, with every label of an event from GB (about 12% of
events) removed from the lake, as if those events were cancelled before their outcome existed.
The spec asks for 95% coverage, so without a declaration a mature day tops out near 88% and
stays ``pending`` forever. Coverage figures are recomputed here straight from the lake files."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import duckdb
import numpy as np
import pandas as pd
import pytest

from ml_assets.lib.core.identifiers import SpecError
from ml_assets.lib.core.workspace import Workspace
from ml_assets.lib.monitoring.evaluation import label_status
from ml_assets.lib.monitoring.labelable import label_coverage, labelable_mask, unlabelable_sql
from ml_assets.lib.monitoring.periods import period_report
from ml_assets.lib.monitoring.tables import business_metric, delayed_evaluation
from ml_assets.scenarios.synthetic import SyntheticConfig
from ml_assets.specs.fraud import FRAUD_SPEC
from ml_assets_tests.fixtures.monitoring_world import build_world

BASE = replace(FRAUD_SPEC, monitoring=replace(FRAUD_SPEC.monitoring, min_label_coverage=0.95))
DECLARED = replace(BASE, unlabelable_when=(("country", "==", "GB"),))
TIMEOUT_DAYS = 61  # past the longest label delay of the stream (60 days)
TIMED_OUT = replace(BASE, label_timeout_days=TIMEOUT_DAYS)
FIRST, DAYS = 30, 100  # scored from day 30; labels known up to day 100 (the horizon)


def lake(world, table: str) -> pd.DataFrame:
    return pd.concat(pd.read_parquet(f) for f in sorted((world.paths.lake / table).glob("*.parquet")))


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    w = build_world(tmp_path_factory.mktemp("unlabelable"), BASE,
                    SyntheticConfig(seed=8, days=DAYS, scale=0.05), (5, FIRST))
    gb = set(lake(w, "raw_events").query("country == 'GB'")[BASE.event_id])
    for f in (w.paths.lake / "raw_labels").glob("*.parquet"):
        labels = pd.read_parquet(f)
        labels[~labels[BASE.event_id].isin(gb)].to_parquet(f, index=False)
    return w


@pytest.fixture(scope="module")
def expected(world):
    """Per scored day, from the lake: events, labelled events, GB events, and the labelable
    events under the timeout (labelled, or not yet TIMEOUT_DAYS old at the horizon)."""
    scores = lake(world, "batch_scores")[[BASE.event_id, BASE.event_ts]]
    country = lake(world, "raw_events")[[BASE.event_id, "country"]]
    labelled = set(lake(world, "raw_labels")[BASE.event_id])
    f = scores.merge(country, on=BASE.event_id)
    f["labelled"] = f[BASE.event_id].isin(labelled)
    f["gb"] = f["country"] == "GB"
    young = f[BASE.event_ts] + timedelta(days=TIMEOUT_DAYS) > world.day(DAYS)
    f["not_timed_out"] = f["labelled"] | young
    return f.groupby(f[BASE.event_ts].dt.floor("D")).agg(
        events=("labelled", "size"), labelled=("labelled", "sum"), gb=("gb", "sum"),
        not_timed_out=("not_timed_out", "sum"))


def evaluate(world, spec) -> pd.DataFrame:
    ws = Workspace(world.paths, spec)
    days = delayed_evaluation(ws, world.day(FIRST), world.day(DAYS - 25))
    return pd.concat(days.values()).set_index("day")


def test_the_world_holds_events_never_labelled_by_design(world, expected):
    share = expected["gb"].sum() / expected["events"].sum()
    assert 0.09 < share < 0.15
    # the largest coverage a day can reach without a declaration stays below the 95% asked
    assert (1 - expected["gb"] / expected["events"]).max() < BASE.monitoring.min_label_coverage


def test_without_a_declaration_mature_days_stay_pending_forever(world, expected):
    ev = evaluate(world, BASE)
    mature = ev.index <= pd.Timestamp(world.day(DAYS - 31))
    assert mature.sum() >= 30
    assert (ev.loc[mature, "status"] == "pending").all()
    assert ev["status_reason"][mature].str.contains("coverage").all()
    fully = ev.loc[pd.Timestamp(world.day(FIRST)):pd.Timestamp(world.day(39))]
    exp = expected.loc[fully.index]
    assert fully["label_coverage"].to_numpy() == pytest.approx((exp["labelled"] / exp["events"]).to_numpy())
    assert (fully["unlabelable_events"] == 0).all()


def test_declared_unlabelable_events_leave_coverage_and_mature_days_become_final(world, expected):
    ev = evaluate(world, DECLARED)
    exp = expected.loc[ev.index]
    labelable = exp["events"] - exp["gb"]
    assert ev["labelable_events"].tolist() == labelable.tolist()
    assert ev["unlabelable_events"].tolist() == exp["gb"].tolist()
    assert ev["label_coverage"].to_numpy() == pytest.approx((exp["labelled"] / labelable).to_numpy())
    # every label of days 30-39 has landed (delays are at most 60 days): coverage is exactly 1
    fully = ev.loc[pd.Timestamp(world.day(FIRST)):pd.Timestamp(world.day(39))]
    assert (fully["label_coverage"] == 1.0).all() and (fully["status"] == "final").all()
    # final: the ranking metrics are there wherever the day's positives allow them
    assert (fully["pr_auc"].notna() == (fully["positives"] > 0)).all()
    assert (fully["auc"].notna() == (fully["positives"] >= BASE.monitoring.min_positives)).all()
    assert fully["auc"].notna().any()
    # AUC over the labelled events only: an unlabelable event is never read as a negative
    assert (fully["labeled_rows"] == fully["labelable_events"]).all()
    # a young day is still pending on maturity, however complete
    assert (ev.loc[ev.index > pd.Timestamp(world.day(DAYS - 31)), "status"] == "pending").all()


def test_label_timeout_finalises_days_older_than_it_and_no_younger_ones(world, expected):
    ev = evaluate(world, TIMED_OUT)
    exp = expected.loc[ev.index]
    assert ev["labelable_events"].tolist() == exp["not_timed_out"].tolist()
    assert ev["label_coverage"].to_numpy() == pytest.approx(
        (exp["labelled"] / exp["not_timed_out"]).to_numpy())
    horizon = pd.Timestamp(world.day(DAYS))
    old = ev.index + pd.Timedelta(days=1 + TIMEOUT_DAYS) <= horizon  # whole day timed out
    young = ev.index + pd.Timedelta(days=TIMEOUT_DAYS) > horizon  # none of it timed out
    assert old.sum() >= 5 and young.sum() >= 20
    assert (ev.loc[old, "status"] == "final").all() and (ev.loc[old, "label_coverage"] == 1).all()
    assert (ev.loc[young, "status"] == "pending").all()
    assert (ev.loc[young, "unlabelable_events"] == 0).all()


def test_business_metric_and_periods_count_labelable_events_only(world, expected):
    ws = Workspace(world.paths, DECLARED)
    lo, hi = world.day(FIRST), world.day(40)
    biz = pd.concat(business_metric(ws, lo, hi).values()).set_index("day")
    exp = expected.loc[biz.index]
    assert biz["unlabelable_events"].tolist() == exp["gb"].tolist()
    assert (biz["label_coverage"] == 1.0).all() and (biz["status"] == "final").all()
    assert biz["value"].notna().all()
    plain = pd.concat(business_metric(Workspace(world.paths, BASE), lo, hi).values())
    assert (plain["status"] == "pending").all()
    # a week inside days 30-39 (Mon 2026-08-03 .. Sun 2026-08-09) is final too
    weeks = {p["period"]: p for p in period_report(ws, lo, hi, "week")}
    week = weeks["2026-08-03"]
    days = expected.loc["2026-08-03":"2026-08-09"]
    assert week["label_status"] == "final" and week["label_coverage"] == 1.0
    assert week["unlabelable_events"] == days["gb"].sum()


def test_the_filter_reads_nulls_as_documented():
    frame = pd.DataFrame({"country": ["GB", "DE", None, "GB"],
                          "amount": pd.array([5.0, 50.0, 7.0, None], dtype="Float64")})
    cases = {(("country", "==", "GB"),): [True, False, False, True],
             (("country", "!=", "GB"),): [False, True, True, False],
             (("country", "in", ("DE", "FR")),): [False, True, False, False],
             (("country", "is_null", None),): [False, False, True, False],
             (("country", "==", "GB"), ("amount", "<", 10)): [True, False, False, False],
             (("amount", ">=", 7), ("country", "not_null", None)): [False, True, False, False]}
    con = duckdb.connect()
    con.register("t", frame)
    for conditions, want in cases.items():
        predicate, params = unlabelable_sql(conditions, "e")
        got = con.execute(f"SELECT COALESCE({predicate}, FALSE) FROM t e", params).df().iloc[:, 0]
        assert got.tolist() == want, conditions


def test_the_timeout_runs_against_the_label_horizon_never_before():
    ts = pd.Series(pd.to_datetime(["2026-01-01 12:00", "2026-01-01 12:00", "2026-02-20 00:00"],
                                  utc=True))
    label = np.array([np.nan, 1.0, np.nan])
    horizon = datetime(2026, 2, 1, tzinfo=UTC)  # 30.5 days after the first two events
    assert labelable_mask(label, ts, None, horizon, 31).tolist() == [True, True, True]
    assert labelable_mask(label, ts, None, horizon, 30).tolist() == [False, True, True]
    assert labelable_mask(label, ts, None, None, 1).tolist() == [True, True, True]
    # a declared event with a label counts: coverage never exceeds 1
    declared = np.array([True, True, False])
    assert labelable_mask(label, ts, declared, horizon, None).tolist() == [False, True, True]
    cov = label_coverage(label, labelable_mask(label, ts, declared, horizon, None))
    assert cov == {"label_coverage": 0.5, "labelable_events": 2, "unlabelable_events": 1}
    # nothing labelable (a day without events, or only cancelled ones): nothing to wait for
    assert np.isnan(label_coverage(label, np.zeros(3, bool))["label_coverage"])
    assert np.isnan(label_coverage(label[:0])["label_coverage"])
    day_end, horizon = datetime(2026, 3, 2, tzinfo=UTC), datetime(2026, 4, 2, tzinfo=UTC)
    assert label_status(day_end, horizon, float("nan"), 30, 0.9)[0] == "final"
    assert label_status(day_end, day_end, float("nan"), 30, 0.9)[0] == "pending"  # not mature


@pytest.mark.parametrize("field, value, words", [
    ("unlabelable_when", (("status", "==", "cancelled"),),
     ["unlabelable_when[0]", "'status' is not an attribute"]),
    ("unlabelable_when", (("country", "LIKE", "G%"),), ["unlabelable_when[0]", "operator 'LIKE'"]),
    ("unlabelable_when", (("country", "<", "GB"),), ["unlabelable_when[0]", "numeric attributes"]),
    ("unlabelable_when", (("amount", "==", "10"),), ["unlabelable_when[0]", "a number"]),
    ("unlabelable_when", (("country", "in", ()),), ["unlabelable_when[0]", "non-empty tuple"]),
    ("unlabelable_when", (("amount", "is_null", None),), ["unlabelable_when[0]", "not nullable"]),
    ("unlabelable_when", ("country == 'GB'",), ["unlabelable_when[0]", "(column, operator, value)"]),
    ("unlabelable_when", "country = 'GB'", ["unlabelable_when", "a tuple of"]),
    ("label_timeout_days", 0, ["label_timeout_days", "integer >= 1"]),
    ("label_timeout_days", 30.5, ["label_timeout_days", "integer >= 1"]),
])
def test_an_invalid_declaration_is_refused_naming_the_field(field, value, words):
    with pytest.raises(SpecError) as err:
        replace(FRAUD_SPEC, **{field: value})
    assert all(w in str(err.value) for w in words), str(err.value)
