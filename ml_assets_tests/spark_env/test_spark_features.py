"""The Spark SQL dialect computes the same features as DuckDB from the same Parquet files: counts,
sums (exact DECIMAL(38, 9)), max, distinct, time since previous, label aggregates under late
availability, categoricals and ratios to the last bit; a mean (and a ratio over it) within the
documented ``engine_parity.MEAN_RTOL``. One local JVM for the session (``spark`` fixture)."""

from datetime import timedelta

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ml_assets.lib.core.lake import connect
from ml_assets.lib.features.engine_parity import engine_differences
from ml_assets.lib.features.spark_sql import spark_features, spark_session
from ml_assets.lib.features.sql import compute_features, labels_with_entities_sql
from ml_assets.scenarios.synthetic import SyntheticConfig, generate_all
from ml_assets.specs.fraud import FRAUD_SPEC
from ml_assets_tests.fixtures.example_specs import example_specs
from ml_assets_tests.lib.features.test_prefix_sums import T0, _tickets

pytestmark = pytest.mark.spark


@pytest.fixture(scope="session")
def spark():
    """One local Spark for the test session; fails (never skips) naming what is missing."""
    session = spark_session("local[2]", app="ml_assets_tests")
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def assert_spark_equals_duckdb(spark, spec, tmp_path, events: pa.Table, labels: pa.Table | None,
                               start, end) -> pa.Table:
    """Write the inputs as Parquet, compute on both engines, compare value by value."""
    ev_file = tmp_path / "events.parquet"
    pq.write_table(events, ev_file)
    label_files = []
    con = connect()
    lb = None
    if labels is not None:
        pq.write_table(labels, lb_file := tmp_path / "labels.parquet")
        label_files = [str(lb_file)]
        lb = (f"(SELECT * FROM read_parquet('{lb_file}') "
              f"WHERE label_ts < '{end.isoformat()}' AND available_at < '{end.isoformat()}')")
    want = compute_features(con, spec, f"read_parquet('{ev_file}')", lb, start, end)
    got = spark_features(spark, spec, [str(ev_file)], label_files, start, end)
    assert got.num_rows == len(want) > 0
    assert got.column(spec.event_id).to_pylist() == want[spec.event_id].tolist()  # (ts, id) order
    assert engine_differences(spec, got, pa.Table.from_pandas(want, preserve_index=False)) == []
    return got


def test_fraud_spec_on_spark_equals_duckdb(spark, tmp_path):
    cfg = SyntheticConfig(days=35, scale=0.005)
    events, labels, _ = generate_all(cfg)
    con = connect()
    con.register("events_t", events)
    con.register("labels_t", labels)
    # availability: most labels a day after label_ts, some 40 days late (past the 30d windows:
    # the late-label correction), a few at the same instant
    lb = con.sql(
        f"SELECT *, CASE WHEN hash(card_id) % 7 = 0 THEN label_ts + INTERVAL 40 DAY"
        f" WHEN hash(card_id) % 7 = 1 THEN label_ts ELSE label_ts + INTERVAL 1 DAY END"
        f" AS available_at FROM ({labels_with_entities_sql(FRAUD_SPEC, 'events_t', 'labels_t')})"
    ).to_arrow_table()
    got = assert_spark_equals_duckdb(spark, FRAUD_SPEC, tmp_path, con.sql(
        "SELECT * FROM events_t").to_arrow_table(), lb, cfg.start + timedelta(days=25), cfg.end)
    positives = got.column("card_chargebacks_30d").to_numpy(zero_copy_only=False)
    assert np.nansum(positives) > 0  # label aggregates were exercised, not all zero


def test_support_tickets_spec_on_spark_equals_duckdb(spark, tmp_path):
    tickets = example_specs()["support_tickets"]
    assert_spark_equals_duckdb(spark, tickets, tmp_path, pa.Table.from_pandas(
        _tickets(300, 1), preserve_index=False), None, T0, T0 + timedelta(days=20))


def test_a_missing_java_fails_naming_it(monkeypatch):
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(RuntimeError, match="Java is not installed"):
        spark_session("local[1]")
