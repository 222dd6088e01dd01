"""Contract refusals name types in plain words ("number", "string", "integer", "timestamp"),
never numpy/Arrow names or reprs, and still name the file, field or column."""

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from ml_assets.lib.core.type_names import plain_type, plain_value_type
from ml_assets.lib.docs.interface_contract import RequestError, load_contract
from ml_assets.lib.features.contract import feature_contract_problems
from ml_assets.lib.ingest.contracts import NUMBER, ContractError, canonical_column
from ml_assets_tests.fixtures.serving_world import SPEC

NUMPY_WORDS = ("dtype(", "numpy", "<class", "float64", "int64", "object")


@pytest.mark.parametrize("dtype,plain", [
    ("int64", "integer"), (np.dtype("float32"), "number"), ("O", "text or mixed values"),
    ("str", "string"), ("datetime64[us, UTC]", "timestamp"), ("bool", "boolean"),
    (pa.float64(), "number"), (pa.int32(), "integer"), (pa.large_string(), "string"),
    (pa.dictionary(pa.int8(), pa.string()), "string"), (pa.timestamp("ns"), "timestamp"),
    (pa.date32(), "date")])
def test_plain_type_names(dtype, plain):
    assert plain_type(dtype) == plain


@pytest.mark.parametrize("value,plain", [
    (np.int64(3), "an integer"), (np.float64(1.5), "a number"), (np.bool_(True), "true/false"),
    ("3", "a string"), ([3], "a list"), ({}, "an object"), (True, "true/false")])
def test_plain_value_type_names(value, plain):
    assert plain_value_type(value) == plain


def test_a_landing_column_of_the_wrong_type_is_named_plainly_with_file_and_column():
    col = pa.chunked_array([pa.array(["12.5"], pa.binary())])
    with pytest.raises(ContractError) as err:
        canonical_column(col, NUMBER, "int64", "amount", "landing/events/x.parquet", [])
    assert str(err.value).startswith("landing/events/x.parquet: column 'amount' has type "
                                     "binary, expected a number.")


def test_a_feature_column_of_the_wrong_type_is_named_plainly():
    t = pd.Timestamp("2026-07-01 10:00", tz="UTC")
    df = pd.DataFrame({SPEC.event_id: [1], SPEC.event_ts: pd.Series([t]).astype("datetime64[us, UTC]"),
                       "card_id": [1], "merchant_id": [1], **{n: [1.0] for n in SPEC.feature_names}})
    problems = feature_contract_problems(
        df.assign(amount=["x"], distance_km=np.array([3], dtype="int64")), SPEC, limit=50)
    assert "amount: expected number, got string" in problems
    assert "distance_km: expected number, got integer" in problems
    assert not any(w in p for p in problems for w in NUMPY_WORDS), problems


@pytest.mark.parametrize("field,value,message", [
    ("amount", "12.5", "amount must be a number, got a string"),
    ("amount", [12.5], "amount must be a number, got a list"),
    ("card_id", np.float64(7.0), "card_id must be an integer, got a number"),
    ("merchant_category", 3, "merchant_category must be a string, got an integer")])
def test_a_request_field_of_the_wrong_type_is_named_plainly(field, value, message):
    contract = load_contract(SPEC)
    event = {"event_id": 1, "event_ts": "2026-07-01T10:00:00+00:00", "card_id": 7,
             "merchant_id": 3, "amount": 12.5, "merchant_category": "travel", "country": "US",
             "device": "web", "distance_km": 1.0, field: value}
    with pytest.raises(RequestError) as err:
        contract.validate_event(event, now=datetime(2026, 7, 2, tzinfo=UTC))
    assert message in str(err.value) and err.value.field == field
