"""Data contracts (pandera) for landing files, features and scores.

Two kinds of failure: a *schema* break (missing/renamed/unexpected column, naive timestamps,
unreadable file) rejects the whole file with a message naming the file and column; a *row*
failure (null where none is allowed, out of range, duplicate id, future timestamp, value of the
wrong type) sends that row to quarantine with its reason. Nothing is silently dropped.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from ml_assets.lib.core.datasets import DatasetSpec

FUTURE_TOLERANCE = timedelta(minutes=5)
QUARANTINE_COLUMNS = ["source", "row", "reason", "record"]


class ContractError(ValueError):
    """A landing file breaks the contract as a whole; the message names file and column."""


def _finite(series: pd.Series) -> pd.Series:
    return series.isna() | np.isfinite(series.astype("float64"))


META_COLUMNS = ["_source", "_row", "_lo", "_hi"]  # where a row came from, its file's window


def check_columns(columns: list[str], expected: list[str], source: str) -> None:
    missing = [c for c in expected if c not in columns]
    extra = [c for c in columns if c not in expected]
    if missing:
        hint = f"; unexpected column(s) {extra} - renamed upstream?" if extra else ""
        raise ContractError(f"{source}: required column(s) {missing} missing{hint}. "
                            "Fix the file (or the dataset spec) and rerun the partition.")
    if extra:
        raise ContractError(f"{source}: unexpected column(s) {extra}; add them to the dataset "
                            "spec or remove them from the file, then rerun the partition.")


def check_timestamp_type(dtype, column: str, source: str) -> None:
    if isinstance(dtype, pd.DatetimeTZDtype):
        return
    if pd.api.types.is_datetime64_any_dtype(dtype):
        raise ContractError(f"{source}: column {column!r} holds timezone-naive timestamps; "
                            "landing files must carry UTC-aware timestamps.")
    raise ContractError(f"{source}: column {column!r} has type {dtype}, expected a UTC timestamp.")


def _coerce_numeric(df: pd.DataFrame, column: str) -> pd.Series:
    """Coerce to float; return a mask of values that were present but not numbers."""
    raw = df[column]
    if pd.api.types.is_float_dtype(raw.dtype):
        return pd.Series(False, index=df.index)
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


def validate_events(batch: pd.DataFrame, spec: DatasetSpec, now: datetime,
                    ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split a batch of landing event rows into (valid rows, quarantined rows with reasons)."""
    batch = batch.reset_index(drop=True)
    raw = batch.copy(deep=False)  # quarantine keeps values as they arrived, before coercion
    reasons = pd.Series("", index=batch.index, dtype="object")
    for col in spec.numeric_attributes:
        reasons[_coerce_numeric(batch, col)] += f"{col}: not a number; "
    int_cols = ([spec.event_id] if spec.id_type == "int64" else []) + [
        k for k in spec.entity_keys if not pd.api.types.is_string_dtype(batch[k].dtype)]
    for col in int_cols:
        if not pd.api.types.is_integer_dtype(batch[col].dtype):
            reasons[_coerce_numeric(batch, col)] += f"{col}: not an integer; "
            # 1.5 would otherwise be truncated to 1 by the int64 cast below: another entity.
            reasons[batch[col].notna() & (batch[col] % 1 != 0)] += f"{col}: not an integer; "
    columns = {c: pa.Column(nullable=False) for c in (spec.event_id, spec.event_ts, *spec.entity_keys)}
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
    if spec.id_type == "int64":
        valid = valid.astype({c: "int64" for c in int_cols})
    return valid.reset_index(drop=True), quarantine_rows(raw, reasons)


def validate_labels(batch: pd.DataFrame, spec: DatasetSpec, now: datetime,
                    ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Labels: id not null, label in {0, 1}, label_ts inside the file's day and not in the
    future. Conflicting labels for one event are all quarantined; exact repeats keep the first."""
    batch = batch.reset_index(drop=True)
    raw = batch.copy(deep=False)
    reasons = pd.Series("", index=batch.index, dtype="object")
    reasons[_coerce_numeric(batch, spec.label)] += f"{spec.label}: not a number; "
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
    valid = batch.loc[reasons == ""].astype({spec.label: "int8"})
    return valid.reset_index(drop=True), quarantine_rows(raw, reasons)
