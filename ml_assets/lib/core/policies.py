"""The policies a dataset spec carries beside its columns and features: model training,
monitoring thresholds, the shadow gate and the staged rollout. Each refuses, at construction,
a value a later stage could not run with (``SpecError`` naming the field and the limit)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import pairwise

from ml_assets.lib.core.identifiers import SpecError
from ml_assets.lib.monitoring.drift_periods import DriftPeriod, parse_period

# The shadow checklist's items (lib/release/shadow.py), the only names a hard limit can take.
SHADOW_CHECKS = ("shadow_duration", "error_rate", "nan_inf_rate", "disagreement_rate",
                 "score_psi", "rank_correlation", "offline_online_decision_rate",
                 "offline_online_lift", "latency_p99_ms", "edge_cases")


def is_number(value: object) -> bool:
    """A finite real number (not a bool, not NaN)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def is_int(value: object) -> bool:
    """An int that is not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def check_limit(ok: bool, field: str, value: object, limit: str) -> None:
    """Refuse a value a later stage cannot run with, at construction, naming field and limit."""
    if not ok:
        raise SpecError(f"{field} = {value!r} is refused: {limit}")


@dataclass(frozen=True)
class ModelConfig:
    """Training hyper-parameters, split and window of one model (``lib/training``).

    Booster settings are scikit-learn ``HistGradientBoostingClassifier`` parameters;
    ``decision_threshold`` is a score in [0, 1]; ``split_fractions`` are the train and validation
    shares of events (test is the rest), by a stable hash of the event id salted with ``split_salt``;
    ``training_window_days`` is in days; ``frozen_reference_rows`` in rows.
    """
    seed: int = 20260701
    max_iter: int = 200
    learning_rate: float = 0.08
    max_leaf_nodes: int = 31
    l2_regularization: float = 1.0
    decision_threshold: float = 0.5
    split_salt: str = "splits-v1"
    split_fractions: tuple[float, float] = (0.7, 0.15)  # train, valid; test is the rest
    training_window_days: int = 60
    frozen_reference_rows: int = 20_000

    def __post_init__(self) -> None:
        check_limit(is_int(self.seed) and 0 <= self.seed < 2**32, "model.seed", self.seed,
               "an integer in [0, 2**32) (numpy and scikit-learn seeds)")
        check_limit(is_int(self.max_iter) and self.max_iter >= 1, "model.max_iter", self.max_iter,
               "an integer >= 1")
        check_limit(is_number(self.learning_rate) and self.learning_rate > 0, "model.learning_rate",
               self.learning_rate, "a number > 0")
        check_limit(is_int(self.max_leaf_nodes) and self.max_leaf_nodes >= 2, "model.max_leaf_nodes",
               self.max_leaf_nodes, "an integer >= 2 (HistGradientBoosting)")
        check_limit(is_number(self.l2_regularization) and self.l2_regularization >= 0,
               "model.l2_regularization", self.l2_regularization, "a number >= 0")
        check_limit(is_number(self.decision_threshold) and 0 < self.decision_threshold < 1,
               "model.decision_threshold", self.decision_threshold,
               "a score strictly between 0 and 1 (0 acts on every event, 1 on none)")
        fr = self.split_fractions
        check_limit(isinstance(fr, tuple) and len(fr) == 2 and all(is_number(f) and f > 0 for f in fr)
               and sum(fr) < 1, "model.split_fractions", fr,
               "(train, validation) shares, each > 0, summing to < 1 (test is the rest)")
        check_limit(isinstance(self.split_salt, str) and bool(self.split_salt), "model.split_salt",
               self.split_salt, "a non-empty string")
        check_limit(is_int(self.training_window_days) and self.training_window_days >= 1,
               "model.training_window_days", self.training_window_days, "an integer >= 1 (days)")
        check_limit(is_int(self.frozen_reference_rows) and self.frozen_reference_rows >= 1,
               "model.frozen_reference_rows", self.frozen_reference_rows, "an integer >= 1")


@dataclass(frozen=True)
class MonitoringConfig:
    """Drift, prediction-shift and delayed-evaluation thresholds (see ``lib/monitoring/drift.py`` and
    ``lib/monitoring/evaluation.py``)."""

    psi_warn: float = 0.1
    psi_error: float = 0.25
    psi_bins: int = 10
    noise_margin: float = 2.0  # error threshold >= this times a feature's clean day-to-day PSI
    # Both PSI thresholds add the PSI a clean sample of the day's size reaches with this
    # probability, so small days do not alarm on sampling noise (lib/monitoring/drift.py).
    psi_null_quantile: float = 0.99
    # An error threshold above this multiple of psi_error leaves a feature effectively unmonitored.
    unmonitored_factor: float = 4.0
    # The period a feature's drift is judged over (lib/monitoring/drift_periods.py): "day",
    # "week", "month", "<N>d" (trailing N days) or "off"; per feature in drift_periods, e.g.
    # {"day_of_week": "week", "month": "off"} (a dict or (feature, period) pairs).
    drift_period: str = "day"
    drift_periods: tuple[tuple[str, str], ...] = ()
    prediction_psi_warn: float = 0.1
    prediction_psi_error: float = 0.25
    # Score-shift error threshold >= this times the largest clean day-to-day score PSI among the
    # baseline days: the largest of 7 clean days is a low estimate of a clean day's 99th
    # percentile (lib/monitoring/prediction_drift.py).
    prediction_noise_margin: float = 4.0
    # Decision share vs the baseline's, allowing its day-to-day dispersion: two-sided p-values.
    decision_warn_p: float = 1e-3
    decision_error_p: float = 1e-6
    baseline_days: int = 7  # the trailing days a version's scores are compared with (and pooled)
    label_maturity_days: int = 30  # a prediction day is never final before this many days
    min_label_coverage: float = 0.9
    min_positives: int = 5  # fewer labeled positives and AUC stays "pending"
    calibration_days: int = 28
    auc_drop_warn: float = 0.03
    auc_drop_error: float = 0.08
    # Early label watch (lib/monitoring/early_labels.py): positives reported early among passed events.
    early_label_days: int = 7  # days after a prediction day its early labels are watched
    early_reference_days: int = 28
    early_min_count: int = 3  # and at least twice the expected count
    early_warn_p: float = 1e-3
    early_error_p: float = 1e-6

    def __post_init__(self) -> None:
        pairs = (tuple(sorted(self.drift_periods.items())) if isinstance(self.drift_periods, dict)
                 else tuple(tuple(p) for p in self.drift_periods))
        object.__setattr__(self, "drift_periods", pairs)  # hashable, whatever was declared
        for field, period in [("drift_period", self.drift_period),
                              *((f"drift_periods[{f!r}]", p) for f, p in pairs)]:
            try:
                parse_period(period)
            except ValueError as exc:
                raise SpecError(f"monitoring.{field}: {exc}") from None
        for warn, error in [("psi_warn", "psi_error"),
                            ("prediction_psi_warn", "prediction_psi_error")]:
            lo, hi = getattr(self, warn), getattr(self, error)
            check_limit(is_number(lo) and is_number(hi) and 0 < lo <= hi, f"monitoring.{warn}", (lo, hi),
                   f"{warn} and {error} must be > 0 with {warn} <= {error}")
        check_limit(is_number(self.auc_drop_warn) and is_number(self.auc_drop_error)
               and 0 <= self.auc_drop_warn <= self.auc_drop_error, "monitoring.auc_drop_warn",
               (self.auc_drop_warn, self.auc_drop_error),
               "auc_drop_warn and auc_drop_error must be >= 0 with warn <= error")
        for warn, error in [("early_warn_p", "early_error_p"),
                            ("decision_warn_p", "decision_error_p")]:
            lo, hi = getattr(self, error), getattr(self, warn)
            check_limit(is_number(lo) and is_number(hi) and 0 < lo <= hi < 1,
                        f"monitoring.{warn}", (hi, lo),
                        f"p-values in (0, 1) with {error} <= {warn}")
        check_limit(is_int(self.psi_bins) and self.psi_bins >= 2, "monitoring.psi_bins", self.psi_bins,
               "an integer >= 2 (PSI compares shares across bins)")
        for name in ("noise_margin", "prediction_noise_margin"):
            value = getattr(self, name)
            check_limit(is_number(value) and value > 0, f"monitoring.{name}", value, "a number > 0")
        check_limit(is_number(self.psi_null_quantile) and 0.5 <= self.psi_null_quantile < 1,
               "monitoring.psi_null_quantile", self.psi_null_quantile, "a quantile in [0.5, 1)")
        check_limit(is_number(self.unmonitored_factor) and self.unmonitored_factor > 1,
               "monitoring.unmonitored_factor", self.unmonitored_factor,
               "a number > 1 (a multiple of psi_error)")
        check_limit(is_int(self.label_maturity_days) and self.label_maturity_days >= 0,
               "monitoring.label_maturity_days", self.label_maturity_days, "an integer >= 0 (days)")
        check_limit(is_number(self.min_label_coverage) and 0 < self.min_label_coverage <= 1,
               "monitoring.min_label_coverage", self.min_label_coverage, "a share in (0, 1]")
        for name in ("baseline_days", "min_positives", "calibration_days", "early_label_days",
                     "early_reference_days", "early_min_count"):
            value = getattr(self, name)
            check_limit(is_int(value) and value >= 1, f"monitoring.{name}", value, "an integer >= 1")

    def period_of(self, feature: str) -> DriftPeriod:
        """The period ``feature``'s drift is judged over (its own, else ``drift_period``)."""
        return parse_period(dict(self.drift_periods).get(feature, self.drift_period))


@dataclass(frozen=True)
class ShadowConfig:
    """Promotion-gate thresholds for a challenger in shadow (``lib/release/shadow.py``).

    Rates and shares are fractions of events in [0, 1]; PSI is unitless (population stability
    index over ``score_bands``, probability band edges); latency in milliseconds.
    """

    min_days: float = 7.0  # minimum shadow duration, in days of data
    max_disagreement: float = 0.30  # share of events whose decisions differ
    max_score_psi: float = 0.25  # PSI of challenger scores against the champion's, over bands
    # Probability bands of that PSI: log-spaced where fraud scores live, so a band shift is a
    # change in risk read as a probability, not a reordering of clear negatives.
    score_bands: tuple[float, ...] = (0.0, 0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0)
    # Spearman over all events: the near-zero mass of an imbalanced problem ranks almost
    # arbitrarily, so two good fraud models sit near 0.3; a model unrelated to the champion
    # (e.g. trained on shuffled labels) sits near 0.
    min_rank_correlation: float = 0.2
    max_error_rate: float = 0.001  # missing or failed challenger scores per event
    decision_rate_tolerance: float = 0.5  # online vs held-out decision rate, relative
    max_lift_gap: float = 0.05  # held-out AUC lift minus online AUC lift; above: leakage?
    min_labeled_positives: int = 20  # before this, the online lift is "pending"
    max_latency_p99_ms: float = 50.0  # used when no interface contract gives one
    latency_samples: int = 100  # single-row model calls timed per model when none are logged
    # Checklist items that must pass on every day of shadow, not only at the end: failing one
    # means the challenger is a different model, so its rollout is paused at once.
    hard_limits: tuple[str, ...] = ("disagreement_rate", "score_psi", "rank_correlation")

    def __post_init__(self) -> None:
        for name, lo, hi in [("min_days", 0, math.inf), ("max_disagreement", 0, 1),
                             ("max_error_rate", 0, 1), ("min_rank_correlation", -1, 1),
                             ("decision_rate_tolerance", 0, math.inf),
                             ("max_lift_gap", 0, math.inf)]:
            value = getattr(self, name)
            check_limit(is_number(value) and lo <= value <= hi, f"shadow.{name}", value,
                   f"a number in [{lo}, {hi}]")
        for name in ("max_score_psi", "max_latency_p99_ms"):
            value = getattr(self, name)
            check_limit(is_number(value) and value > 0, f"shadow.{name}", value, "a number > 0")
        for name in ("min_labeled_positives", "latency_samples"):
            value = getattr(self, name)
            check_limit(is_int(value) and value >= 1, f"shadow.{name}", value, "an integer >= 1")
        bands = self.score_bands
        check_limit(isinstance(bands, tuple) and len(bands) >= 3
                    and all(is_number(b) for b in bands) and bands[0] == 0 and bands[-1] == 1
                    and all(a < b for a, b in pairwise(bands)),
                    "shadow.score_bands", bands, "a tuple of >= 3 numbers rising from 0 to 1")
        # An unknown name would never pause anything: fail closed at construction.
        check_limit(isinstance(self.hard_limits, tuple) and set(self.hard_limits) <= set(SHADOW_CHECKS),
               "shadow.hard_limits", self.hard_limits, f"names among {SHADOW_CHECKS}")


@dataclass(frozen=True)
class RolloutConfig:
    """Staged-rollout policy of a challenger (``lib/release/rollout.py``).

    ``stages`` are percents of entities (by stable hash) after ``"shadow"``; the last one
    promotes. Dwell in hours of scored data; ``max_regression`` is a relative drop of the
    business metric per 1k events, which pauses only when also beyond ``z`` standard errors.
    Every stage advances only on a measured "ok" (``min_arm_labeled`` labeled events per arm,
    ``min_arm_positives`` positives on the challenger's): a stage too small to measure holds
    until enough labels arrive, or a person overrides it, audited (``ml-assets rollout``).
    """

    min_dwell_hours: float = 24.0
    max_regression: float = 0.05  # relative drop of the business metric that pauses
    z: float = 2.0  # ... when also beyond z standard errors
    min_arm_labeled: int = 200  # labeled events per arm before the comparison can decide
    min_arm_positives: int = 5
    salt: str = "rollout-v1"
    stages: tuple[str, ...] = ("shadow", "1", "5", "25", "50", "100")

    def __post_init__(self) -> None:
        percents = self.stages[1:]
        if (self.stages[:1] != ("shadow",) or not percents or percents[-1] != "100"
                or not all(p.isdigit() for p in percents)
                or [int(p) for p in percents] != sorted({int(p) for p in percents})):
            raise SpecError(f"rollout stages {self.stages!r}: 'shadow', then increasing "
                            "percents ending at '100'")
        check_limit(is_number(self.min_dwell_hours) and self.min_dwell_hours >= 0, "rollout.min_dwell_hours",
               self.min_dwell_hours, "a number >= 0 (hours)")
        check_limit(is_number(self.max_regression) and 0 < self.max_regression < 1,
               "rollout.max_regression", self.max_regression, "a relative drop in (0, 1)")
        check_limit(is_number(self.z) and self.z > 0, "rollout.z", self.z, "a number > 0")
        for name in ("min_arm_labeled", "min_arm_positives"):
            value = getattr(self, name)
            check_limit(is_int(value) and value >= 1, f"rollout.{name}", value, "an integer >= 1")
        check_limit(isinstance(self.salt, str) and bool(self.salt), "rollout.salt", self.salt,
               "a non-empty string")
