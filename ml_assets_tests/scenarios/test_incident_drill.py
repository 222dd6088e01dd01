"""The incident drill at small scale, through the scheduled Dagster pipeline: every injected
incident is caught no later than the day after it starts and no later than the business
metric; clean days raise no ERROR; delayed evaluation never alarms before labels mature.
Concept drift changes only what is fraud, so it is caught from labels - the early fraud
reports among approved transactions - not from features."""

from datetime import UTC, datetime, timedelta

import pytest

from ml_assets.scenarios.incident_replay import run_drill
from ml_assets.scenarios.incidents import DRILL_START, DrillPlan, drill_start
from ml_assets.scenarios.synthetic import Incident
from ml_assets.specs.fraud import FRAUD_SPEC

# The timeline ends the day after the last incident's detection deadline (day 112): later
# days only carried covariate drift's tail warnings (a 118-day run: no business alarm at all).
PLAN = DrillPlan(
    days=113, incidents=(
        Incident("nan_spike", 95), Incident("schema_break", 98), Incident("late_labels", 101, 2),
        Incident("bad_challenger", 104), Incident("covariate_drift", 107, 2),
        Incident("concept_drift", 111, 0)))


@pytest.fixture(scope="module")
def drill(tmp_path_factory):
    return run_drill(tmp_path_factory.mktemp("incident_drill"), FRAUD_SPEC, PLAN,
                     log=lambda *_: None)


def test_every_incident_is_caught_by_the_day_after_it_starts(drill):
    rows = {r["kind"]: r for r in drill["incidents"]}
    assert set(rows) == {i.kind for i in PLAN.incidents}
    for kind, r in rows.items():
        assert r["detected_day"] is not None, kind
        assert r["detected_day"] <= r["injected_day"] + 1, r
        if r["business_alert_day"] is not None:
            assert r["detected_day"] <= r["business_alert_day"], r
        if kind != "concept_drift":  # nothing but labels can show a change in what is fraud
            assert r["alarms_before_labels"] > 0, r
    assert drill["summary"]["all_detected_by_next_day"]
    assert rows["schema_break"]["detected_by"] == "raw_events:step_failed"
    assert any("stopped by a blocking contract" in x
               for x in rows["schema_break"]["automatic_response"])
    assert rows["nan_spike"]["detected_by"] == "feature_drift:psi_distance_km"
    assert rows["late_labels"]["detected_by"] == "raw_labels:freshness"
    assert rows["bad_challenger"]["detected_by"] == "shadow_report:promotion_gate"
    assert any(x.startswith("rollout paused") for x in rows["bad_challenger"]["automatic_response"])
    assert rows["covariate_drift"]["detected_by"].startswith("feature_drift:psi_")
    assert rows["concept_drift"]["detected_by"] == "early_label_watch:missed_positive_reports"


def test_clean_days_raise_no_error_and_evaluation_waits_for_mature_labels(drill):
    assert drill["clean_days"] >= 5
    assert drill["clean_day_error_alarms"] == 0, drill["clean_day_alarms"]
    assert drill["evaluation_alarms_before_labels_mature"] == 0
    early_eval = [a for a in drill["alarms"] if a["check"].startswith("delayed_evaluation")
                  and a["fired_day"] - a["data_day"] < FRAUD_SPEC.monitoring.label_maturity_days]
    assert early_eval == []


def test_the_simulated_timeline_always_ends_in_the_past():
    """A 150-day timeline from July 2026 ran into the real "now" on 2026-11-26: Dagster had no
    partitions for those days and every run of them failed."""
    now = datetime(2026, 11, 26, 0, 30, tzinfo=UTC)
    assert drill_start(150, now) == DRILL_START
    late = datetime(2026, 3, 1, 12, tzinfo=UTC)
    assert drill_start(150, late) + timedelta(days=150) <= late
    assert drill_start(150, late) + timedelta(days=151) > late
