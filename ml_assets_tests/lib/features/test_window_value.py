"""The online window arithmetic equals DuckDB's exact-decimal SUM and AVG bit for bit, on the
values where a plain float computation differs: exact halves of the ninth decimal (DuckDB
rounds them away from zero) and means of arbitrary doubles (DuckDB divides in long double)."""

import duckdb
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ml_assets.lib.features.definitions import WindowAgg
from ml_assets.lib.features.window_value import window_value

SUM = WindowAgg("s", entity="k", agg="sum", column="x", window="1d")
MEAN = WindowAgg("m", entity="k", agg="mean", column="x", window="1d")


def _duckdb(values: np.ndarray) -> tuple[float, float]:
    """SUM and AVG as the compiled batch query computes them: over a trailing RANGE frame
    ending before the target (``lib/features/sql.py``), read at a target row after them."""
    con = duckdb.connect()
    n = len(values)
    con.register("t", {"ts": np.arange(n + 1), "x": np.append(values, 0.0)})
    frame = f"(ORDER BY ts RANGE BETWEEN {n + 1} PRECEDING AND 1 PRECEDING)"
    return con.execute(
        f"SELECT * FROM (SELECT ts, CAST(COALESCE(SUM(CAST(x AS DECIMAL(38, 9))) OVER {frame}, 0)"
        f" AS DOUBLE), AVG(CAST(x AS DECIMAL(38, 9))) OVER {frame} FROM t) WHERE ts = {n}"
    ).fetchone()[1:]


def _online(values: np.ndarray) -> tuple[float, float]:
    cols, n = {"x": values}, len(values)
    return (window_value(SUM, None, cols, 0, n, 0), window_value(MEAN, None, cols, 0, n, 0))


def test_halves_of_the_ninth_decimal_round_away_from_zero_as_duckdb_casts():
    values = np.array([2.5e-9, -2.5e-9, 1.5e-9, 0.5e-9, 12.0000000005, -7.0000000025])
    for v in values:
        assert _online(np.array([v])) == _duckdb(np.array([v])), v


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(
    st.floats(-1e6, 1e6, allow_nan=False),
    st.integers(-10**9, 10**9).map(lambda k: (k + 0.5) / 1e9),
    st.integers(0, 10**8).map(lambda c: c / 100)), min_size=1, max_size=40))
def test_online_sum_and_mean_equal_duckdb_exact_decimal(values):
    x = np.array(values, dtype="float64")
    assert _online(x) == _duckdb(x)
