"""The business metric: values from the spec's definition, estimates while pending, alarms."""

import numpy as np
import pandas as pd
import pytest

from ml_assets.lib.monitoring.business import BusinessMetric, business_alerts, compute_business
from ml_assets.lib.monitoring.prediction_drift import decision_share_p_value
from ml_assets_tests.fixtures.example_specs import example_specs

METRIC = BusinessMetric(name="net", unit="USD", description="", decision_rate_name="decline_rate",
                        value_column="amount", tp_rate=1.0, fp_rate=0.1, fp_fixed=2.0,
                        max_decision_rate=0.05, min_value_per_1k=0.0)


def frame():
    # declined fraud 100, declined good 50, approved fraud 30, approved good x7, one unknown decline
    return pd.DataFrame({
        "decision": [True, True, False, True] + [False] * 7,
        "label": [1, 0, 1, np.nan] + [0] * 7,
        "value": [100.0, 50.0, 30.0, 10.0] + [20.0] * 7,
        "score": [0.9, 0.6, 0.2, 0.5] + [0.01] * 7,
    })


def test_realized_value_is_prevented_losses_minus_false_decline_costs():
    r = compute_business(frame(), METRIC, final=True)
    assert r["value"] == pytest.approx(100 - (0.1 * 50 + 2))
    assert r["decline_rate"] == pytest.approx(3 / 11)
    assert r["missed_positive_value"] == pytest.approx(30)
    assert r["value_per_1k"] == pytest.approx(93 / 11 * 1000)
    assert r["decided_label_coverage"] == pytest.approx(2 / 3)
    per_event = np.array([100, -7] + [0] * 9)
    assert r["value_per_1k_se"] == pytest.approx(per_event.std(ddof=1) / np.sqrt(11) * 1000)
    assert r["missed_value_per_1k"] == pytest.approx(30 / 11 * 1000)  # the approved fraud


def test_a_rate_move_within_the_baselines_own_dispersion_is_not_a_warn():
    """The demo's bursty decisions: baseline days of 45-80 declines in 8,000; a day with 95
    (+56% on their mean) is past the 50% move and 3 Poisson sigmas, not past their spread."""
    base = np.array([45, 80, 52, 70, 48, 75, 57])
    rows = np.full(7, 8_000)
    day = {"decline_rate": 95 / 8_000, "events": 8_000, "decisions": 95, "value_per_1k": None}
    baseline = float((base / rows).mean())
    assert [a for a, _ in business_alerts(day, METRIC, baseline)] == ["warn"]  # Poisson only
    p = decision_share_p_value(95, 8_000, base, rows)
    assert p > 1e-3 and business_alerts(day, METRIC, baseline, rate_p_value=p) == []
    # a real move beyond that spread still warns
    moved = {**day, "decline_rate": 200 / 8_000, "decisions": 200}
    p = decision_share_p_value(200, 8_000, base, rows)
    assert [a for a, _ in business_alerts(moved, METRIC, baseline, rate_p_value=p)] == ["warn"]


def test_pending_day_reports_only_an_estimate():
    r = compute_business(frame(), METRIC, final=False)
    assert r["status"] == "pending" and r["value"] is None and r["value_per_1k"] is None
    p, v = np.array([0.9, 0.6, 0.5]), np.array([100.0, 50.0, 10.0])
    assert r["estimated_value"] == pytest.approx(float(np.sum(p * v - (1 - p) * (0.1 * v + 2))))


def test_alerts_decline_rate_limit_poisson_aware_move_and_floor_on_final_days_only():
    big = compute_business(frame(), METRIC, final=True)
    assert [a for a, _ in business_alerts(big, METRIC, None)] == ["error"]  # 27% declined
    calm = {"decline_rate": 0.012, "events": 10_000, "decisions": 120, "value_per_1k": 5.0}
    assert business_alerts(calm, METRIC, 0.010) == []  # +20%: within the allowed move
    noisy = {"decline_rate": 0.02, "events": 100, "decisions": 2, "value_per_1k": None}
    assert business_alerts(noisy, METRIC, 0.01) == []  # doubled, but 2 vs 1 expected is noise
    moved = {"decline_rate": 0.02, "events": 10_000, "decisions": 200, "value_per_1k": 5.0}
    assert [a for a, _ in business_alerts(moved, METRIC, 0.01)] == ["warn"]
    losing = {**calm, "value_per_1k": -3.0, "value_per_1k_se": 1.0}
    assert [a for a, _ in business_alerts(losing, METRIC, 0.012)] == ["error"]
    unlucky = {**losing, "value_per_1k_se": 2.0}  # -3 + 2 x 2 > 0: a small day's noise
    assert [a for a, _ in business_alerts(unlucky, METRIC, 0.012)] == ["warn"]
    assert business_alerts({**losing, "value_per_1k": None}, METRIC, 0.012) == []


def test_every_spec_defines_its_own_business_metric():
    metrics = {name: s.business_metric for name, s in example_specs().items()}
    assert metrics["card_fraud"].unit == "USD" and metrics["card_fraud"].value_column == "amount"
    assert metrics["support_tickets"].unit == "hours"


def test_missed_value_pages_only_when_it_jumps_beyond_noise_on_a_final_day():
    metric = BusinessMetric(name="net", unit="USD", description="", value_column="amount",
                            tp_rate=1.0, max_missed_value_change=1.0)
    day = {"decision_rate": 0.01, "events": 10_000, "decisions": 100, "value_per_1k": 5.0}
    jumped = {**day, "missed_value_per_1k": 250.0, "missed_value_per_1k_se": 10.0}
    assert [a for a, _ in business_alerts(jumped, metric, 0.01, missed_baseline=100.0)] == ["error"]
    noisy = {**jumped, "missed_value_per_1k_se": 60.0}  # 250 - 2 x 60 is within +100%
    assert business_alerts(noisy, metric, 0.01, missed_baseline=100.0) == []
    usual = {**jumped, "missed_value_per_1k": 150.0}
    assert business_alerts(usual, metric, 0.01, missed_baseline=100.0) == []
    assert business_alerts(jumped, metric, 0.01, missed_baseline=None) == []  # no final baseline
    pending = {**day, "missed_value_per_1k": None}
    assert business_alerts(pending, metric, 0.01, missed_baseline=100.0) == []
