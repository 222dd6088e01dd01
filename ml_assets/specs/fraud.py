"""The card-fraud demo: one dataset spec among possible many."""

from ml_assets.features import feature_definitions
from ml_assets.lib.core.datasets import Attribute, DatasetSpec
from ml_assets.lib.monitoring.business import BusinessMetric
from ml_assets.scenarios.synthetic import DEFAULT_START

FRAUD_SPEC = DatasetSpec(
    name="card_fraud",
    model_name="fraud",
    description="Card transactions scored for fraud; chargebacks arrive 7-60 days later.",
    event_id="event_id",
    event_ts="event_ts",
    entity_keys=("card_id", "merchant_id"),
    attributes=(
        Attribute("amount", "numeric", min_value=0.0, max_value=100_000.0),
        Attribute("merchant_category", "categorical"),
        Attribute("country", "categorical"),
        Attribute("device", "categorical", nullable=True),
        Attribute("distance_km", "numeric", nullable=True, min_value=0.0, max_value=25_000.0),
    ),
    label="label",
    label_ts="label_ts",
    features=feature_definitions,
    start=DEFAULT_START,
    owner="team:fraud-ml",
    # Declining a fraudulent transaction prevents the loss of its amount; declining a good one
    # loses the margin plus goodwill (assumed 10% of the amount) and a $2 support contact.
    business_metric=BusinessMetric(
        name="net_fraud_savings", unit="USD", decision_rate_name="decline_rate",
        description="Fraud losses prevented minus the cost of declined good transactions.",
        value_column="amount", tp_rate=1.0, fp_rate=0.10, fp_fixed=2.0,
        max_decision_rate=0.05, decision_rate_change=0.5, min_value_per_1k=0.0,
        max_missed_value_change=1.0),
    # Cardholder/issuer fraud reports arrive within hours, weeks before the chargeback.
    early_reports=True,
)
