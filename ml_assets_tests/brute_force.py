"""An independent, deliberately naive implementation of the feature semantics, used as the
oracle: for an event at t, only events with t - window <= ts < t and labels with
t - window <= label_ts < t of the same entity count."""

import math
from datetime import timedelta

import numpy as np
import pandas as pd

from ml_assets.lib.feature_defs import (
    Categorical,
    LabelAgg,
    Numeric,
    Ratio,
    TimeSincePrevious,
    WindowAgg,
    parse_window,
)


def _same_entity(frame: pd.DataFrame, row, entities) -> pd.Series:
    mask = pd.Series(True, index=frame.index)
    for key in entities:
        mask &= frame[key] == row[key]
    return mask


def brute_force_features(events: pd.DataFrame, labels: pd.DataFrame, spec, event_row) -> dict:
    """``labels`` must carry the entity keys, ``label_ts`` and ``label``."""
    t = event_row[spec.event_ts]
    out: dict[str, float] = {}
    for f in spec.features:
        if isinstance(f, Numeric):
            v = event_row[f.column]
            out[f.name] = float("nan") if pd.isna(v) else float(v)
        elif isinstance(f, Categorical):
            v = event_row[f.column]
            out[f.name] = float(f.vocabulary.index(v)) if v in f.vocabulary else float(len(f.vocabulary))
        elif isinstance(f, WindowAgg | TimeSincePrevious):
            w = parse_window(f.within if isinstance(f, TimeSincePrevious) else f.window, f.name)
            hist = events[_same_entity(events, event_row, f.entities)
                          & (events[spec.event_ts] >= t - w) & (events[spec.event_ts] < t)]
            if isinstance(f, TimeSincePrevious):
                out[f.name] = ((t - hist[spec.event_ts].max()) / timedelta(seconds=1)
                               if len(hist) else float("nan"))
                continue
            col = hist[f.column] if f.column else hist[spec.event_id]
            if f.agg == "count":
                out[f.name] = float(len(hist))
            elif f.agg == "sum":
                out[f.name] = float(col.sum()) if len(hist) else 0.0
            elif f.agg == "distinct":
                out[f.name] = float(col.nunique())
            else:  # mean / max over an empty or all-null window is null
                value = col.mean() if f.agg == "mean" else col.max()
                out[f.name] = float(value) if col.notna().any() else float("nan")
        elif isinstance(f, LabelAgg):
            w = parse_window(f.window, f.name)
            known = labels[_same_entity(labels, event_row, f.entities)
                           & (labels["label_ts"] >= t - w) & (labels["label_ts"] < t)]
            pos, cnt = float(known["label"].sum()), float(len(known))
            out[f.name] = {"positives": pos, "count": cnt,
                           "rate": pos / cnt if cnt else float("nan")}[f.agg]
        elif isinstance(f, Ratio):
            num = out.get(f.numerator, event_row.get(f.numerator))
            den = out.get(f.denominator, event_row.get(f.denominator))
            out[f.name] = (float(num) / float(den)
                           if den is not None and not pd.isna(den) and den != 0
                           and not pd.isna(num) else float("nan"))
    return out


def assert_features_match(computed: dict, expected: dict, context: str) -> None:
    for name, exp in expected.items():
        got = computed[name]
        if (isinstance(exp, float) and math.isnan(exp)) or pd.isna(exp):
            assert pd.isna(got), f"{context}: {name} expected null, got {got}"
        else:
            assert not pd.isna(got) and np.isclose(got, exp, rtol=1e-9, atol=1e-9), (
                f"{context}: {name} expected {exp}, got {got}")
