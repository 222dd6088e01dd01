"""Score shift judged against the baseline's own clean variability: ordinary days whose scores
move with outside conditions stay below ERROR, a real shift and a collapse of decisions do not,
and a small day is not an alarm for being small."""

import numpy as np
import pytest

from ml_assets.lib.core.policies import MonitoringConfig
from ml_assets.lib.monitoring.prediction_drift import score_shift

CFG = MonitoringConfig()
ROWS = 8_000
THRESHOLD = 0.5  # decision when the score reaches it


def _day(rng, shift: float, rows: int = ROWS) -> tuple[np.ndarray, np.ndarray]:
    """A fraud-like day: 0.7% positives scored high, the rest near zero, on the logit scale
    moved by ``shift`` (what outside conditions do to a whole day)."""
    pos = rng.random(rows) < 0.007
    logit = np.where(pos, rng.normal(0.5, 1.8, rows), rng.normal(-5.5, 1.0, rows)) + shift
    scores = 1 / (1 + np.exp(-logit))
    return scores, scores >= THRESHOLD


def _judge(day, baseline):
    scores = np.concatenate([s for s, _ in baseline])
    decisions = np.concatenate([d for _, d in baseline])
    days = np.repeat(np.arange(len(baseline)), [len(s) for s, _ in baseline])
    return score_shift(day[0], day[1], scores, decisions, days, CFG)


@pytest.fixture(scope="module")
def clean_days():
    """200 judged days, each against its trailing ``baseline_days``; every day's logit moves by
    a day-level N(0, 0.3) effect."""
    rng = np.random.default_rng(17)
    k = CFG.baseline_days
    days = [_day(rng, rng.normal(0, 0.3)) for _ in range(200 + k)]
    return days, [_judge(days[t], days[t - k:t]) for t in range(k, len(days))]


def test_clean_days_that_move_with_outside_conditions_are_rarely_an_error(clean_days):
    _, verdicts = clean_days
    errors = sum(v["severity"] == "error" for v in verdicts)
    assert errors <= 0.01 * len(verdicts), [v["alert_message"] for v in verdicts
                                            if v["severity"] == "error"]
    # The fixed rule (ERROR above PSI 0.25 against the trailing week) errs on 18 of these 200
    # days (9%: about three days a month); judged against clean variability, none is an error
    # (20 are a WARN).
    old = sum(v["psi"] > CFG.prediction_psi_error for v in verdicts)
    assert old >= 15, old


def test_a_real_shift_of_the_scores_is_an_error(clean_days):
    days, _ = clean_days
    rng = np.random.default_rng(3)
    v = _judge(_day(rng, 1.5), days[-CFG.baseline_days:])
    assert v["psi_severity"] == "error", v
    assert v["severity"] == "error" and "score PSI" in v["alert_message"]


def _decision_days(rng, days: int) -> list:
    """Days of 8,400 rows with ~60 decisions each (Poisson), scores unrelated to them."""
    baseline = []
    for _ in range(days):
        decisions = np.zeros(8_400, bool)
        decisions[:rng.poisson(60)] = True
        baseline.append((rng.random(8_400) * 0.4, decisions))
    return baseline


def test_a_collapse_of_decisions_is_an_error_naming_the_decision_share():
    rng = np.random.default_rng(5)
    baseline = _decision_days(rng, CFG.baseline_days)
    day_scores = rng.random(8_363) * 0.4
    day_decisions = np.zeros(8_363, bool)
    day_decisions[:4] = True
    v = _judge((day_scores, day_decisions), baseline)
    assert v["psi_severity"] == "ok", v  # the scores themselves did not move
    assert v["decision_severity"] == "error" and v["severity"] == "error", v
    assert "decision share" in v["alert_message"], v
    # A normal day of the same world is not.
    day_decisions[:rng.poisson(60)] = True
    assert _judge((day_scores, day_decisions), baseline)["severity"] == "ok"


def test_a_small_clean_day_is_not_an_error(clean_days):
    days, _ = clean_days
    rng = np.random.default_rng(11)
    for _ in range(20):
        v = _judge(_day(rng, 0.0, rows=40), days[-CFG.baseline_days:])
        assert v["severity"] != "error", v


def test_a_collapse_after_too_few_baseline_days_to_know_their_dispersion_is_a_warn():
    rng = np.random.default_rng(5)
    decisions = np.zeros(8_363, bool)
    decisions[:4] = True
    v = _judge((rng.random(8_363) * 0.4, decisions), _decision_days(rng, 1))
    assert v["decision_severity"] == "warn" and "too few" in v["alert_message"], v
