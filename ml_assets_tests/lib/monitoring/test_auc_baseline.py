"""A mature day's AUC against the per-day held-out baseline, not the pooled held-out AUC
(issue 17, item 4).

The synthetic process: each day has a level ``u`` (normal, SD 0.8) that raises both its fraud
rate and its scores, and a slightly different separating strength. Pooled over days, the easy
cross-day pairs lift the AUC about 0.05 above the AUC of a typical day - the real-data
pattern (pooled 0.766, per-day median 0.718). Held-out days hold 2,000 rows (the test share of a
day), production days 10,000: the baseline has to account for that difference in size.
"""

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from ml_assets.lib.monitoring.auc_baseline import held_out_per_day, per_day_auc
from ml_assets.lib.monitoring.evaluation import FINAL, auc_alert, evaluate_day

START = datetime(2026, 1, 1, tzinfo=UTC)
HELD_OUT_DAYS, MATURITY, MIN_POS = 70, 10, 5  # label cutoff at day 70: days 0-59 are mature
WARN, ERROR = 0.03, 0.08  # the spec's default auc_drop_warn / auc_drop_error


def simulate_day(rng: np.random.Generator, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """One day: labels (0/1) and scores (0-1) whose level moves with the day's fraud rate."""
    u, beta = rng.normal(0, 0.8), np.exp(rng.normal(0, 0.1))
    x = rng.normal(size=rows)
    y = (rng.random(rows) < 1 / (1 + np.exp(3.8 - u - beta * x))).astype(int)
    s = 1 / (1 + np.exp(3.8 - u - beta * (x + rng.normal(0, 1.0, rows))))
    return y, s


@pytest.fixture(scope="module")
def held_out():
    rng = np.random.default_rng(17)
    days = [simulate_day(rng, 2_000) for _ in range(HELD_OUT_DAYS)]
    day = np.repeat(np.arange(HELD_OUT_DAYS), 2_000)
    ts = pd.Series(pd.Timestamp(START) + pd.to_timedelta(day, "D")
                   + pd.to_timedelta(np.tile(np.arange(2_000) * 40, HELD_OUT_DAYS), "s"))
    y, s = np.concatenate([d[0] for d in days]), np.concatenate([d[1] for d in days])
    mature = day < HELD_OUT_DAYS - MATURITY
    baseline = held_out_per_day(ts, y, s, START + timedelta(days=HELD_OUT_DAYS), MATURITY,
                                MIN_POS)
    return {"baseline": baseline, "pooled": float(roc_auc_score(y[mature], s[mature]))}


@pytest.fixture(scope="module")
def production():
    rng = np.random.default_rng(2026)
    return [simulate_day(rng, 10_000) for _ in range(200)]


def test_per_day_auc_equals_sklearn_with_ties():
    rng = np.random.default_rng(3)
    day = np.repeat(np.array(["2026-01-01", "2026-01-02", "2026-01-03"], dtype="datetime64[D]"),
                    300)
    y = (rng.random(900) < 0.1).astype(int)
    s = np.round(rng.random(900) + 0.3 * y, 1)  # many ties
    got = per_day_auc(day, y, s, MIN_POS)
    want = [roc_auc_score(y[day == d], s[day == d]) for d in np.unique(day)]
    assert got["auc"].to_numpy() == pytest.approx(want, abs=1e-12)
    assert got["positives"].sum() == y.sum()


def test_the_card_records_the_per_day_distribution_of_mature_held_out_days(held_out):
    b = held_out["baseline"]
    assert b["days"] == 60 and b["days_immature"] == 10 and b["days_too_few_positives"] == 0
    # The gap the issue measured on real data, reproduced: pooled ~0.05 above a typical day.
    assert 0.04 < held_out["pooled"] - b["auc_p50"] < 0.065
    assert b["auc_p05"] < b["auc_p25"] < b["auc_p50"] < b["auc_p75"]
    assert 0.01 < b["between_day_sd"] < b["day_se_rms"] + 0.02
    assert all(isinstance(v, int | float) for v in b.values())
    # too few usable days: only the counts, no quantiles (no sentinels)
    few = held_out_per_day(pd.Series(pd.date_range(START, periods=96, freq="h")),
                           np.arange(96) % 2, np.linspace(0, 1, 96),
                           START + timedelta(days=30), MATURITY, MIN_POS)
    assert "auc_p50" not in few and few["days"] == 4


def test_clean_days_rarely_alarm_against_the_per_day_baseline(held_out, production):
    """200 production days from the held-out process (10,000 rows, ~400 positives each): the
    pooled rule alarms on 165 of them (152 WARN, 13 ERROR: a typical day sits 0.05 below the
    pooled AUC); the per-day rule on 2 (WARN), at most 5% allowed, none ERROR."""
    results = [evaluate_day(y.astype(float), s, FINAL, None, MIN_POS) for y, s in production]
    old = [auc_alert(r, held_out["pooled"], WARN, ERROR)[0] for r in results]
    new = [auc_alert(r, held_out["pooled"], WARN, ERROR, per_day=held_out["baseline"])[0]
           for r in results]
    assert sum(v != "ok" for v in old) >= 150
    assert sum(v != "ok" for v in new) <= 10  # 5% of 200
    assert "error" not in new
    msg = auc_alert(results[0], held_out["pooled"], WARN, ERROR)[1]
    assert "no per-day held-out baseline" in msg and "pooled" in msg  # an old card says so


def test_a_real_degradation_still_alarms(held_out, production):
    """Scores shuffled on half of a day's rows drop its AUC by 0.10 (0.700 to 0.600, 0.086
    below the per-day median, noise 0.028): ERROR."""
    y, s = production[0]
    rng = np.random.default_rng(7)
    part = rng.random(len(s)) < 0.5
    broken = s.copy()
    broken[part] = rng.permutation(s[part])
    clean = evaluate_day(y.astype(float), s, FINAL, None, MIN_POS)
    bad = evaluate_day(y.astype(float), broken, FINAL, None, MIN_POS)
    assert 0.09 < clean["auc"] - bad["auc"] < 0.11
    level, message = auc_alert(bad, held_out["pooled"], WARN, ERROR,
                               per_day=held_out["baseline"])
    assert level == "error", message
    assert "per-day median" in message


def _varied_day(rng: np.random.Generator, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """A day whose separability itself varies (its mix of easy and hard positives)."""
    beta = np.exp(rng.normal(0.9, 0.25))
    x = rng.normal(size=rows)
    y = (rng.random(rows) < 1 / (1 + np.exp(5.3 - beta * x))).astype(int)
    return y, 1 / (1 + np.exp(5.3 - beta * (x + rng.normal(0, 0.6, rows))))


def test_the_between_day_spread_is_taken_at_its_upper_bound():
    """22 mature held-out days estimate the day-to-day spread of the AUC poorly; held to the
    point estimate, clean production days alarm on 14% of days (20 windows x 20 days), held to
    its 95% upper bound on 8.5% - better, still above the 5% goal: a held-out day with ~60
    positives cannot tell day-to-day variation from sampling noise well."""
    shares = {"point": [], "upper": []}
    for seed in range(20):
        rng = np.random.default_rng(seed)
        held = [_varied_day(rng, 1_600) for _ in range(52)]
        day = np.repeat(np.arange(52), 1_600)
        ts = pd.Series(pd.Timestamp(START) + pd.to_timedelta(day, "D")
                       + pd.to_timedelta(np.tile(np.arange(1_600) * 50, 52), "s"))
        base = held_out_per_day(ts, np.concatenate([h[0] for h in held]),
                                np.concatenate([h[1] for h in held]),
                                START + timedelta(days=52), 30, MIN_POS)
        assert base["days"] == 22 and base["between_day_sd_upper"] >= base["between_day_sd"]
        point = {k: v for k, v in base.items() if k != "between_day_sd_upper"}  # an older card
        days = [evaluate_day(y.astype(float), s, FINAL, None, MIN_POS)
                for y, s in (_varied_day(rng, 8_000) for _ in range(20))]
        for name, per_day in (("point", point), ("upper", base)):
            shares[name] += [auc_alert(r, None, WARN, ERROR, per_day=per_day)[0] != "ok"
                             for r in days]
    assert np.mean(shares["point"]) > 0.12
    assert np.mean(shares["upper"]) < 0.09
