"""A range run judges its partitions' contracts from one read, yet each partition keeps the
verdict its own rows give (``contract_checks.partition_problems``)."""

from datetime import UTC, datetime, timedelta

import pandas as pd

from ml_assets.defs.contract_checks import partition_problems
from ml_assets.lib.core.catalog import EVENT_FEATURES, Catalog
from ml_assets.lib.core.lake import read_parquet_by_file

T0 = datetime(2026, 7, 1, tzinfo=UTC)
H = timedelta(hours=1)


def _negative_or_repeated(df: pd.DataFrame) -> list[str]:
    """Row-level (a negative x) and across-rows (an id twice) problems, as contracts have."""
    out = [f"x: negative ({n} row(s))" for n in [int((df["x"] < 0).sum())] if n]
    return out + (["id: repeated"] if df["id"].duplicated().any() else [])


def test_each_partition_gets_its_own_rows_verdict(tmp_path):
    table = Catalog(tmp_path).table(EVENT_FEATURES)
    table.write(T0, pd.DataFrame({"id": [1, 2], "x": [1.0, 2.0]}))
    table.write(T0 + H, pd.DataFrame({"id": [3, 4], "x": [-1.0, 2.0]}))  # a bad row
    table.write(T0 + 2 * H, pd.DataFrame({"id": [1], "x": [3.0]}))  # id 1 again, another hour
    starts = [T0 + i * H for i in range(4)]  # the last was never written
    judged = partition_problems(table, starts, _negative_or_repeated)
    assert judged == {T0: ([], 2), T0 + H: (["x: negative (1 row(s))"], 2),
                      T0 + 2 * H: ([], 1), T0 + 3 * H: None}


def test_an_id_in_two_partitions_alone_fails_none(tmp_path):
    table = Catalog(tmp_path).table(EVENT_FEATURES)
    table.write(T0, pd.DataFrame({"id": [1], "x": [1.0]}))
    table.write(T0 + H, pd.DataFrame({"id": [1], "x": [1.0]}))
    assert partition_problems(table, [T0, T0 + H], _negative_or_repeated) == {
        T0: ([], 1), T0 + H: ([], 1)}


def test_files_of_other_types_are_read_with_their_own_types(tmp_path):
    """One scan per schema: an int column in one file is not widened to another's double."""
    table = Catalog(tmp_path).table(EVENT_FEATURES)
    a = table.write(T0, pd.DataFrame({"id": [1], "x": [1.5]}))
    b = table.write(T0 + H, pd.DataFrame({"id": [2], "x": [2]}))
    c = table.write(T0 + 2 * H, pd.DataFrame({"id": pd.Series([], dtype="int64"),
                                                "x": pd.Series([], dtype="float64")}))
    frames = read_parquet_by_file([a, b, c])
    assert str(frames[a]["x"].dtype) == "float64" and str(frames[b]["x"].dtype) == "int64"
    assert frames[c].empty and list(frames[c].columns) == ["id", "x"]


def test_each_file_gets_exactly_its_own_rows_in_order(tmp_path):
    """Files of 0..n rows, read in one scan, come back as each file alone gives them."""
    table = Catalog(tmp_path).table(EVENT_FEATURES)
    files = [table.write(T0 + i * H, pd.DataFrame({
        "id": pd.Series(range(100 * i, 100 * i + i % 7), dtype="int64"),
        "x": pd.Series([float(i)] * (i % 7), dtype="float64")})) for i in range(60)]
    frames = read_parquet_by_file(files[::-1])  # not in time order either
    for f in files:
        pd.testing.assert_frame_equal(frames[f], pd.read_parquet(f), check_exact=True)
