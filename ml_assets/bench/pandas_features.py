"""The baseline: the same point-in-time features written the way a data scientist would in
pandas — ``groupby().rolling(window, closed="left")`` per windowed feature (``[t - w, t)``, the
same strictly-before semantics as the compiled SQL), ``rolling().apply`` for distinct counts,
and ``merge_asof`` over cumulative label counts for label features.

It reads the whole history into memory at once (the usual notebook shape) and is generic over
a spec's declarations, so it computes exactly what ``feature_sql`` computes.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.features.definitions import (
    Categorical,
    LabelAgg,
    Numeric,
    Ratio,
    TimeSincePrevious,
    WindowAgg,
    is_constant,
    parse_window,
)

_TS_US = "_ts_us"


def _rolling(events: pd.DataFrame, spec: DatasetSpec, entities: tuple[str, ...], window: str,
             column: str, agg) -> np.ndarray:
    """Per-entity trailing aggregate over ``[t - window, t)``, aligned with ``events``' rows.

    ``events`` is sorted by the entity keys then time, so the groupby output (groups in key
    order, rows in their original order) lines up with it positionally."""
    roll = events.groupby(list(entities), sort=True).rolling(
        parse_window(window, column), on=spec.event_ts, closed="left")[column]
    out = agg(roll)
    return out.to_numpy(dtype="float64")


def _distinct(values: np.ndarray) -> float:
    return float(len(np.unique(values)))


def _window_feature(f: WindowAgg | TimeSincePrevious, events: pd.DataFrame,
                    spec: DatasetSpec) -> pd.Series:
    by_key = events.sort_values([*f.entities, spec.event_ts], kind="stable")
    if isinstance(f, TimeSincePrevious):
        prev = _rolling(by_key, spec, f.entities, f.within, _TS_US, lambda r: r.max())
        values = (by_key[_TS_US].to_numpy(dtype="float64") - prev) / f.unit_us
    else:
        column = f.column or spec.event_id
        agg = {
            "count": lambda r: r.count().fillna(0),
            "sum": lambda r: r.sum().fillna(0),
            "mean": lambda r: r.mean(),
            "max": lambda r: r.max(),
            "distinct": lambda r: r.apply(_distinct, raw=True).fillna(0),
        }[f.agg]
        values = _rolling(by_key, spec, f.entities, f.window, column, agg)
    return pd.Series(values, index=by_key.index).reindex(events.index)


def _label_feature(f: LabelAgg, events: pd.DataFrame, labels: pd.DataFrame,
                   spec: DatasetSpec) -> pd.Series:
    """Labels dated in ``[t - w, t)`` and available before t (the availability rule of
    ``lib/features/sql.py``): cumulative counts of usable labels before t, minus those dated
    before t - w, plus those dated before t - w but not yet available at t."""
    keys, w = list(f.entities), parse_window(f.window, f.name)
    labels = labels.assign(_usable=labels[["label_ts", "available_at"]].max(axis=1))
    left = events[[*keys, spec.event_ts]].reset_index()
    at = {}
    for name, order, shift in (("now", "_usable", pd.Timedelta(0)), ("then", "label_ts", w)):
        cum = labels.sort_values([*keys, order], kind="stable")
        cum = cum.assign(pos=cum.groupby(keys)["label"].cumsum(),
                         cnt=cum.groupby(keys).cumcount() + 1.0).sort_values(order, kind="stable")
        cum = cum[[*keys, order, "pos", "cnt"]].assign(_on=cum[order].dt.as_unit("us"))
        probe = left.assign(_at=(left[spec.event_ts] - shift).dt.as_unit("us")).sort_values("_at", kind="stable")
        hit = pd.merge_asof(probe, cum, left_on="_at", right_on="_on", by=keys,
                            allow_exact_matches=False)
        at[name] = hit.set_index("index")[["pos", "cnt"]].fillna(0).reindex(events.index)
    # only labels available more than a window after their label_ts can be late at t
    late = labels[labels["available_at"] > labels["label_ts"] + w]
    pair = left.merge(late[[*keys, "label_ts", "available_at", "label"]], on=keys)
    pair = pair[(pair["label_ts"] < pair[spec.event_ts] - w)
                & (pair["available_at"] >= pair[spec.event_ts])]
    extra = pair.groupby("index").agg(pos=("label", "sum"), cnt=("label", "size"))
    extra = extra.reindex(events.index).fillna(0)
    pos = at["now"]["pos"] - at["then"]["pos"] + extra["pos"]
    cnt = at["now"]["cnt"] - at["then"]["cnt"] + extra["cnt"]
    return {"positives": pos, "count": cnt, "rate": pos / cnt.where(cnt != 0)}[f.agg]


def pandas_features(events: pd.DataFrame, labels: pd.DataFrame, spec: DatasetSpec,
                    ) -> tuple[pd.DataFrame, dict[str, float]]:
    """Features of every event, ordered like the SQL output (time, then id), and the seconds
    each feature took. ``labels`` carries the entity keys, ``label_ts``, ``available_at`` and
    ``label``."""
    events = events.sort_values([spec.event_ts, spec.event_id], kind="stable",
                                ignore_index=True)
    events[_TS_US] = events[spec.event_ts].dt.as_unit("us").astype("int64")  # µs since epoch
    out = events[[spec.event_id, spec.event_ts, *spec.entity_keys]].copy()
    seconds: dict[str, float] = {}
    for f in spec.features:
        t0 = time.perf_counter()
        if isinstance(f, Numeric):
            out[f.name] = events[f.column].astype("float64")
        elif isinstance(f, Categorical):
            codes = pd.Categorical(events[f.column], categories=list(f.vocabulary)).codes
            out[f.name] = np.where(codes < 0, len(f.vocabulary), codes).astype("float64")
        elif isinstance(f, WindowAgg | TimeSincePrevious):
            out[f.name] = _window_feature(f, events, spec)
        elif isinstance(f, LabelAgg):
            out[f.name] = _label_feature(f, events, labels, spec)
        elif isinstance(f, Ratio):
            num, den = (pd.Series(float(p), index=out.index) if is_constant(p)
                        else (out[p] if p in out else events[p]).astype("float64")
                        for p in (f.numerator, f.denominator))
            out[f.name] = num / den.where(den != 0)
        seconds[f.name] = time.perf_counter() - t0
    return out, seconds
