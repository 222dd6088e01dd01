"""The card-fraud demo's feature definitions: declared once, imported by training AND serving.

Each line is one feature. ``lib/features/sql.py`` compiles them to DuckDB SQL for backfills,
training and batch scoring; ``lib/features/online.py`` evaluates the same declarations per
request. Windows are strictly before the event; label features use only labels already known.
"""

from ml_assets.lib.features.definitions import (
    Categorical,
    LabelAgg,
    Numeric,
    Ratio,
    TimeSincePrevious,
    WindowAgg,
)
from ml_assets.scenarios.synthetic import CATEGORIES, COUNTRIES, DEVICES

feature_definitions = (
    Numeric("amount", column="amount"),
    Numeric("distance_km", column="distance_km"),
    Categorical("merchant_category", column="merchant_category", vocabulary=CATEGORIES),
    Categorical("country", column="country", vocabulary=COUNTRIES),
    Categorical("device", column="device", vocabulary=DEVICES),
    WindowAgg("card_tx_count_1h", entity="card_id", agg="count", window="1h"),
    WindowAgg("card_tx_count_24h", entity="card_id", agg="count", window="24h"),
    WindowAgg("card_amount_sum_24h", entity="card_id", agg="sum", column="amount", window="24h"),
    WindowAgg("card_amount_mean_30d", entity="card_id", agg="mean", column="amount", window="30d"),
    WindowAgg("card_amount_max_7d", entity="card_id", agg="max", column="amount", window="7d"),
    WindowAgg("card_distinct_merchants_24h", entity="card_id", agg="distinct",
              column="merchant_id", window="24h"),
    WindowAgg("card_merchant_count_30d", entity=("card_id", "merchant_id"), agg="count",
              window="30d"),
    TimeSincePrevious("card_seconds_since_prev", entity="card_id", within="30d"),
    WindowAgg("merchant_tx_count_24h", entity="merchant_id", agg="count", window="24h"),
    LabelAgg("card_chargebacks_30d", entity="card_id", agg="positives", window="30d"),
    LabelAgg("merchant_fraud_rate_30d", entity="merchant_id", agg="rate", window="30d"),
    Ratio("amount_vs_card_mean_30d", numerator="amount", denominator="card_amount_mean_30d"),
)
