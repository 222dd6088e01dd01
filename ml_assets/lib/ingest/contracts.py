"""Data contracts (pandera) for landing files, features and scores.

Two kinds of failure: a *schema* break (missing/renamed/unexpected column, naive timestamps,
unreadable file, a column type outside its family) rejects the whole file with a message naming
the file and column; a *row* failure (null where none is allowed, out of range, duplicate id,
future timestamp, value of the wrong type) sends that row to quarantine with its reason. Nothing
is silently dropped.

Every accepted column is stored in ONE canonical type per spec column, whatever the writer
produced (``canonical_column``), so a lake partition never depends on how its file was written:

========== ============================================== ==================================
kind       accepted Arrow types                           stored as
========== ============================================== ==================================
timestamp  timestamp[s|ms|us|ns] with any time zone       timestamp[us, UTC] (same instant);
                                                          sub-µs digits floored, counted
id (int64) int8..int64, uint8..uint64 (in range)          int64
           float (row-level: integral and finite)         int64
           text (row-level: canonical ASCII digits)       int64
id (string), category: string, large_string, dictionary   string
number     int, uint, float, decimal                      float64 (decimal: nearest double)
           text (row-level: a number, else quarantined)   float64
label      as number, plus bool                           int8 (0/1)
========== ============================================== ==================================

Any other type (naive timestamps, text timestamps, dates, bool ids or amounts, numbers in a
categorical column, nested types) refuses the file naming file, column and type. An all-null
column (Arrow ``null``) takes the column's canonical type.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow
from pandera.errors import SchemaErrors

from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.type_names import plain_type

FUTURE_TOLERANCE = timedelta(minutes=5)
QUARANTINE_COLUMNS = ["source", "row", "reason", "record"]


class ContractError(ValueError):
    """A landing file breaks the contract as a whole; the message names file and column."""


def _finite(series: pd.Series) -> pd.Series:
    return series.isna() | np.isfinite(series.astype("float64"))


META_COLUMNS = ["_source", "_row", "_lo", "_hi"]  # where a row came from, its file's window


def check_columns(columns: list[str], expected: list[str], source: str) -> None:
    """Raise ContractError naming ``source`` if a column is missing or unexpected (any order)."""
    missing = [c for c in expected if c not in columns]
    extra = [c for c in columns if c not in expected]
    if missing:
        hint = f"; unexpected column(s) {extra} - renamed upstream?" if extra else ""
        raise ContractError(f"{source}: required column(s) {missing} missing{hint}. "
                            "Fix the file (or the dataset spec) and rerun the partition.")
    if extra:
        raise ContractError(f"{source}: unexpected column(s) {extra}; add them to the dataset "
                            "spec or remove them from the file, then rerun the partition.")


TIMESTAMP, ID, CATEGORY, NUMBER, LABEL = "timestamp", "id", "category", "number", "label"
CANONICAL_TS = pyarrow.timestamp("us", tz="UTC")
# An integer id written as text is accepted only in its one canonical spelling: ASCII digits,
# no sign but "-", no leading zeros, no spaces (so "007", " 7", "7.0" and "²" never alias 7).
INTEGER_TEXT = r"0|-?[1-9][0-9]{0,18}"


def event_kinds(spec: DatasetSpec) -> dict[str, str]:
    """The type kind of every event column (see the module docstring's table).

    Parameters
    ----------
    spec : DatasetSpec
        ``id_type`` is the type of ``event_id`` and of every entity key.

    Returns
    -------
    dict
        ``{column: kind}`` in ``spec.event_columns`` order.
    """
    return {spec.event_id: ID, spec.event_ts: TIMESTAMP, **dict.fromkeys(spec.entity_keys, ID),
            **{a.name: NUMBER if a.kind == "numeric" else CATEGORY for a in spec.attributes}}


def label_kinds(spec: DatasetSpec) -> dict[str, str]:
    """The type kind of every label-file column: event id, label, label time."""
    return {spec.event_id: ID, spec.label: LABEL, spec.label_ts: TIMESTAMP}


def _is_text(t: pyarrow.DataType) -> bool:
    return pyarrow.types.is_string(t) or pyarrow.types.is_large_string(t) \
        or pyarrow.types.is_string_view(t)


def _refuse(source: str, column: str, t: pyarrow.DataType, expected: str) -> ContractError:
    # The plain kind for whoever fixes the writer; the exact Parquet type when it says more.
    found = plain_type(t) if plain_type(t) == str(t) else f"{plain_type(t)} (Parquet {t})"
    return ContractError(f"{source}: column {column!r} has type {found}, expected {expected}. "
                         "Fix the writer (or the dataset spec) and re-deliver the file.")


def _canonical_timestamp(col: pyarrow.ChunkedArray, column: str, source: str,
                         notes: list[str]) -> pyarrow.ChunkedArray:
    t = col.type
    if not pyarrow.types.is_timestamp(t):
        raise _refuse(source, column, t, "a UTC timestamp")
    if t.tz is None:
        raise ContractError(f"{source}: column {column!r} holds timezone-naive timestamps; "
                            "landing files must carry UTC-aware timestamps.")
    if t.unit != "ns":  # s/ms/us: exact; a zone only changes how the instant is displayed
        try:
            return col.cast(CANONICAL_TS)
        except pyarrow.ArrowInvalid as exc:
            raise ContractError(f"{source}: column {column!r}: {exc}; timestamps must lie "
                                "within years 1..9999") from exc
    # ns -> µs: flooring keeps every value inside the same µs-aligned file window it was in
    ints = col.combine_chunks().cast(pyarrow.int64())
    present = ints.is_valid().to_numpy(zero_copy_only=False)
    values = ints.fill_null(0).to_numpy()
    floored = np.floor_divide(values, 1000)
    truncated = int(((values - floored * 1000 != 0) & present).sum())
    if truncated:
        notes.append(f"{source}: column {column!r}: {truncated} value(s) with sub-microsecond "
                     "digits floored to the microsecond")
    return pyarrow.chunked_array([pyarrow.array(floored, mask=~present).cast(CANONICAL_TS)])


def canonical_column(col: pyarrow.ChunkedArray, kind: str, id_type: str, column: str,
                     source: str, notes: list[str]) -> pyarrow.ChunkedArray:
    """One landing column in its canonical stored type, or a ContractError naming it.

    Parameters
    ----------
    col : pyarrow.ChunkedArray
        The column as the writer produced it.
    kind : {"timestamp", "id", "category", "number", "label"}
        Its kind (``event_kinds``/``label_kinds``).
    id_type : {"int64", "string"}
        The spec's id type (for ``kind == "id"``).
    column, source : str
        Column name and file (relative to the data directory), for the messages.
    notes : list of str
        Receives one line per lossy-but-defined coercion (sub-µs digits floored).

    Returns
    -------
    pyarrow.ChunkedArray
        The canonical type; text left for row-level coercion stays ``string`` (ids and numbers
        written as text are parsed row by row, bad values quarantined).

    Raises
    ------
    ContractError
        The type is outside the column's family (see the module docstring).
    """
    if kind == TIMESTAMP:
        return _canonical_timestamp(col, column, source, notes)
    t = col.type
    if pyarrow.types.is_dictionary(t):
        col, t = col.cast(t.value_type), t.value_type
    text = _is_text(t) or pyarrow.types.is_null(t)
    if kind == CATEGORY or (kind == ID and id_type == "string"):
        if not text:
            raise _refuse(source, column, t, "a string")
        return col.cast(pyarrow.string())
    if _is_text(t):  # numbers and integer ids written as text: parsed and checked per row
        return col.cast(pyarrow.string())
    integral = pyarrow.types.is_integer(t) or pyarrow.types.is_null(t)
    if kind == ID:
        if pyarrow.types.is_floating(t):
            return col.cast(pyarrow.float64())  # integral and finite is checked per row
        if not integral:
            raise _refuse(source, column, t, "an integer")
        try:
            return col.cast(pyarrow.int64())
        except pyarrow.ArrowInvalid as exc:  # uint64 above 2**63 - 1
            raise ContractError(f"{source}: column {column!r}: id out of the int64 range "
                                f"({exc})") from exc
    boolean = kind == LABEL and pyarrow.types.is_boolean(t)
    if not (integral or boolean or pyarrow.types.is_floating(t) or pyarrow.types.is_decimal(t)):
        raise _refuse(source, column, t, "a number")
    return col.cast(pyarrow.int8()).cast(pyarrow.float64()) if boolean \
        else col.cast(pyarrow.float64(), safe=False)  # decimal: the nearest double


def _coerce_numeric(df: pd.DataFrame, column: str) -> pd.Series:
    """Coerce to float; return a mask of values that were present but not numbers."""
    raw = df[column]
    if pd.api.types.is_float_dtype(raw.dtype):
        return pd.Series(False, index=df.index)
    if pd.api.types.is_bool_dtype(raw.dtype):  # True is not an amount of 1
        df[column] = pd.Series(np.nan, index=df.index)
        return raw.notna()
    coerced = pd.to_numeric(raw, errors="coerce").astype("float64")
    bad = raw.notna() & coerced.isna()
    df[column] = coerced
    return bad


def quarantine_rows(batch: pd.DataFrame, reasons: pd.Series) -> pd.DataFrame:
    """Rows with a reason, keeping source file, row number and the full original record."""
    bad = reasons[reasons != ""]
    if bad.empty:
        return pd.DataFrame({c: pd.Series(dtype="int64" if c == "row" else "str")
                             for c in QUARANTINE_COLUMNS})
    rows = batch.loc[bad.index]
    data = rows.drop(columns=[c for c in META_COLUMNS if c in rows.columns])
    records = data.astype("object").where(data.notna(), None)
    return pd.DataFrame({
        "source": rows["_source"].astype("str").to_numpy(),
        "row": rows["_row"].astype("int64").to_numpy(),
        "reason": bad.str.rstrip("; ").to_numpy(),
        "record": [json.dumps(r, default=str) for r in records.to_dict("records")],
    })


def _reasons_from_pandera(schema: pa.DataFrameSchema, df: pd.DataFrame, reasons: pd.Series) -> None:
    try:
        schema.validate(df, lazy=True)
    except SchemaErrors as err:
        fc = err.failure_cases.dropna(subset=["index"])
        for idx, grp in fc.groupby("index"):
            text = "; ".join(f"{c}: failed {chk} (value {v!r})" for c, chk, v in
                             zip(grp["column"], grp["check"], grp["failure_case"], strict=True))
            reasons.loc[idx] += text + "; "


def _time_reasons(batch: pd.DataFrame, column: str, now: datetime, reasons: pd.Series) -> None:
    ts = batch[column]
    reasons[ts < batch["_lo"]] += f"{column}: before the file's time window; "
    reasons[ts >= batch["_hi"]] += f"{column}: after the file's time window; "
    reasons[ts > now + FUTURE_TOLERANCE] += f"{column}: in the future; "


def _duplicate_reasons(batch: pd.DataFrame, column: str, reasons: pd.Series) -> None:
    """Keep the first row of an id; later copies are quarantined naming where it came first."""
    dup = batch.duplicated(column, keep="first") & batch[column].notna()
    if dup.any():
        first = batch.drop_duplicates(column).set_index(column)
        where = batch.loc[dup, column].map(
            lambda v: f"{first.at[v, '_source']} row {first.at[v, '_row']}")
        # by label, not by mask: ``batch`` may be a subset of the rows ``reasons`` covers
        reasons.loc[where.index] += "duplicate " + column + " (first seen in " + where + "); "


_ID_DTYPE = {"int64": "int64", "string": "str"}


def _id_dtype(spec: DatasetSpec, column: str) -> str:
    """The pandas dtype an id column is stored in: a nullable key of int64 ids takes the
    nullable ``Int64`` (Parquet int64 with nulls; ``int64`` cannot hold a null)."""
    nullable_int = column in spec.nullable_keys and spec.id_type == "int64"
    return "Int64" if nullable_int else _ID_DTYPE[spec.id_type]


def _coerce_integer_text(df: pd.DataFrame, column: str) -> pd.Series:
    """Parse ids written as text; return a mask of values that are not canonical integers."""
    raw = df[column]
    text = raw.astype("object").where(raw.notna(), None)
    ok = text.map(lambda v: isinstance(v, str | int | np.integer) and not isinstance(v, bool)
                  and re.fullmatch(INTEGER_TEXT, str(v)) is not None).astype(bool)
    parsed = [int(v) if m else None for v, m in zip(text, ok, strict=True)]
    ok &= pd.Series([v is not None and -2**63 <= v < 2**63 for v in parsed], index=df.index)
    df[column] = pd.array([v if m else None for v, m in zip(parsed, ok, strict=True)],
                          dtype="Int64")
    return raw.notna() & ~ok


def _coerce_ids(batch: pd.DataFrame, columns: list[str], id_type: str,
                reasons: pd.Series) -> None:
    """Bring id columns to the spec's id type row by row; bad values get a reason."""
    for col in columns:
        dtype = batch[col].dtype
        if id_type == "string":
            batch[col] = batch[col].astype("str").where(batch[col].notna())
        elif pd.api.types.is_float_dtype(dtype):
            # 1.5 would otherwise be truncated to 1 by the int64 cast: another entity.
            reasons[batch[col].notna() & ~np.isfinite(batch[col])] += f"{col}: not an integer; "
            reasons[np.isfinite(batch[col]) & (batch[col] % 1 != 0)] += f"{col}: not an integer; "
        elif not pd.api.types.is_integer_dtype(dtype):
            reasons[_coerce_integer_text(batch, col)] += (
                f"{col}: not an integer (ids written as text must be canonical ASCII digits); ")


def validate_events(batch: pd.DataFrame, spec: DatasetSpec, now: datetime,
                    ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split landing event rows into (valid rows, quarantined rows with reasons).

    Parameters
    ----------
    batch : DataFrame, one row per event: the spec's event columns plus ``META_COLUMNS``
    spec : DatasetSpec
    now : datetime, UTC; a timestamp after ``now`` + 5 minutes is "in the future"
    """
    batch = batch.reset_index(drop=True)
    raw = batch.copy(deep=False)  # quarantine keeps values as they arrived, before coercion
    reasons = pd.Series("", index=batch.index, dtype="object")
    for col in spec.numeric_attributes:
        reasons[_coerce_numeric(batch, col)] += f"{col}: not a number; "
    id_cols = [spec.event_id, *spec.entity_keys]
    _coerce_ids(batch, id_cols, spec.id_type, reasons)
    # a null in a key the spec declares nullable is valid: that event has no history there
    columns = {c: pa.Column(nullable=c in spec.nullable_keys)
               for c in (spec.event_id, spec.event_ts, *spec.entity_keys)}
    for attr in spec.attributes:
        checks = []
        if attr.kind == "numeric":
            checks.append(pa.Check(_finite, error="not finite (inf)"))
            if attr.min_value is not None:
                checks.append(pa.Check.ge(attr.min_value))
            if attr.max_value is not None:
                checks.append(pa.Check.le(attr.max_value))
        columns[attr.name] = pa.Column(nullable=attr.nullable, checks=checks)
    _reasons_from_pandera(pa.DataFrameSchema(columns), batch, reasons)
    _time_reasons(batch, spec.event_ts, now, reasons)
    _duplicate_reasons(batch, spec.event_id, reasons)
    valid = batch.loc[reasons == ""]
    # one stored type per spec column, whatever each file's writer produced
    valid = valid.astype({**{c: _id_dtype(spec, c) for c in id_cols},
                          **dict.fromkeys(spec.numeric_attributes, "float64"),
                          **dict.fromkeys(spec.categorical_attributes, "str")})
    return valid.reset_index(drop=True), quarantine_rows(raw, reasons)


def validate_labels(batch: pd.DataFrame, spec: DatasetSpec, now: datetime,
                    ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Labels: id not null, label in {0, 1}, label_ts inside the file's day and not in the
    future. Conflicting labels for one event are all quarantined; exact repeats keep the first.
    Parameters and returns as in ``validate_events`` (``batch``: one row per label)."""
    batch = batch.reset_index(drop=True)
    raw = batch.copy(deep=False)
    reasons = pd.Series("", index=batch.index, dtype="object")
    reasons[_coerce_numeric(batch, spec.label)] += f"{spec.label}: not a number; "
    _coerce_ids(batch, [spec.event_id], spec.id_type, reasons)
    schema = pa.DataFrameSchema({
        spec.event_id: pa.Column(nullable=False),
        spec.label: pa.Column(nullable=False, checks=pa.Check.isin([0, 1])),
        spec.label_ts: pa.Column(nullable=False),
    })
    _reasons_from_pandera(schema, batch, reasons)
    _time_reasons(batch, spec.label_ts, now, reasons)
    ids = batch[spec.event_id]
    conflicting = ids.notna() & batch.groupby(spec.event_id, dropna=False)[spec.label] \
        .transform("nunique").gt(1)
    reasons[conflicting] += "conflicting labels for the same event_id; "
    _duplicate_reasons(batch[~conflicting], spec.event_id, reasons)
    valid = batch.loc[reasons == ""].astype({spec.label: "int8",
                                             spec.event_id: _ID_DTYPE[spec.id_type]})
    return valid.reset_index(drop=True), quarantine_rows(raw, reasons)
