"""The engine comparison (no Spark needed): what counts as equal, and what a difference says."""

from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest

from ml_assets.lib.core.identifiers import SpecError
from ml_assets.lib.features.engine_parity import MEAN_RTOL, engine_differences, mean_fed
from ml_assets.lib.features.spark_backfill import pinned_spec, split_by_start
from ml_assets.specs.fraud import FRAUD_SPEC
from ml_assets_tests.fixtures.example_specs import example_specs

SPEC = FRAUD_SPEC


def _table(values: dict, ids=(1, 2, 3)) -> pa.Table:
    cols = {SPEC.event_id: list(ids)}
    cols.update({name: values.get(name, [1.0] * len(ids)) for name in SPEC.feature_names})
    return pa.table(cols)


def test_equal_features_in_any_row_order_have_no_differences():
    base = _table({})
    assert engine_differences(SPEC, base, base.take([2, 0, 1])) == []


def test_an_exact_feature_one_ulp_off_is_named_with_an_example_event():
    exact = next(n for n in SPEC.feature_names if n not in mean_fed(SPEC))
    got = _table({exact: [1.0, 2.0, 3.0]})
    want = _table({exact: [1.0, 2.0, 3.0 + 4.5e-16]})
    [line] = engine_differences(SPEC, got, want)
    assert line.startswith(f"{exact}: 1 of 3") and "event 3" in line


def test_a_null_on_one_side_only_is_a_difference():
    name = SPEC.feature_names[0]
    [line] = engine_differences(SPEC, _table({name: [1.0, None, 3.0]}), _table({}))
    assert line.startswith(f"{name}: ")


def test_a_mean_may_differ_by_the_decimal_rounding_and_no_more():
    tickets = example_specs()["support_tickets"]
    mean = sorted(mean_fed(tickets))[0]  # customer_chars_mean_7d
    ids = pa.array([1, 2])

    def t(v):
        return pa.table({tickets.event_id: ids, **{
            n: [v, 1.0] if n == mean else [1.0, 1.0] for n in tickets.feature_names}})
    assert engine_differences(tickets, t(10.0), t(10.0 * (1 + MEAN_RTOL / 2))) == []
    assert engine_differences(tickets, t(10.0), t(10.0 * (1 + 10 * MEAN_RTOL)))


def test_different_events_are_reported_as_such():
    [line] = engine_differences(SPEC, _table({}, ids=(1, 2, 3)), _table({}, ids=(1, 2, 4)))
    assert "different events" in line and "2 event id(s)" in line


def test_split_by_start_gives_every_partition_its_rows_and_refuses_unordered_rows():
    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    ts = [t0 + timedelta(minutes=m) for m in (5, 50, 70, 190)]
    table = pa.table({"ts": pa.array(ts, pa.timestamp("us", "UTC")), "v": [1, 2, 3, 4]})
    starts = [t0 + timedelta(hours=h) for h in range(4)]
    parts = split_by_start(table, "ts", starts, timedelta(hours=1))
    assert [parts[s].column("v").to_pylist() for s in starts] == [[1, 2], [3], [], [4]]
    with pytest.raises(ValueError, match="not ordered"):
        split_by_start(table.take([1, 0, 2, 3]), "ts", starts, timedelta(hours=1))


def test_the_driver_refuses_a_spec_whose_source_changed(tmp_path):
    src = tmp_path / "spec.py"
    src.write_text("from ml_assets.specs.fraud import FRAUD_SPEC as SPEC\n")
    from ml_assets.specs.loading import load_spec
    pinned = load_spec(str(src)).origin
    assert pinned_spec(pinned.ref, pinned.sha256) == FRAUD_SPEC
    src.write_text("from ml_assets.specs.fraud import FRAUD_SPEC as SPEC  # edited\n")
    with pytest.raises(SpecError, match="changed since the run started"):
        pinned_spec(pinned.ref, pinned.sha256)


def test_row_counts_are_compared_per_partition_not_only_in_total(tmp_path):
    """One event moved from one hour to the next: the totals agree, the hours do not."""
    from ml_assets.lib.core.catalog import EVENT_FEATURES, SPARK_EVENT_FEATURES, Catalog
    from ml_assets.lib.features.engine_parity import lake_parity

    catalog = Catalog(tmp_path, SPEC.partition_grain)
    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    hours = [t0, t0 + timedelta(hours=1)]
    duck = {hours[0]: _table({}, ids=(1, 2)), hours[1]: _table({}, ids=(3,))}
    spark = {hours[0]: _table({}, ids=(1,)), hours[1]: _table({}, ids=(2, 3))}
    catalog.table(EVENT_FEATURES).write_many(duck)
    catalog.table(SPARK_EVENT_FEATURES).write_many(spark)
    verdict = lake_parity(catalog, SPEC, t0, t0 + timedelta(hours=2))
    assert verdict["rows"] == 3 and verdict["missing"] == []
    assert verdict["differences"] == [
        "row counts differ in 2 partition(s), e.g. 2026-03-01T00: spark_event_features 1, "
        "event_features 2"]
