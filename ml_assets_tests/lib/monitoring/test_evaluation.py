"""Delayed evaluation: the label gate, the confidence-based estimate and the AUC alarm rule."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from ml_assets.lib.monitoring.evaluation import (
    FINAL,
    PENDING,
    auc_alert,
    auc_standard_error,
    evaluate_day,
    expected_auc,
    fit_calibrator,
    label_status,
)

DAY_END = datetime(2026, 8, 2, tzinfo=UTC)


def brute_force_expected_auc(scores, p):
    """Every ordered pair (i != j): weight p_i (1 - p_j), win 1 if s_i > s_j, 1/2 on ties."""
    s_i, s_j = scores[:, None], scores[None, :]
    w = p[:, None] * (1 - p[None, :])
    np.fill_diagonal(w, 0)
    wins = (s_i > s_j) + 0.5 * (s_i == s_j)
    return float((w * wins).sum() / w.sum())


def test_expected_auc_equals_the_pairwise_definition_with_ties():
    rng = np.random.default_rng(0)
    scores = np.round(rng.random(400), 2)  # many ties
    p = rng.beta(0.5, 3, 400)
    assert expected_auc(scores, p) == pytest.approx(brute_force_expected_auc(scores, p), abs=1e-12)


def test_estimate_tracks_realized_auc_when_probabilities_are_calibrated():
    rng = np.random.default_rng(1)
    p = rng.beta(0.6, 6, 20_000)
    realized = [roc_auc_score(rng.random(len(p)) < p, p) for _ in range(20)]
    assert expected_auc(p, p) == pytest.approx(np.mean(realized), abs=0.005)


def test_label_gate_needs_both_maturity_and_coverage():
    assert label_status(DAY_END, DAY_END + timedelta(days=5), 1.0, 30, 0.9)[0] == PENDING
    status, why = label_status(DAY_END, DAY_END + timedelta(days=40), 0.5, 30, 0.9)
    assert status == PENDING and "coverage" in why
    assert label_status(DAY_END, DAY_END + timedelta(days=40), 0.95, 30, 0.9)[0] == FINAL


def test_no_auc_alarm_is_possible_while_labels_are_pending():
    rng = np.random.default_rng(2)
    y = (rng.random(5000) < 0.05).astype(float)
    inverted = 1 - (0.8 * y + 0.2 * rng.random(5000))  # a model that ranks backwards
    labels = np.where(rng.random(5000) < 0.3, y, np.nan)  # 30% of labels landed
    pending = evaluate_day(labels, inverted, PENDING, None, 5)
    assert pending["auc"] is None and pending["estimated_auc"] is not None
    assert pending["label_coverage"] == pytest.approx(0.3, abs=0.02)
    assert auc_alert(pending, 0.95, 0.03, 0.08)[0] == "ok"
    final = evaluate_day(y, inverted, FINAL, None, 5)
    assert final["auc"] < 0.1
    assert auc_alert(final, 0.95, 0.03, 0.08)[0] == "error"
    assert auc_alert(evaluate_day(y, 1 - inverted, FINAL, None, 5), 0.95, 0.03, 0.08)[0] == "ok"


def test_calibrator_maps_scores_to_observed_rates_and_declines_without_positives():
    rng = np.random.default_rng(3)
    raw = rng.random(20_000)
    y = rng.random(20_000) < raw**3  # the raw score overstates the rate
    cal = fit_calibrator(raw, y, 5)
    assert cal.predict([0.5])[0] == pytest.approx(0.125, abs=0.05)
    assert fit_calibrator(raw[:100], np.zeros(100), 5) is None


def test_an_auc_drop_pages_only_beyond_the_days_sampling_noise():
    """17 positives: the SE of a day's AUC is ~0.05, so a 0.09 drop is a WARN, not a page;
    with 700 positives the same drop pages."""
    small = {"status": FINAL, "auc": 0.865, "label_coverage": 1.0,
             "auc_se": auc_standard_error(0.865, 17, 2000)}
    assert 0.045 < small["auc_se"] < 0.065
    assert auc_alert(small, 0.9515, 0.03, 0.08)[0] == "warn"
    # a drop within one standard error of a small day is noise, not a finding
    tiny = {**small, "auc_se": 0.0666}
    assert auc_alert({**tiny, "auc": 0.7077}, 0.7709, 0.05, 0.10)[0] == "ok"
    assert auc_alert({**tiny, "auc": 0.69}, 0.7709, 0.05, 0.10)[0] == "warn"
    large = {**small, "auc_se": auc_standard_error(0.865, 700, 80_000)}
    assert auc_alert(large, 0.9515, 0.03, 0.08)[0] == "error"
    # The formula against a simulation: the spread of AUCs of equally good models.
    rng = np.random.default_rng(5)
    aucs = [roc_auc_score(np.r_[np.ones(40), np.zeros(400)],
                          np.r_[rng.normal(1.5, 1, 40), rng.normal(0, 1, 400)])
            for _ in range(400)]
    assert auc_standard_error(float(np.mean(aucs)), 40, 400) == pytest.approx(np.std(aucs),
                                                                               rel=0.25)
