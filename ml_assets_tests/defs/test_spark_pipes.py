"""A feature backfill on Spark, launched as the UI launches it: ``spark_event_features`` over a
day's range starts the Spark driver through Dagster Pipes (a real local-mode JVM), which writes
the lake's partitions; its ``engine_parity`` check compares them with DuckDB's
``event_features``. The comparison's failure modes are exercised on the files it wrote."""

from datetime import timedelta

import pandas as pd
import pytest

from ml_assets.definitions import build_definitions
from ml_assets.defs.partitions import event_range_tags
from ml_assets.lib.core.catalog import EVENT_FEATURES, SPARK_EVENT_FEATURES, Catalog
from ml_assets.lib.features.engine_parity import lake_parity
from ml_assets.lib.features.spark_sql import SPARK_MASTER_ENV
from ml_assets.scenarios.runner import dagster_instance, run
from ml_assets.specs.loading import load_spec
from ml_assets_tests.fixtures.reliability_world import copy_world

pytestmark = pytest.mark.spark


def test_a_spark_backfill_through_pipes_equals_duckdb(fraud_world, tmp_path, monkeypatch):
    monkeypatch.setenv(SPARK_MASTER_ENV, "local[1]")
    spec = load_spec("card_fraud")  # with its origin: the driver loads it by reference
    paths = copy_world(fraud_world, tmp_path / "w")
    lo = fraud_world["end"] - timedelta(days=1)
    hi = fraud_world["end"]
    defs = build_definitions(spec, str(paths.root))
    result = run(defs, dagster_instance(paths), ["spark_event_features"],
                 event_range_tags(spec, lo, hi))
    assert result.success, [e.message for e in result.all_events if e.is_failure]

    catalog = Catalog(paths.lake, spec.partition_grain)
    want_rows = len(catalog.table(EVENT_FEATURES).read(lo, hi))
    events = [e for e in result.get_asset_materialization_events()
              if e.asset_key.to_user_string() == "spark_event_features"]
    assert len(events) == 24  # one per hour of the range, each with its own rows
    rows = {e.partition: e.materialization.metadata["rows"].value for e in events}
    assert sum(rows.values()) == want_rows > 0 and len(set(rows.values())) > 1
    assert events[0].materialization.metadata["spark_master"].value == "local[1]"
    assert len(catalog.table(SPARK_EVENT_FEATURES).files(lo, hi)) == 24
    [check] = result.get_asset_check_evaluations()
    assert check.check_name == "engine_parity" and check.passed, check.description
    assert check.metadata["compared_rows"].value == want_rows  # all of a small day

    # a count one off in one event of one hour is caught and named
    table = catalog.table(SPARK_EVENT_FEATURES)
    hour = lo + timedelta(hours=12)
    frame = pd.read_parquet(table.path(hour))
    name = "card_tx_count_1h"
    frame.loc[frame.index[0], name] += 1
    table.write(hour, frame)
    verdict = lake_parity(catalog, spec, lo, hi)
    assert [d.split(":")[0] for d in verdict["differences"]] == [name]

    # without DuckDB's features of an hour there is nothing to compare against: said, not passed
    catalog.table(EVENT_FEATURES).delete(hour)
    assert lake_parity(catalog, spec, lo, hi)["missing"] == [catalog.table(EVENT_FEATURES).key(hour)]
