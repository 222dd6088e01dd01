"""The card-fraud demo: one dataset spec among possible many."""

from ml_assets.features import feature_definitions
from ml_assets.lib.datasets import Attribute, DatasetSpec
from ml_assets.lib.synthetic import DEFAULT_START

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
)
