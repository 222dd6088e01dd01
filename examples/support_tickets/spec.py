"""A second, non-fraud spec: will a support ticket escalate? String ids, one entity, and a
label known days later. It proves ``lib/`` holds no fraud knowledge.

It lives outside the package and is loaded the way a user's spec is::

    ml-assets --spec examples/support_tickets/spec.py status

``spec.toml`` beside it declares the same spec without code.
"""

from datetime import UTC, datetime

from ml_assets.lib.core.datasets import Attribute, DatasetSpec, ModelConfig
from ml_assets.lib.features.definitions import (
    Categorical,
    LabelAgg,
    Numeric,
    Ratio,
    TimeSincePrevious,
    WindowAgg,
)
from ml_assets.lib.monitoring.business import BusinessMetric

SPEC = DatasetSpec(
    name="support_tickets",
    model_name="escalation",
    description="Support tickets; label = escalated to engineering, known days later.",
    event_id="ticket_id",
    event_ts="opened_at",
    entity_keys=("customer_id",),
    attributes=(
        Attribute("priority", "categorical"),
        Attribute("message_chars", "numeric", min_value=0, max_value=1_000_000),
    ),
    label="escalated",
    label_ts="resolved_at",
    features=(
        Numeric("message_chars", column="message_chars"),
        Categorical("priority", column="priority", vocabulary=("low", "normal", "high")),
        WindowAgg("customer_tickets_7d", entity="customer_id", agg="count", window="7d"),
        WindowAgg("customer_chars_mean_7d", entity="customer_id", agg="mean",
                  column="message_chars", window="7d"),
        TimeSincePrevious("customer_seconds_since_prev", entity="customer_id", within="7d"),
        LabelAgg("customer_escalations_14d", entity="customer_id", agg="positives", window="14d"),
        Ratio("chars_vs_customer_mean", numerator="message_chars",
              denominator="customer_chars_mean_7d"),
    ),
    start=datetime(2026, 3, 1, tzinfo=UTC),
    owner="team:support-analytics",
    id_type="string",
    model=ModelConfig(seed=11, max_iter=30, training_window_days=10, frozen_reference_rows=500),
    # Routing a ticket to engineering early saves ~3 engineer-hours when it would have
    # escalated anyway and wastes half an hour when it would not.
    business_metric=BusinessMetric(
        name="engineer_hours_saved", unit="hours", decision_rate_name="early_escalation_rate",
        description="Hours saved by early escalation minus hours wasted on needless ones.",
        tp_fixed=3.0, fp_fixed=0.5, max_decision_rate=0.3, min_value_per_1k=0.0),
)
