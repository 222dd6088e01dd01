"""Landing contracts: a broken file fails loudly naming file and column; broken rows go to
quarantine with a reason; valid + quarantined always equals what arrived."""

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from ml_assets.lib.core.paths import DataPaths
from ml_assets.lib.ingest.contracts import ContractError
from ml_assets.lib.ingest.landing import ingest_events
from ml_assets.specs.fraud import FRAUD_SPEC
from ml_assets_tests.fixtures.reliability_world import HOUR, NOW, good_events


def land(tmp_path, df: pd.DataFrame) -> DataPaths:
    paths = DataPaths(tmp_path).ensure()
    df.to_parquet(paths.landing_events_file(HOUR), index=False)
    return paths


def ingest(paths):
    valid, quarantined = ingest_events(paths, FRAUD_SPEC, [HOUR], NOW)
    return valid[HOUR].to_pandas(), quarantined


def test_clean_file_passes_whole(tmp_path):
    valid, quarantined = ingest(land(tmp_path, good_events()))
    assert len(valid) == 5 and quarantined.empty
    assert valid["event_ts"].dt.tz is not None


def test_renamed_column_fails_naming_file_and_columns(tmp_path):
    paths = land(tmp_path, good_events().rename(columns={"amount": "amount_usd"}))
    with pytest.raises(ContractError, match=r"2026-07-01T10\.parquet.*\['amount'\] missing.*amount_usd"):
        ingest(paths)


def test_extra_column_fails(tmp_path):
    with pytest.raises(ContractError, match="unexpected column.*surprise"):
        ingest(land(tmp_path, good_events().assign(surprise=1)))


def test_naive_timestamps_fail(tmp_path):
    df = good_events()
    df["event_ts"] = df["event_ts"].dt.tz_localize(None)
    with pytest.raises(ContractError, match="event_ts.*timezone-naive"):
        ingest(land(tmp_path, df))


def test_string_in_numeric_column_is_quarantined_with_reason(tmp_path):
    df = good_events().astype({"amount": "str"})  # e.g. a CSV export typed everything as text
    df.loc[2, "amount"] = "12,50 EUR"
    valid, quarantined = ingest(land(tmp_path, df))
    assert len(valid) == 4 and len(quarantined) == 1
    row = quarantined.iloc[0]
    assert row["row"] == 2 and "amount: not a number" in row["reason"]
    assert "12,50 EUR" in row["record"]  # the original value is kept


def test_nan_where_not_allowed_is_quarantined_but_allowed_nulls_pass(tmp_path):
    df = good_events()
    df.loc[1, "amount"] = np.nan
    df.loc[3, "distance_km"] = np.nan  # nullable in the spec
    df.loc[4, "device"] = None  # nullable in the spec
    valid, quarantined = ingest(land(tmp_path, df))
    assert quarantined["row"].tolist() == [1]
    assert "amount" in quarantined.iloc[0]["reason"]
    assert len(valid) == 4


def test_inf_negative_and_absurd_amounts_are_quarantined(tmp_path):
    df = good_events()
    df.loc[0, "amount"] = np.inf
    df.loc[1, "amount"] = -5.0
    df.loc[2, "amount"] = 1e12
    valid, quarantined = ingest(land(tmp_path, df))
    assert sorted(quarantined["row"]) == [0, 1, 2] and len(valid) == 2


def test_duplicate_ids_keep_the_first_and_quarantine_the_rest(tmp_path):
    df = good_events()
    df.loc[3, "event_id"] = 1
    valid, quarantined = ingest(land(tmp_path, df))
    assert valid["event_id"].tolist() == [1, 2, 3, 5]
    assert "duplicate event_id (first seen in landing/events/2026-07-01T10.parquet row 0)" \
        in quarantined.iloc[0]["reason"]


def test_future_and_out_of_window_timestamps_are_quarantined(tmp_path):
    df = good_events()
    df.loc[0, "event_ts"] = pd.Timestamp(HOUR - timedelta(minutes=1))
    df.loc[1, "event_ts"] = pd.Timestamp(NOW + timedelta(days=1))
    valid, quarantined = ingest(land(tmp_path, df))
    reasons = dict(zip(quarantined["row"], quarantined["reason"], strict=True))
    assert "before the file's time window" in reasons[0]
    assert "in the future" in reasons[1]
    assert len(valid) + len(quarantined) == len(df)


@pytest.mark.parametrize("content,match", [(b"", "empty"), (b"PAR1 not really", "unreadable Parquet")])
def test_empty_and_corrupt_files_fail_clearly(tmp_path, content, match):
    paths = DataPaths(tmp_path).ensure()
    paths.landing_events_file(HOUR).write_bytes(content)
    with pytest.raises(ContractError, match=match):
        ingest(paths)


def test_missing_file_says_what_to_do(tmp_path):
    with pytest.raises(ContractError, match="no landing file"):
        ingest(DataPaths(tmp_path).ensure())
