"""A spec that is accepted can run end to end (issue 14, item 4): every limit a later stage
has (training, feature tables, monitoring, release) is checked when the spec is built, and the
SpecError names the field and the limit."""

from dataclasses import replace

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

from ml_assets.lib.core.datasets import Attribute, DatasetSpec
from ml_assets.lib.core.identifiers import SpecError
from ml_assets.lib.features.definitions import MAX_VOCABULARY, Categorical, WindowAgg
from ml_assets.specs.fraud import FRAUD_SPEC

S = FRAUD_SPEC


def _model(**kw):
    return replace(S, model=replace(S.model, **kw))


def _mon(**kw):
    return replace(S, monitoring=replace(S.monitoring, **kw))


def _shadow(**kw):
    return replace(S, shadow=replace(S.shadow, **kw))


def _rollout(**kw):
    return replace(S, rollout=replace(S.rollout, **kw))


def _feature(f):
    return replace(S, features=(*S.features, f))


def _metric(**kw):
    return replace(S, business_metric=replace(S.business_metric, **kw))


VOCAB_300 = tuple(f"c{i}" for i in range(300))

# (case, bad spec, words the message must hold: the field and the limit)
CASES = [
    ("vocabulary_300", lambda: _feature(Categorical("mcc_300", "merchant_category", VOCAB_300)),
     ["'mcc_300'", "300 values", "at most 254"]),
    ("vocabulary_repeats", lambda: _feature(Categorical("mcc_rep", "merchant_category",
                                                        ("a", "b", "a"))),
     ["'mcc_rep'", "distinct"]),
    ("window_zero", lambda: _feature(WindowAgg("n0", "card_id", "count", "0h")),
     ["'n0'", "window '0h'", "positive"]),
    ("window_unit", lambda: _feature(WindowAgg("nw", "card_id", "count", "2w")),
     ["'nw'", "window '2w'", "m/h/d"]),
    ("entity_not_a_key", lambda: _feature(WindowAgg("nc", "country", "count", "1h")),
     ["'nc'", "entity 'country'"]),
    ("column_not_declared", lambda: _feature(WindowAgg("ns", "card_id", "sum", "1h", "tip")),
     ["'ns'", "sum"]),
    ("feature_name_repeated", lambda: _feature(S.features[0]),
     [repr(S.features[0].name), "declared twice"]),
    ("feature_name_is_a_key", lambda: _feature(WindowAgg("card_id", "card_id", "count", "1h")),
     ["feature 'card_id'", "entity key"]),
    ("feature_name_invalid", lambda: _feature(WindowAgg("Bad-Name", "card_id", "count", "1h")),
     ["feature name 'Bad-Name'", "identifier"]),
    ("no_features", lambda: replace(S, features=()), ["features", "at least one"]),
    ("label_is_event_column", lambda: replace(S, label="amount"), ["label = 'amount'"]),
    ("label_ts_is_label", lambda: replace(S, label_ts=S.label), ["label_ts", "the label"]),
    ("owner_empty", lambda: replace(S, owner=" "), ["owner", "non-empty"]),
    ("seed_negative", lambda: _model(seed=-1), ["model.seed", "2**32"]),
    ("seed_too_big", lambda: _model(seed=2**32), ["model.seed", "2**32"]),
    ("max_iter_zero", lambda: _model(max_iter=0), ["model.max_iter", ">= 1"]),
    ("learning_rate_zero", lambda: _model(learning_rate=0.0), ["model.learning_rate", "> 0"]),
    ("max_leaf_nodes_one", lambda: _model(max_leaf_nodes=1), ["model.max_leaf_nodes", ">= 2"]),
    ("l2_negative", lambda: _model(l2_regularization=-1.0), ["model.l2_regularization"]),
    ("threshold_zero", lambda: _model(decision_threshold=0.0),
     ["model.decision_threshold", "between 0 and 1"]),
    ("threshold_one", lambda: _model(decision_threshold=1.0), ["model.decision_threshold"]),
    ("threshold_nan", lambda: _model(decision_threshold=float("nan")),
     ["model.decision_threshold"]),
    ("split_sum_one", lambda: _model(split_fractions=(0.8, 0.2)),
     ["model.split_fractions", "summing to < 1"]),
    ("split_zero_valid", lambda: _model(split_fractions=(0.8, 0.0)), ["model.split_fractions"]),
    ("split_salt_empty", lambda: _model(split_salt=""), ["model.split_salt"]),
    ("training_window_zero", lambda: _model(training_window_days=0),
     ["model.training_window_days", ">= 1"]),
    ("reference_rows_zero", lambda: _model(frozen_reference_rows=0),
     ["model.frozen_reference_rows"]),
    ("psi_bins_one", lambda: _mon(psi_bins=1), ["monitoring.psi_bins", ">= 2"]),
    ("psi_warn_above_error", lambda: _mon(psi_warn=0.3, psi_error=0.25),
     ["monitoring.psi_warn", "psi_warn <= psi_error"]),
    ("prediction_psi_zero", lambda: _mon(prediction_psi_warn=0.0),
     ["monitoring.prediction_psi_warn"]),
    ("auc_drop_order", lambda: _mon(auc_drop_warn=0.1, auc_drop_error=0.05),
     ["monitoring.auc_drop_warn"]),
    ("early_p_order", lambda: _mon(early_warn_p=1e-6, early_error_p=1e-3),
     ["monitoring.early_warn_p"]),
    ("label_maturity_negative", lambda: _mon(label_maturity_days=-1),
     ["monitoring.label_maturity_days", ">= 0"]),
    ("label_coverage_zero", lambda: _mon(min_label_coverage=0.0),
     ["monitoring.min_label_coverage", "(0, 1]"]),
    ("baseline_days_zero", lambda: _mon(baseline_days=0), ["monitoring.baseline_days"]),
    ("noise_margin_zero", lambda: _mon(noise_margin=0.0), ["monitoring.noise_margin"]),
    ("psi_null_quantile_one", lambda: _mon(psi_null_quantile=1.0),
     ["monitoring.psi_null_quantile", "[0.5, 1)"]),
    ("unmonitored_factor_one", lambda: _mon(unmonitored_factor=1.0),
     ["monitoring.unmonitored_factor", "> 1"]),
    ("shadow_disagreement_share", lambda: _shadow(max_disagreement=1.5),
     ["shadow.max_disagreement", "[0, 1]"]),
    ("shadow_rank_corr", lambda: _shadow(min_rank_correlation=2.0),
     ["shadow.min_rank_correlation"]),
    ("shadow_latency_zero", lambda: _shadow(max_latency_p99_ms=0.0),
     ["shadow.max_latency_p99_ms"]),
    ("shadow_samples_zero", lambda: _shadow(latency_samples=0), ["shadow.latency_samples"]),
    ("shadow_bands_not_rising", lambda: _shadow(score_bands=(0.0, 0.5, 0.1, 1.0)),
     ["shadow.score_bands", "rising from 0 to 1"]),
    ("shadow_bands_not_to_one", lambda: _shadow(score_bands=(0.0, 0.5)),
     ["shadow.score_bands"]),
    ("shadow_hard_limit_unknown", lambda: _shadow(hard_limits=("score_pis",)),
     ["shadow.hard_limits", "score_pis"]),
    ("rollout_not_increasing", lambda: _rollout(stages=("shadow", "5", "1", "100")),
     ["rollout stages", "increasing"]),
    ("rollout_not_ending_100", lambda: _rollout(stages=("shadow", "1", "50")),
     ["rollout stages", "'100'"]),
    ("rollout_regression_share", lambda: _rollout(max_regression=1.0),
     ["rollout.max_regression", "(0, 1)"]),
    ("rollout_z_zero", lambda: _rollout(z=0.0), ["rollout.z"]),
    ("rollout_arm_zero", lambda: _rollout(min_arm_labeled=0), ["rollout.min_arm_labeled"]),
    ("metric_value_column", lambda: _metric(value_column="country"),
     ["business_metric.value_column", "numeric attribute"]),
    ("attribute_bounds_inverted", lambda: Attribute("amount", "numeric", min_value=10.0,
                                                    max_value=1.0),
     ["attribute 'amount' min_value/max_value", "min_value <= max_value"]),
    ("attribute_bounds_on_categorical", lambda: Attribute("country", "categorical",
                                                          min_value=0.0),
     ["attribute 'country'", "numeric attributes only"]),
    ("metric_decision_rate", lambda: _metric(max_decision_rate=0.0),
     ["business_metric.max_decision_rate"]),
    ("partition_grain_weekly", lambda: replace(S, partition_grain="weekly"),
     ["dataset 'card_fraud'", "partition_grain 'weekly'", "'hourly' or 'daily'"]),
]


@pytest.mark.parametrize(("build", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_spec_a_later_stage_cannot_run_is_refused_at_construction(build, words):
    with pytest.raises(SpecError) as err:
        build()
    for word in words:
        assert word in str(err.value), str(err.value)


def test_the_shipped_specs_and_the_limits_edge_are_accepted():
    assert isinstance(_feature(Categorical("mcc_254", "merchant_category",
                                           VOCAB_300[:MAX_VOCABULARY])), DatasetSpec)
    assert _model(decision_threshold=0.01, seed=2**32 - 1, split_fractions=(0.5, 0.49))
    assert _mon(label_maturity_days=0, psi_bins=2)


def test_the_vocabulary_limit_is_the_booster_s():
    """254 values + the unknown bucket fit HistGradientBoosting; one more category does not."""
    def fit(categories):
        x = np.arange(categories, dtype="float64").repeat(2).reshape(-1, 1)
        y = np.tile([0, 1], categories)
        return HistGradientBoostingClassifier(max_iter=1, categorical_features=[True]).fit(x, y)

    fit(MAX_VOCABULARY + 1)
    with pytest.raises(ValueError, match="cardinality"):
        fit(MAX_VOCABULARY + 2)
