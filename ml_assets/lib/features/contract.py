"""The feature table's contract: right columns, doubles, no infinities, sane ranges, and nulls
only where the declaration allows them (e.g. a mean over an empty window)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.type_names import plain_type
from ml_assets.lib.features.definitions import (
    Categorical,
    LabelAgg,
    Numeric,
    Ratio,
    TimeSincePrevious,
    WindowAgg,
)


def _nullable(f, spec: DatasetSpec) -> bool:
    if isinstance(f, Numeric):
        return next(a.nullable for a in spec.attributes if a.name == f.column)
    if isinstance(f, WindowAgg):
        return f.agg in ("mean", "max")
    return isinstance(f, TimeSincePrevious | Ratio) or (isinstance(f, LabelAgg) and f.agg == "rate")


def _checks(f) -> list[pa.Check]:
    finite = pa.Check(lambda s: s.isna() | np.isfinite(s), error="not finite")
    checks = [finite]
    if isinstance(f, Categorical):
        checks.append(pa.Check.in_range(0, len(f.vocabulary)))
    elif isinstance(f, LabelAgg) and f.agg == "rate":
        checks.append(pa.Check.in_range(0, 1))
    elif isinstance(f, WindowAgg | TimeSincePrevious | LabelAgg) and getattr(f, "agg", "") in (
            "count", "distinct", "positives", ""):
        checks.append(pa.Check.ge(0))
    return checks


def feature_schema(spec: DatasetSpec) -> pa.DataFrameSchema:
    """The pandera schema of the ``event_features`` table of ``spec``.

    Parameters
    ----------
    spec : DatasetSpec

    Returns
    -------
    pandera.DataFrameSchema
        Strict and ordered: unique non-null event id, UTC timestamp, entity keys (null only in
        ``spec.nullable_keys``), one float64 column per feature with its nullability and range
        checks.
    """
    columns = {
        spec.event_id: pa.Column(nullable=False, unique=True),
        spec.event_ts: pa.Column("datetime64[us, UTC]", nullable=False),
        **{k: pa.Column(nullable=k in spec.nullable_keys) for k in spec.entity_keys},
        **{f.name: pa.Column("float64", nullable=_nullable(f, spec), checks=_checks(f))
           for f in spec.features},
    }
    return pa.DataFrameSchema(columns, strict=True, ordered=True)


def _type_problem(expected: str, actual) -> str:
    want, found = plain_type(expected), plain_type(actual)
    if want == found:  # e.g. timestamps of another precision or zone: the exact types tell
        return f"expected {want} ({expected}), got {found} ({actual})"
    return f"expected {want}, got {found}"


def feature_contract_problems(df: pd.DataFrame, spec: DatasetSpec, limit: int = 10) -> list[str]:
    """Human-readable contract violations (empty when the table is fine).

    Parameters
    ----------
    df : DataFrame
        An ``event_features`` frame.
    spec : DatasetSpec
    limit : int
        At most this many (column, check) groups are reported.

    Returns
    -------
    list of str
        ``"<column>: <check> (<n> row(s))"``; a column of the wrong type as
        ``"<column>: expected number, got string"`` (plain type names, ``type_names``).
    """
    try:
        feature_schema(spec).validate(df, lazy=True)
    except SchemaErrors as err:
        fc = err.failure_cases
        # pandera names a type failure by the dtype's repr (``dtype('float64')``): said in plain
        # words instead, from the column's actual type (its failure case may be a value).
        wrong_type = fc["check"].astype(str).str.fullmatch(r"dtype\('.*'\)")
        fc = fc.assign(check=[_type_problem(chk[7:-2], df[col].dtype) if wrong else chk
                              for col, chk, wrong in zip(fc["column"], fc["check"].astype(str),
                                                         wrong_type, strict=True)])
        grouped = fc.groupby(["column", "check"], dropna=False).size().head(limit)
        # a type is the whole column's: no row count
        return [f"{col}: {chk}" + ("" if chk.startswith("expected ") else f" ({n} row(s))")
                for (col, chk), n in grouped.items()]
    return []
