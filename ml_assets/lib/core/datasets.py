"""Dataset specs: the domain as configuration. Nothing in ``lib/`` knows about fraud.

The policies a spec carries (model, monitoring, shadow, rollout) are in ``policies.py``."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from ml_assets.lib.core.identifiers import SpecError, check_identifier
from ml_assets.lib.core.policies import (
    ModelConfig,
    MonitoringConfig,
    RolloutConfig,
    ShadowConfig,
    check_limit,
    is_int,
    is_number,
)
from ml_assets.lib.features.definitions import (
    Categorical,
    FeatureDef,
    feature_schema_version,
    feature_warm_up,
    max_lookback,
    validate_features,
)
from ml_assets.lib.monitoring.business import BusinessMetric
from ml_assets.lib.monitoring.labelable import check_unlabelable_when

# A spec's partition_grain and the length of one event-side partition.
PARTITION_STEPS = {"hourly": timedelta(hours=1), "daily": timedelta(days=1)}

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
        check_limit(all(is_number(v) for v in bounds) and (len(bounds) < 2 or bounds[0] <= bounds[1]),
               f"attribute {self.name!r} min_value/max_value", (self.min_value, self.max_value),
               "finite numbers with min_value <= max_value")
        check_limit(not bounds or self.kind == "numeric", f"attribute {self.name!r} min_value/max_value",
               (self.min_value, self.max_value), "bounds apply to numeric attributes only")


@dataclass(frozen=True)
class SpecOrigin:
    """Where a spec was loaded from (``ml_assets.specs.loading.load_spec``), for the model card.

    Parameters
    ----------
    ref : str
        The reference that loads it again: an absolute ``path.py[:NAME]`` or ``path.toml``, or
        ``package.module:NAME``; with ``@YYYY-MM-DD`` appended when the spec's start was moved
        to that UTC day (the demo, placed where its data directory's ``demo.json`` says).
    sha256 : str
        SHA-256 (hex) of the source file's bytes (the ``.py``/``.toml`` file, or the module's).
    """

    ref: str
    sha256: str

    @property
    def source_ref(self) -> str:
        """``ref`` without its ``@YYYY-MM-DD`` start: what names the source file."""
        return split_start(self.ref)[0]


_START_SUFFIX = re.compile(r"@(\d{4}-\d{2}-\d{2})$")


def split_start(ref: str) -> tuple[str, str | None]:
    """``("REF", "YYYY-MM-DD")`` for ``"REF@YYYY-MM-DD"``, else ``(ref, None)``; an ``@``
    elsewhere (a path may hold one) is part of the reference. The date is not validated."""
    match = _START_SUFFIX.search(ref)
    return (ref[:match.start()], match.group(1)) if match else (ref, None)


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
    label_ingest_delay : timedelta
        How long after the end of its day a daily label (or early-report) file is ingested
        (``daily_labels_schedule``: 02:30 for the previous day). A label file is available
        no earlier than the end of its day plus this delay (``lib/ingest/landing.py``).
    unlabelable_when : tuple of (column, operator, value), optional
        Events never labelled by design (e.g. cancelled before their outcome exists): all
        conditions hold (AND) on the raw event's attribute columns, operators in
        ``labelable.OPERATORS`` (e.g. ``(("status", "in", ("cancelled", "voided")),)``). They
        are left out of label coverage, so they cannot hold a day ``pending`` forever.
    label_timeout_days : int, optional
        An event still without a label this many days after its event time (as seen from the
        label horizon) will not get one: left out of label coverage, never a negative.
    end : datetime, optional
        End (exclusive, timezone-aware) of a historical dataset: partitions stop there and the
        schedules and sensors that follow the clock do not run (nothing more will land). None:
        a live dataset, partitioned up to now.
    nullable_keys : tuple of str
        Entity keys an event may lack (e.g. a guest checkout has no customer id). Such an event
        is scored with an empty history for that key and still counts in every other key's
        windows; a null in any other key is quarantined. Not the first entity key (the rollout
        arm key, ``release/arms.py``).
    landing_completeness : {"later_file", "marker"}
        When a period with no landing file counts as empty rather than not yet landed:
        ``later_file`` (default) once a file of a later period has landed; ``marker`` once
        a ``_SUCCESS`` marker covers it (``lib/ingest/landing_layout.py``). Landing files may
        be hourly (``YYYY-MM-DDTHH.parquet``) or daily (``YYYY-MM-DD.parquet``).
    partition_grain : {"hourly", "daily"}
        The partition length of the event-side tables (``raw_events``, ``event_features``,
        ``batch_scores``) and of batch scoring's schedule. Each partition costs Dagster a
        materialization and its checks, so a feed that lands daily is cheaper daily (weeks
        of history: tens of partitions instead of hundreds).
    warm_up : timedelta, optional
        How long after ``start`` every feature is in steady state; training windows and drift
        reference profiles start after it when the history allows. Default: derived from the
        features (``definitions.feature_warm_up``: the longest window, plus
        ``monitoring.label_maturity_days`` for label features). ``timedelta(0)`` declares that
        the data before ``start`` was already warm (e.g. a backfilled history).
    origin : SpecOrigin, optional
        Set by the loader; not part of the spec's identity (left out of ``==``).
        ``dataclasses.replace`` keeps it, so a spec derived in code still names its file.

    Raises
    ------
    SpecError
        An identifier is invalid, an attribute kind or ``id_type`` is unknown, a column is declared
        twice, ``start`` is naive, a feature is invalid (``validate_features``), or a value is
        outside a limit a later stage has (no feature, a feature named like a key column, a
        label column clashing with an event column, an empty owner, a business-metric value
        column that is not numeric, an ``unlabelable_when`` condition on a column that is not an
        attribute or with an unknown operator or mistyped value, a ``label_timeout_days`` below
        1); the config classes check their own limits likewise.
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
    label_ingest_delay: timedelta = timedelta(hours=2, minutes=30)
    monitoring: MonitoringConfig = field(default_factory=MonitoringConfig)
    # Release policy: the shadow promotion gate and the staged rollout, beside model and
    # monitoring config so a dataset can tune them without code.
    shadow: ShadowConfig = field(default_factory=ShadowConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    # Events a label is not expected for (lib/monitoring/labelable.py): by filter or by age.
    unlabelable_when: tuple[tuple[str, str, object], ...] = ()
    label_timeout_days: int | None = None
    warm_up: timedelta | None = None
    end: datetime | None = None
    nullable_keys: tuple[str, ...] = ()
    landing_completeness: str = "later_file"  # "later_file" | "marker"
    partition_grain: str = "hourly"  # "hourly" | "daily"
    # Provenance, not configuration: two files declaring the same spec load to equal specs.
    origin: SpecOrigin | None = field(default=None, compare=False, repr=False)

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
        if self.end is not None and (self.end.tzinfo is None or self.end <= self.start):
            raise SpecError(f"dataset {self.name!r}: end must be timezone-aware (UTC) and after "
                            f"start, got {self.end!r}")
        stray = sorted(set(self.nullable_keys) - set(self.entity_keys))
        if stray:
            raise SpecError(f"dataset {self.name!r}: nullable_keys {stray} are not entity keys "
                            f"({list(self.entity_keys)})")
        if self.entity_keys and self.entity_keys[0] in self.nullable_keys:
            raise SpecError(f"dataset {self.name!r}: the first entity key "
                            f"({self.entity_keys[0]!r}) decides rollout arms and cannot be "
                            "nullable; list a key every event has first")
        if self.landing_completeness not in ("later_file", "marker"):
            raise SpecError(f"dataset {self.name!r}: landing_completeness "
                            f"{self.landing_completeness!r} is not 'later_file' or 'marker'")
        if self.partition_grain not in PARTITION_STEPS:
            raise SpecError(f"dataset {self.name!r}: partition_grain {self.partition_grain!r} "
                            f"is not 'hourly' or 'daily'")
        if self.label_ingest_delay < timedelta(0):
            raise SpecError(f"dataset {self.name!r}: label_ingest_delay must not be negative")
        if self.warm_up is not None and (not isinstance(self.warm_up, timedelta)
                                         or self.warm_up < timedelta(0)):
            raise SpecError(f"dataset {self.name!r}: warm_up must be a timedelta >= 0 or None "
                            f"(derived from the features), got {self.warm_up!r}")
        validate_features(
            self.features,
            numeric_columns=self.numeric_attributes,
            categorical_columns=self.categorical_attributes,
            entity_columns=set(self.entity_keys),
        )
        unknown = sorted({f for f, _ in self.monitoring.drift_periods} - set(self.feature_names))
        if unknown:
            raise SpecError(f"dataset {self.name!r}: monitoring.drift_periods names {unknown}, "
                            f"which are not features of the spec")
        self._check_stages()

    def _check_stages(self) -> None:
        """Limits that training, the feature tables and monitoring need, checked here so an
        accepted spec runs end to end."""
        check_limit(isinstance(self.owner, str) and bool(self.owner.strip()), "owner", self.owner,
               "a non-empty string (asset owner)")
        check_limit(bool(self.features), "features", self.features,
               "at least one feature (the model needs an input)")
        # Label columns sit beside the event columns in training sets and evaluations.
        taken = {*self.event_columns, self.label}
        check_limit(self.label not in self.event_columns, "label", self.label,
               "a column name not used by the events")
        check_limit(self.label_ts not in taken, "label_ts", self.label_ts,
               "a column name not used by the events or the label")
        # Feature tables carry id, timestamp, entity keys and labels beside the features.
        keys = {self.event_id, self.event_ts, *self.entity_keys, self.label, self.label_ts}
        for f in self.features:
            check_limit(f.name not in keys, f"feature {f.name!r}", f.name,
                   "a feature name must not be the event id, timestamp, an entity key or a "
                   "label column (the feature table carries those)")
        m = self.business_metric
        if m is not None:
            check_limit(m.value_column is None or m.value_column in self.numeric_attributes,
                   "business_metric.value_column", m.value_column, "a numeric attribute or None")
            check_limit(is_number(m.max_decision_rate) and 0 < m.max_decision_rate <= 1,
                   "business_metric.max_decision_rate", m.max_decision_rate, "a share in (0, 1]")
            check_limit(is_number(m.decision_rate_change) and m.decision_rate_change > 0,
                   "business_metric.decision_rate_change", m.decision_rate_change,
                   "a relative change > 0")
        check_unlabelable_when(self.unlabelable_when, {a.name: a.kind for a in self.attributes},
                               {a.name for a in self.attributes if a.nullable})
        check_limit(self.label_timeout_days is None or (is_int(self.label_timeout_days)
                                                        and self.label_timeout_days >= 1),
                    "label_timeout_days", self.label_timeout_days, "an integer >= 1 (days) or None")

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

    def starting(self, day: datetime) -> DatasetSpec:
        """This spec with its data starting at UTC midnight of ``day``; a loaded spec's
        ``origin.ref`` then ends in ``@YYYY-MM-DD`` (replacing any earlier start), so the ref
        loads this spec again.

        Raises
        ------
        SpecError
            When ``day`` is not a UTC midnight, or the spec refuses the start (its ``end``
            before it).
        """
        if day.tzinfo is None or day.utcoffset() or day != day.replace(
                hour=0, minute=0, second=0, microsecond=0):
            raise SpecError(f"a spec's moved start must be a UTC midnight, got {day}")
        try:
            moved = replace(self, start=day)
        except (TypeError, ValueError) as exc:
            raise SpecError(f"start {day.date().isoformat()}: {exc}") from exc
        if self.origin is None:
            return moved
        return replace(moved, origin=SpecOrigin(
            f"{self.origin.source_ref}@{day.date().isoformat()}", self.origin.sha256))

    @property
    def end_utc(self) -> datetime | None:
        """``end`` converted to UTC; None for a live dataset."""
        return self.end.astimezone(UTC) if self.end is not None else None

    @property
    def partition_step(self) -> timedelta:
        """The length of one event-side partition (``partition_grain``): an hour or a day."""
        return PARTITION_STEPS[self.partition_grain]

    @property
    def warm_start(self) -> datetime:
        """First time (UTC) at which every feature is in steady state: ``start`` plus
        ``warm_up`` (or the features' derived warm-up, ``definitions.feature_warm_up``)."""
        span = self.warm_up if self.warm_up is not None else feature_warm_up(
            self.features, timedelta(days=self.monitoring.label_maturity_days))
        return self.start_utc + span
