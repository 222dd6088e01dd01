"""Warm-up (issue 17 item 6): a label feature is warm only after its window plus the label
maturity; training windows (and so reference profiles) start after it when history allows."""

from dataclasses import replace
from datetime import timedelta

import pytest

from ml_assets.lib.core.identifiers import SpecError
from ml_assets.lib.features.definitions import LabelAgg, WindowAgg, feature_warm_up
from ml_assets.lib.training.train import training_window
from ml_assets.specs.fraud import FRAUD_SPEC

DAY = timedelta(days=1)


def test_a_label_feature_warms_after_its_window_plus_the_label_maturity():
    count = WindowAgg("n_7d", entity="card_id", agg="count", window="7d")
    rate = LabelAgg("rate_30d", entity="merchant_id", agg="rate", window="30d")
    assert feature_warm_up((count,), 30 * DAY) == 7 * DAY
    assert feature_warm_up((count, rate), 30 * DAY) == 60 * DAY
    assert feature_warm_up((count, rate), 5 * DAY) == 35 * DAY
    # the demo: 30-day label windows, 30-day label maturity
    assert FRAUD_SPEC.warm_start == FRAUD_SPEC.start_utc + 60 * DAY


def test_training_windows_start_after_warm_up_when_the_history_reaches_past_it():
    spec, start = FRAUD_SPEC, FRAUD_SPEC.start_utc
    # as of day 90 with a 60-day window: days 30-60 are warm-up, so the window is days 60-90
    w = training_window(spec, start + 90 * DAY)
    assert (w.start, w.end, w.label_cutoff) == (start + 60 * DAY, start + 90 * DAY, start + 90 * DAY)
    # far past warm-up the configured length applies
    w = training_window(spec, start + 200 * DAY)
    assert w.start == start + 140 * DAY
    # fewer warm days than half the window: the full (cold) window, the card says not warm
    w = training_window(spec, start + 75 * DAY)
    assert w.start == start + 15 * DAY
    # history shorter than warm-up: the whole history, and the card will say it is not warm
    w = training_window(spec, start + 40 * DAY)
    assert w.start == start
    # a spec declaring its history already warm
    assert training_window(replace(spec, warm_up=timedelta(0)), start + 40 * DAY).start == start


def test_a_negative_warm_up_is_refused_naming_the_field():
    with pytest.raises(SpecError, match="warm_up"):
        replace(FRAUD_SPEC, warm_up=-DAY)
