"""Per-request evaluation of the same feature declarations that ``feature_sql`` compiles.

The online state keeps, per entity, the recent events (timestamps and the columns the
declarations aggregate) and the labels known so far, as arrays sorted by time. A request at
``t`` reads half-open slices ``[t - window, t)`` by binary search, so each feature costs a few
microseconds and no SQL. ``replay_parity`` proves the two executions agree on real data.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta

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
from ml_assets.lib.features.window_value import window_value
from ml_assets.lib.ingest.landing import AVAILABLE_AT, recorded_or_on_time

_US = 1_000_000
_EPOCH = pd.Timestamp(0, tz="UTC")


def to_micros(ts: pd.Series | datetime) -> np.ndarray | int:
    """UTC timestamps as int64 microseconds since the epoch (the state's time axis).

    Parameters
    ----------
    ts : Series of tz-aware datetime, or datetime

    Returns
    -------
    ndarray of int64, shape (n_rows,), or int
    """
    if isinstance(ts, pd.Series):
        return ((ts.dt.tz_convert("UTC") - _EPOCH) // pd.Timedelta(1, "us")).to_numpy("int64")
    return int(pd.Timestamp(ts).tz_convert("UTC").value // 1_000)


def _window_us(f) -> int:
    window = f.within if isinstance(f, TimeSincePrevious) else f.window
    return int(parse_window(window, f.name).total_seconds()) * _US


@dataclass
class _Series:
    """One entity's rows, sorted by time: ``ts`` plus one array per kept column."""

    ts: np.ndarray
    cols: dict[str, np.ndarray]

    def insert(self, ts: int, values: dict) -> None:
        i = int(np.searchsorted(self.ts, ts, side="right"))
        self.ts = np.insert(self.ts, i, ts)
        for c, arr in self.cols.items():
            self.cols[c] = np.insert(arr, i, values[c])

    def prune(self, before: int) -> None:
        i = int(np.searchsorted(self.ts, before, side="left"))
        if i:
            self.ts = self.ts[i:]
            self.cols = {c: a[i:] for c, a in self.cols.items()}


@dataclass
class _Group:
    """Rows kept for one entity tuple (e.g. ``card_id`` or ``(card_id, merchant_id)``)."""

    keys: tuple[str, ...]
    retention_us: int
    columns: tuple[str, ...]
    series: dict[tuple, _Series] = field(default_factory=dict)


def _object_or_float(values: pd.Series) -> np.ndarray:
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
        return values.to_numpy(dtype="float64", na_value=np.nan)
    return values.astype("object").where(values.notna(), None).to_numpy()


def _bulk_series(df: pd.DataFrame, keys: tuple[str, ...], ts_us: np.ndarray,
                 columns: tuple[str, ...]) -> dict[tuple, _Series]:
    """Split rows sorted by (keys, ts) into one ``_Series`` per entity, without a row loop.
    A row with a null key belongs to no entity (a nullable key, ``spec.nullable_keys``): it is
    left out, so no later event sees it in that group, as the batch SQL does."""
    keyed = df[list(keys)].notna().all(axis=1).to_numpy()
    if not keyed.all():
        df, ts_us = df[keyed], ts_us[keyed]
    if df.empty:
        return {}
    order = np.lexsort([ts_us, *(df[k].to_numpy() for k in reversed(keys))])
    ts_sorted = ts_us[order]
    sorted_keys = [df[k].to_numpy()[order] for k in keys]
    change = np.zeros(len(order), dtype=bool)
    change[0] = True
    for arr in sorted_keys:
        change[1:] |= arr[1:] != arr[:-1]
    starts = np.flatnonzero(change)
    bounds = np.append(starts, len(order))
    cols = {c: _object_or_float(df[c])[order] for c in columns}
    key_tuples = list(zip(*(a[starts].tolist() for a in sorted_keys), strict=True))
    return {key: _Series(ts_sorted[lo:hi], {c: a[lo:hi] for c, a in cols.items()})
            for key, lo, hi in zip(key_tuples, bounds[:-1], bounds[1:], strict=True)}


class OnlineState:
    """Recent events and known labels per entity: the realtime path's view of "now"."""

    def __init__(self, spec: DatasetSpec):
        self.spec = spec
        self._lock = threading.Lock()
        self._event_groups: dict[tuple[str, ...], _Group] = {}
        self._label_groups: dict[tuple[str, ...], _Group] = {}
        self._seen: set = set()
        self._window = {f.name: _window_us(f) for f in spec.features
                        if isinstance(f, WindowAgg | TimeSincePrevious | LabelAgg)}
        for f in spec.features:
            if isinstance(f, WindowAgg | TimeSincePrevious):
                cols = (f.column,) if isinstance(f, WindowAgg) and f.column else ()
                self._add_group(self._event_groups, f.entities, _window_us(f), cols)
            elif isinstance(f, LabelAgg):
                self._add_group(self._label_groups, f.entities, _window_us(f),
                                ("label", "_available_us"))

    @staticmethod
    def _add_group(groups: dict, keys: tuple[str, ...], retention: int, cols: tuple) -> None:
        g = groups.get(keys)
        if g is None:
            groups[keys] = _Group(keys, retention, cols)
        else:
            groups[keys] = _Group(keys, max(g.retention_us, retention),
                                  tuple(dict.fromkeys(g.columns + cols)))

    @property
    def events_held(self) -> int:
        """Events held in the state (distinct event ids)."""
        return len(self._seen)

    def unknown_entities(self, event: dict) -> list[str]:
        """Entity keys of the event with no history in the state (cold start).

        Parameters
        ----------
        event : dict
            One raw event (column to value).

        Returns
        -------
        list of str
            Single-key entity columns whose value has no series yet (a null nullable key
            included: it has no history either).
        """
        with self._lock:
            return [g.keys[0] for g in self._event_groups.values()
                    if len(g.keys) == 1 and (event[g.keys[0]],) not in g.series]

    # -- loading -----------------------------------------------------------------------------
    def add_events(self, df: pd.DataFrame) -> int:
        """Add event rows (any order); ids already held are skipped.

        Parameters
        ----------
        df : DataFrame, one row per raw event
            The spec's event columns.

        Returns
        -------
        int
            Rows added.
        """
        spec = self.spec
        with self._lock:
            fresh = df[~df[spec.event_id].isin(self._seen)] if self._seen else df
            if fresh.empty:
                return 0
            ts = to_micros(fresh[spec.event_ts])
            for g in self._event_groups.values():
                for key, s in _bulk_series(fresh, g.keys, ts, g.columns).items():
                    self._merge(g, key, s)
            self._seen.update(fresh[spec.event_id].tolist())
            return len(fresh)

    def add_labels(self, df: pd.DataFrame) -> None:
        """Add label rows (as in ``raw_labels``: entity keys, the spec's label, label time and
        ``available_at``). A label counts at ``t`` only once ``label_ts < t`` and
        ``available_at < t`` (the compiler's availability rule, ``lib/features/sql.py``).

        Parameters
        ----------
        df : DataFrame, one row per label
            Without ``available_at`` (or where it is null) the on-time rule applies: end of
            the label's day plus ``spec.label_ingest_delay``.
        """
        if df.empty or not self._label_groups:
            return
        label_ts = df[self.spec.label_ts]
        available = recorded_or_on_time(self.spec, label_ts, df.get(AVAILABLE_AT))
        ts = to_micros(label_ts)
        # float64 holds microseconds since 1970 exactly (< 2**53)
        frame = df.assign(label=df[self.spec.label].astype("float64"),
                          _available_us=to_micros(available).astype("float64"))
        with self._lock:
            for g in self._label_groups.values():
                for key, s in _bulk_series(frame, g.keys, ts, g.columns).items():
                    self._merge(g, key, s)

    @staticmethod
    def _merge(g: _Group, key: tuple, new: _Series) -> None:
        old = g.series.get(key)
        if old is None:
            g.series[key] = new
            return
        ts = np.concatenate([old.ts, new.ts])
        order = np.argsort(ts, kind="stable")
        g.series[key] = _Series(ts[order], {c: np.concatenate([old.cols[c], new.cols[c]])[order]
                                            for c in g.columns})

    def add_event(self, event: dict) -> None:
        """Append one served event (after it was scored, so it never sees itself); a held id is skipped.

        Parameters
        ----------
        event : dict
            One raw event (column to value).
        """
        eid = event[self.spec.event_id]
        t = to_micros(event[self.spec.event_ts])
        with self._lock:
            if eid in self._seen:
                return
            self._seen.add(eid)
            for g in self._event_groups.values():
                key = _entity(event, g.keys)
                if key is None:  # a null key: no entity's history to join
                    continue
                values = {c: _scalar(event.get(c)) for c in g.columns}
                s = g.series.get(key)
                if s is None:
                    g.series[key] = _Series(np.array([t], dtype="int64"),
                                            {c: _one(v) for c, v in values.items()})
                else:
                    s.insert(t, values)
                    s.prune(t - g.retention_us)

    # -- evaluation --------------------------------------------------------------------------
    def features(self, event: dict) -> dict[str, float]:
        """Every declared feature for one event at ``event[event_ts]``; NaN means null.

        Parameters
        ----------
        event : dict
            One raw event (column to value).

        Returns
        -------
        dict of str to float
            Feature name to value, in the spec's feature order.
        """
        spec = self.spec
        t = to_micros(event[spec.event_ts])
        out: dict[str, float] = {}
        with self._lock:
            for f in spec.features:
                out[f.name] = self._one_feature(f, event, t, out)
        return out

    def _one_feature(self, f, event: dict, t: int, done: dict) -> float:
        if isinstance(f, Numeric):
            return _to_float(event.get(f.column))
        if isinstance(f, Categorical):
            value = event.get(f.column)
            if value is None:
                return float(len(f.vocabulary))
            text = str(value)
            return float(f.vocabulary.index(text)) if text in f.vocabulary \
                else float(len(f.vocabulary))
        if isinstance(f, Ratio):
            num, den = (float(p) if is_constant(p) else done[p] if p in done
                        else _to_float(event.get(p)) for p in (f.numerator, f.denominator))
            return num / den if den == den and den != 0 and num == num else float("nan")
        groups = self._label_groups if isinstance(f, LabelAgg) else self._event_groups
        key = _entity(event, f.entities)
        s = None if key is None else groups[f.entities].series.get(key)
        lo_t = t - self._window[f.name]
        if s is None:
            lo = hi = 0
        else:
            hi = int(np.searchsorted(s.ts, t, side="left"))
            lo = int(np.searchsorted(s.ts, lo_t, side="left"))
        return window_value(f, None if s is None else s.ts, None if s is None else s.cols,
                            lo, hi, t)


def _entity(event: dict, keys: tuple[str, ...]) -> tuple | None:
    """The event's entity tuple over ``keys``; None when one of them is null (a nullable key):
    such an event has an empty history there, like an unseen entity."""
    key = tuple(event[k] for k in keys)
    return None if any(pd.isna(v) for v in key) else key


def _to_float(value) -> float:
    return float("nan") if value is None else float(value)


def _scalar(value):
    return float("nan") if value is None else value


def _one(value) -> np.ndarray:
    return np.array([value], dtype="float64" if isinstance(value, int | float) else "object")


# -- loading the state from the lake ---------------------------------------------------------
def state_from_frames(spec: DatasetSpec, events: pd.DataFrame,
                      labels: pd.DataFrame | None) -> OnlineState:
    """An ``OnlineState`` loaded with these events and labels.

    Parameters
    ----------
    spec : DatasetSpec
    events : DataFrame, one row per raw event
    labels : DataFrame or None
        Rows as in ``raw_labels``.

    Returns
    -------
    OnlineState
    """
    state = OnlineState(spec)
    state.add_events(events)
    if labels is not None:
        state.add_labels(labels)
    return state


def lookback_start(spec: DatasetSpec, at: datetime) -> datetime:
    """Earliest event time the state needs to serve features at ``at``.

    Parameters
    ----------
    spec : DatasetSpec
    at : datetime
        UTC.

    Returns
    -------
    datetime
        ``at`` minus the longest look-back and one hour, not before the dataset's start.
    """
    return max(at - spec.lookback - timedelta(hours=1), spec.start_utc)
