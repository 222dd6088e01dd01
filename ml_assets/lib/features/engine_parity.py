"""Do two engines compute the same features? Spark's against DuckDB's, value by value.

Every feature must be the same DOUBLE bit for bit (counts, exact ``DECIMAL(38, 9)`` sums, max,
distinct counts, time since previous, label aggregates, categoricals, ratios), except a ``mean``
and a ratio reading one (transitively): Spark rounds ``AVG(DECIMAL)`` to 13 decimals before the
cast, DuckDB divides in long double, so those agree within ``spark_sql.MEAN_RTOL``/``MEAN_ATOL``.
"""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ml_assets.lib.core.catalog import EVENT_FEATURES, SPARK_EVENT_FEATURES, Catalog
from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.identifiers import quote
from ml_assets.lib.core.lake import connect, parquet_relation
from ml_assets.lib.features.definitions import Ratio, WindowAgg

# Spark's AVG(DECIMAL(38, 9)) is the exact quotient rounded to 13 decimals (DECIMAL(38, 13)),
# DuckDB's a long double quotient: relative 1e-12, and 5e-14 absolute for the rounding.
MEAN_RTOL = 1e-12
MEAN_ATOL = 5e-14


def mean_fed(spec: DatasetSpec) -> set[str]:
    """Names of the features that are a mean or a ratio reading one (transitively): the only
    ones two engines may round differently."""
    out: set[str] = set()
    for f in spec.features:
        mean = isinstance(f, WindowAgg) and f.agg == "mean"
        if mean or (isinstance(f, Ratio) and {f.numerator, f.denominator} & out):
            out.add(f.name)
    return out


def engine_differences(spec: DatasetSpec, got: pa.Table, want: pa.Table) -> list[str]:
    """What differs between two engines' features of the same events.

    Parameters
    ----------
    spec : DatasetSpec
    got, want : pyarrow.Table, shape (n, k)
        Each with ``spec.event_id`` and every feature column; rows in any order (matched by
        event id).

    Returns
    -------
    list of str
        One line per difference, naming the feature, how many values differ and an example
        event; empty when the engines agree (the rule in the module docstring).
    """
    eid = spec.event_id
    got, want = (t.sort_by(eid) for t in (got, want))
    ids = got.column(eid)
    try:  # the engines may spell one id type differently (string vs large_string)
        same_ids = want.num_rows == got.num_rows and ids.equals(want.column(eid).cast(ids.type))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        same_ids = False
    if not same_ids:
        only = set(pc.unique(got.column(eid)).to_pylist()) ^ set(
            pc.unique(want.column(eid)).to_pylist())
        return [f"the engines computed different events: {got.num_rows} vs {want.num_rows} rows,"
                f" {len(only)} event id(s) in one only, e.g. {sorted(map(str, only))[:3]}"]
    tolerant, out = mean_fed(spec), []
    for name in spec.feature_names:
        g = got.column(name).to_numpy(zero_copy_only=False).astype("float64")
        w = want.column(name).to_numpy(zero_copy_only=False).astype("float64")
        nulls = np.isnan(g) != np.isnan(w)
        both = ~np.isnan(g) & ~np.isnan(w)
        if name in tolerant:
            off = both & ~np.isclose(g, w, rtol=MEAN_RTOL, atol=MEAN_ATOL)
        else:
            off = both & (g != w)
        bad = np.flatnonzero(nulls | off)
        if len(bad):
            i = int(bad[0])
            out.append(f"{name}: {len(bad)} of {len(g)} value(s) differ, e.g. event "
                       f"{ids[i].as_py()}: {g[i]!r} vs {w[i]!r}")
    return out


def lake_parity(catalog: Catalog, spec: DatasetSpec, start: datetime, end: datetime,
                sample_rows: int = 50_000) -> dict:
    """Compare ``spark_event_features`` with ``event_features`` over ``[start, end)``.

    Row counts are compared on every partition; values on a deterministic sample of event
    ids (``hash(id) % k = 0``, ``k`` chosen so about ``sample_rows`` rows are read), so the
    cost stays bounded on a backfill of any size.

    Parameters
    ----------
    catalog : Catalog
    spec : DatasetSpec
    start, end : datetime
        UTC window (the run's partitions).
    sample_rows : int
        About how many rows to compare value by value.

    Returns
    -------
    dict
        ``differences`` (list of str, empty when equal), ``missing`` (the ``event_features``
        partition keys absent, which make the comparison impossible), ``rows`` (Spark's rows
        in the window) and ``compared_rows``.
    """
    spark_t, duck_t = catalog.table(SPARK_EVENT_FEATURES), catalog.table(EVENT_FEATURES)
    want_files, missing = duck_t.coverage(start, end)
    got_files = spark_t.files(start, end)
    if missing or not got_files:
        return {"differences": [], "missing": [duck_t.key(p) for p in missing], "rows": 0,
                "compared_rows": 0}
    con, eid = connect(), quote(spec.event_id)
    con.execute("SET enable_progress_bar = false")

    def counts(files: list) -> dict[str, int]:
        """Rows per partition file stem (a partition with no rows is absent)."""
        rel = parquet_relation(files, source_column="_file")
        return dict(con.execute(f"SELECT parse_filename(_file, true), count(*) FROM {rel} "
                                "GROUP BY 1").fetchall())

    got_n, want_n = counts(got_files), counts(want_files)
    unequal = sorted(p for p in got_n.keys() | want_n.keys()
                     if got_n.get(p, 0) != want_n.get(p, 0))
    rows = sum(got_n.values())
    k = max(1, math.ceil(rows / sample_rows))
    cols = ", ".join(quote(c) for c in (spec.event_id, *spec.feature_names))

    def sample(relation: str) -> pa.Table:
        return con.sql(f"SELECT {cols} FROM {relation} WHERE hash({eid}) % {k} = 0"
                       ).to_arrow_table()

    got = sample(parquet_relation(got_files))
    differences = [
        f"row counts differ in {len(unequal)} partition(s), e.g. {p}: spark_event_features "
        f"{got_n.get(p, 0)}, event_features {want_n.get(p, 0)}" for p in unequal[:1]]
    differences += engine_differences(spec, got, sample(parquet_relation(want_files)))
    return {"differences": differences, "missing": [], "rows": rows,
            "compared_rows": got.num_rows}
