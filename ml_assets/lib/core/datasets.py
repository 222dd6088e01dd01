"""Dataset specs: the domain as configuration. Nothing in ``lib/`` knows about fraud."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ml_assets.lib.core.identifiers import SpecError, check_identifier
from ml_assets.lib.features.definitions import (
    Categorical,
    FeatureDef,
    feature_schema_version,
    max_lookback,
    validate_features,
)
from ml_assets.lib.monitoring.business import BusinessMetric

# The shadow checklist's items (lib/release/shadow.py), the only names a hard limit can take.
SHADOW_CHECKS = ("shadow_duration", "error_rate", "nan_inf_rate", "disagreement_rate",
                 "score_psi", "rank_correlation", "offline_online_decision_rate",
                 "offline_online_lift", "latency_p99_ms", "edge_cases")


def _num(value: object) -> bool:
    """A finite real number (not a bool, not NaN)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check(ok: bool, field: str, value: object, limit: str) -> None:
    """Refuse a value a later stage cannot run with, at construction, naming field and limit."""
    if not ok:
        raise SpecError(f"{field} = {value!r} is refused: {limit}")


@dataclass(frozen=True)
class Attribute:
    """A raw event column besides id, timestamp and entity keys, with its contract."""

    name: str
    kind: str  # "numeric" | "categorical"
    nullable: bool = False
    min_value: float | None = None
    max_value: float | None = None

    def __post_init__(self) -> None:
        # The ingest contract checks every row against these bounds: bounds that no value can
        # meet would quarantine every row and block every hour.
        bounds = [v for v in (self.min_value, self.max_value) if v is not None]
        _check(all(_num(v) for v in bounds) and (len(bounds) < 2 or bounds[0] <= bounds[1]),
               f"attribute {self.name!r} min_value/max_value", (self.min_value, self.max_value),
               "finite numbers with min_value <= max_value")
        _check(not bounds or self.kind == "numeric", f"attribute {self.name!r} min_value/max_value",
               (self.min_value, self.max_value), "bounds apply to numeric attributes only")


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
        _check(_int(self.seed) and 0 <= self.seed < 2**32, "model.seed", self.seed,
               "an integer in [0, 2**32) (numpy and scikit-learn seeds)")
        _check(_int(self.max_iter) and self.max_iter >= 1, "model.max_iter", self.max_iter,
               "an integer >= 1")
        _check(_num(self.learning_rate) and self.learning_rate > 0, "model.learning_rate",
               self.learning_rate, "a number > 0")
        _check(_int(self.max_leaf_nodes) and self.max_leaf_nodes >= 2, "model.max_leaf_nodes",
               self.max_leaf_nodes, "an integer >= 2 (HistGradientBoosting)")
        _check(_num(self.l2_regularization) and self.l2_regularization >= 0,
               "model.l2_regularization", self.l2_regularization, "a number >= 0")
        _check(_num(self.decision_threshold) and 0 < self.decision_threshold < 1,
               "model.decision_threshold", self.decision_threshold,
               "a score strictly between 0 and 1 (0 acts on every event, 1 on none)")
        fr = self.split_fractions
        _check(isinstance(fr, tuple) and len(fr) == 2 and all(_num(f) and f > 0 for f in fr)
               and sum(fr) < 1, "model.split_fractions", fr,
               "(train, validation) shares, each > 0, summing to < 1 (test is the rest)")
        _check(isinstance(self.split_salt, str) and bool(self.split_salt), "model.split_salt",
               self.split_salt, "a non-empty string")
        _check(_int(self.training_window_days) and self.training_window_days >= 1,
               "model.training_window_days", self.training_window_days, "an integer >= 1 (days)")
        _check(_int(self.frozen_reference_rows) and self.frozen_reference_rows >= 1,
               "model.frozen_reference_rows", self.frozen_reference_rows, "an integer >= 1")


@dataclass(frozen=True)
class MonitoringConfig:
    """Drift, prediction-shift and delayed-evaluation thresholds (see ``lib/monitoring/drift.py`` and
    ``lib/monitoring/evaluation.py``)."""

    psi_warn: float = 0.1
    psi_error: float = 0.25
    psi_bins: int = 10
    noise_margin: float = 2.0  # error threshold >= this times a feature's clean day-to-day PSI
    prediction_psi_warn: float = 0.1
    prediction_psi_error: float = 0.25
    baseline_days: int = 7
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
        for warn, error in [("psi_warn", "psi_error"),
                            ("prediction_psi_warn", "prediction_psi_error")]:
            lo, hi = getattr(self, warn), getattr(self, error)
            _check(_num(lo) and _num(hi) and 0 < lo <= hi, f"monitoring.{warn}", (lo, hi),
                   f"{warn} and {error} must be > 0 with {warn} <= {error}")
        _check(_num(self.auc_drop_warn) and _num(self.auc_drop_error)
               and 0 <= self.auc_drop_warn <= self.auc_drop_error, "monitoring.auc_drop_warn",
               (self.auc_drop_warn, self.auc_drop_error),
               "auc_drop_warn and auc_drop_error must be >= 0 with warn <= error")
        _check(_num(self.early_warn_p) and _num(self.early_error_p)
               and 0 < self.early_error_p <= self.early_warn_p < 1, "monitoring.early_warn_p",
               (self.early_warn_p, self.early_error_p),
               "p-values in (0, 1) with early_error_p <= early_warn_p")
        _check(_int(self.psi_bins) and self.psi_bins >= 2, "monitoring.psi_bins", self.psi_bins,
               "an integer >= 2 (PSI compares shares across bins)")
        _check(_num(self.noise_margin) and self.noise_margin > 0, "monitoring.noise_margin",
               self.noise_margin, "a number > 0")
        _check(_int(self.label_maturity_days) and self.label_maturity_days >= 0,
               "monitoring.label_maturity_days", self.label_maturity_days, "an integer >= 0 (days)")
        _check(_num(self.min_label_coverage) and 0 < self.min_label_coverage <= 1,
               "monitoring.min_label_coverage", self.min_label_coverage, "a share in (0, 1]")
        for name in ("baseline_days", "min_positives", "calibration_days", "early_label_days",
                     "early_reference_days", "early_min_count"):
            value = getattr(self, name)
            _check(_int(value) and value >= 1, f"monitoring.{name}", value, "an integer >= 1")


@dataclass(frozen=True)
class ShadowConfig:
    """Promotion-gate thresholds for a challenger in shadow (``lib/release/shadow.py``).

    Rates and shares are fractions of events in [0, 1]; PSI is unitless (population stability
    index over the champion's score bins); latency in milliseconds.
    """

    min_days: float = 7.0  # minimum shadow duration, in days of data
    max_disagreement: float = 0.30  # share of events whose decisions differ
    max_score_psi: float = 0.25  # PSI of challenger scores against champion score bins
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
            _check(_num(value) and lo <= value <= hi, f"shadow.{name}", value,
                   f"a number in [{lo}, {hi}]")
        for name in ("max_score_psi", "max_latency_p99_ms"):
            value = getattr(self, name)
            _check(_num(value) and value > 0, f"shadow.{name}", value, "a number > 0")
        for name in ("min_labeled_positives", "latency_samples"):
            value = getattr(self, name)
            _check(_int(value) and value >= 1, f"shadow.{name}", value, "an integer >= 1")
        # An unknown name would never pause anything: fail closed at construction.
        _check(isinstance(self.hard_limits, tuple) and set(self.hard_limits) <= set(SHADOW_CHECKS),
               "shadow.hard_limits", self.hard_limits, f"names among {SHADOW_CHECKS}")


@dataclass(frozen=True)
class RolloutConfig:
    """Staged-rollout policy of a challenger (``lib/release/rollout.py``).

    ``stages`` are percents of entities (by stable hash) after ``"shadow"``; the last one
    promotes. Dwell in hours of scored data; ``max_regression`` is a relative drop of the
    business metric per 1k events, which pauses only when also beyond ``z`` standard errors.
    """

    min_dwell_hours: float = 24.0
    max_regression: float = 0.05  # relative drop of the business metric that pauses
    z: float = 2.0  # ... when also beyond z standard errors
    min_arm_labeled: int = 200  # labeled events per arm before the comparison can decide
    min_arm_positives: int = 5
    hold_unmeasured_from: int = 50  # from this percent on, advance only on a measurement
    salt: str = "rollout-v1"
    stages: tuple[str, ...] = ("shadow", "1", "5", "25", "50", "100")

    def __post_init__(self) -> None:
        percents = self.stages[1:]
        if (self.stages[:1] != ("shadow",) or not percents or percents[-1] != "100"
                or not all(p.isdigit() for p in percents)
                or [int(p) for p in percents] != sorted({int(p) for p in percents})):
            raise SpecError(f"rollout stages {self.stages!r}: 'shadow', then increasing "
                            "percents ending at '100'")
        _check(_num(self.min_dwell_hours) and self.min_dwell_hours >= 0, "rollout.min_dwell_hours",
               self.min_dwell_hours, "a number >= 0 (hours)")
        _check(_num(self.max_regression) and 0 < self.max_regression < 1,
               "rollout.max_regression", self.max_regression, "a relative drop in (0, 1)")
        _check(_num(self.z) and self.z > 0, "rollout.z", self.z, "a number > 0")
        for name in ("min_arm_labeled", "min_arm_positives"):
            value = getattr(self, name)
            _check(_int(value) and value >= 1, f"rollout.{name}", value, "an integer >= 1")
        _check(_int(self.hold_unmeasured_from) and 1 <= self.hold_unmeasured_from <= 100,
               "rollout.hold_unmeasured_from", self.hold_unmeasured_from, "a percent in [1, 100]")
        _check(isinstance(self.salt, str) and bool(self.salt), "rollout.salt", self.salt,
               "a non-empty string")


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset and its model: event columns, label, features and every policy, as configuration.

    Parameters
    ----------
    name, model_name : str
        Identifiers of the dataset and of its registered model.
    event_id, event_ts, label, label_ts : str
        Column names; ``event_ts``/``label_ts`` are UTC timestamps.
    entity_keys : tuple of str
        Columns identifying the entity (e.g. card, merchant) features aggregate over.
    attributes : tuple of Attribute
        Raw event columns besides id, timestamp and entity keys.
    features : tuple of FeatureDef
    start : datetime
        First event time; timezone-aware (UTC).
    owner : str
    id_type : {"int64", "string"}
        The stored type of ``event_id`` and of every entity key (``lib/ingest/contracts.py``).
    model, monitoring, shadow, rollout : ModelConfig, MonitoringConfig, ShadowConfig, RolloutConfig
    business_metric : BusinessMetric, optional
    early_reports : bool
        Whether a daily feed of early positive reports lands (``landing/reports/``).

    Raises
    ------
    SpecError
        An identifier is invalid, an attribute kind or ``id_type`` is unknown, a column is declared
        twice, ``start`` is naive, a feature is invalid (``validate_features``), or a value is
        outside a limit a later stage has (no feature, a feature named like a key column, a
        label column clashing with an event column, an empty owner, a business-metric value
        column that is not numeric); the config classes check their own limits likewise.
    """
    name: str
    model_name: str
    event_id: str
    event_ts: str
    entity_keys: tuple[str, ...]
    attributes: tuple[Attribute, ...]
    label: str
    label_ts: str
    features: tuple[FeatureDef, ...]
    start: datetime
    owner: str
    id_type: str = "int64"  # "int64" | "string"
    model: ModelConfig = field(default_factory=ModelConfig)
    description: str = ""
    business_metric: BusinessMetric | None = None
    # A daily feed of early positive reports (landing/reports/) watched by early_label_watch.
    early_reports: bool = False
    monitoring: MonitoringConfig = field(default_factory=MonitoringConfig)
    # Release policy: the shadow promotion gate and the staged rollout, beside model and
    # monitoring config so a dataset can tune them without code.
    shadow: ShadowConfig = field(default_factory=ShadowConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)

    def __post_init__(self) -> None:
        check_identifier(self.name, "dataset name")
        check_identifier(self.model_name, "model name")
        for col, what in [(self.event_id, "event_id column"), (self.event_ts, "event_ts column"),
                          (self.label, "label column"), (self.label_ts, "label_ts column")]:
            check_identifier(col, what)
        for key in self.entity_keys:
            check_identifier(key, "entity key")
        for attr in self.attributes:
            check_identifier(attr.name, "attribute")
            if attr.kind not in ("numeric", "categorical"):
                raise SpecError(f"attribute {attr.name!r}: kind {attr.kind!r} is not "
                                "'numeric' or 'categorical'")
        if self.id_type not in ("int64", "string"):
            raise SpecError(f"id_type {self.id_type!r} is not 'int64' or 'string'")
        names = [self.event_id, self.event_ts, *self.entity_keys, *(a.name for a in self.attributes)]
        dupes = {n for n in names if names.count(n) > 1}
        if dupes:
            raise SpecError(f"dataset {self.name!r}: column(s) {sorted(dupes)} declared twice")
        if self.start.tzinfo is None:
            raise SpecError(f"dataset {self.name!r}: start must be timezone-aware (UTC)")
        validate_features(
            self.features,
            numeric_columns=self.numeric_attributes,
            categorical_columns=self.categorical_attributes,
            entity_columns=set(self.entity_keys),
        )
        self._check_stages()

    def _check_stages(self) -> None:
        """Limits that training, the feature tables and monitoring need, checked here so an
        accepted spec runs end to end."""
        _check(isinstance(self.owner, str) and bool(self.owner.strip()), "owner", self.owner,
               "a non-empty string (asset owner)")
        _check(bool(self.features), "features", self.features,
               "at least one feature (the model needs an input)")
        # Label columns sit beside the event columns in training sets and evaluations.
        taken = {*self.event_columns, self.label}
        _check(self.label not in self.event_columns, "label", self.label,
               "a column name not used by the events")
        _check(self.label_ts not in taken, "label_ts", self.label_ts,
               "a column name not used by the events or the label")
        # Feature tables carry id, timestamp, entity keys and labels beside the features.
        keys = {self.event_id, self.event_ts, *self.entity_keys, self.label, self.label_ts}
        for f in self.features:
            _check(f.name not in keys, f"feature {f.name!r}", f.name,
                   "a feature name must not be the event id, timestamp, an entity key or a "
                   "label column (the feature table carries those)")
        m = self.business_metric
        if m is not None:
            _check(m.value_column is None or m.value_column in self.numeric_attributes,
                   "business_metric.value_column", m.value_column, "a numeric attribute or None")
            _check(_num(m.max_decision_rate) and 0 < m.max_decision_rate <= 1,
                   "business_metric.max_decision_rate", m.max_decision_rate, "a share in (0, 1]")
            _check(_num(m.decision_rate_change) and m.decision_rate_change > 0,
                   "business_metric.decision_rate_change", m.decision_rate_change,
                   "a relative change > 0")

    @property
    def numeric_attributes(self) -> set[str]:
        """Names of the numeric attributes."""
        return {a.name for a in self.attributes if a.kind == "numeric"}

    @property
    def categorical_attributes(self) -> set[str]:
        """Names of the categorical attributes."""
        return {a.name for a in self.attributes if a.kind == "categorical"}

    @property
    def event_columns(self) -> list[str]:
        """Columns of a raw event in order: id, timestamp, entity keys, attributes."""
        return [self.event_id, self.event_ts, *self.entity_keys, *(a.name for a in self.attributes)]

    @property
    def feature_names(self) -> list[str]:
        """Feature names in model-input order."""
        return [f.name for f in self.features]

    @property
    def categorical_feature_mask(self) -> list[bool]:
        """Per feature in model-input order, whether it is categorical."""
        return [isinstance(f, Categorical) for f in self.features]

    @property
    def schema_version(self) -> str:
        """Fingerprint of the feature definitions (16 hex chars); changes when any feature changes."""
        return feature_schema_version(self.features)

    @property
    def lookback(self):
        """Longest window any feature looks back over (``timedelta``; zero without windows)."""
        return max_lookback(self.features)

    @property
    def start_utc(self) -> datetime:
        """``start`` converted to UTC."""
        return self.start.astimezone(UTC)
