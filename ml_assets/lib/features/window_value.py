"""The arithmetic of one trailing window, shared by the online state: count, sum, mean, max,
distinct, label rates and time since the previous event, bit for bit what the batch SQL gives."""

from __future__ import annotations

import numpy as np

from ml_assets.lib.features.definitions import LabelAgg, TimeSincePrevious


def window_value(f, ts: np.ndarray | None, cols: dict | None, lo: int, hi: int, t: int) -> float:
    """One windowed feature's value at ``t`` from an entity's sorted history, exactly as the
    compiled batch SQL computes it (``lib/features/sql.py``).

    Parameters
    ----------
    f : WindowAgg, LabelAgg or TimeSincePrevious
        The declaration.
    ts : ndarray of int64 or None
        The entity's event (or label) times, UTC microseconds, ascending; None for an unseen entity.
    cols : dict of str to ndarray or None
        The entity's columns aligned with ``ts`` (``label`` and ``_available_us`` for label aggregates).
    lo, hi : int
        The window ``[lo, hi)`` into ``ts`` (``searchsorted`` of ``t - window`` and ``t``).
    t : int
        The event time, UTC microseconds.

    Returns
    -------
    float
        The value; NaN where the batch SQL gives NULL (no previous event, an empty mean).
    """
    n = hi - lo
    if isinstance(f, TimeSincePrevious):
        return (t - int(ts[hi - 1])) / f.unit_us if n else float("nan")
    if isinstance(f, LabelAgg):
        # a label counts once it is dated before t and was available before t
        known = cols["_available_us"][lo:hi] < t if n else np.zeros(0, dtype=bool)
        n = int(known.sum())
        pos = float(np.sum(cols["label"][lo:hi][known])) if n else 0.0
        return {"positives": pos, "count": float(n),
                "rate": pos / n if n else float("nan")}[f.agg]
    if f.agg == "count":
        return float(n)
    values = cols[f.column][lo:hi] if n else np.empty(0)
    if f.agg == "distinct":
        return float(len({v for v in values.tolist() if v is not None and v == v}))
    values = values[~np.isnan(values)]
    if f.agg == "sum":
        return float(_nano_sum(values)) / 1e9 if len(values) else 0.0
    if not len(values):
        return float("nan")
    if f.agg == "mean":
        return _decimal_mean(_nano_sum(values), len(values))
    return float(values.max())


def _nano_sum(values: np.ndarray) -> int:
    """The batch path's windowed SUM/AVG over DECIMAL(38, 9), bit for bit: each value cast to
    nine decimals as DuckDB casts a DOUBLE (``value * 1e9`` rounded half away from zero, C's
    ``round``; numpy's ``rint`` rounds half to even) and added exactly. A float sum differs in
    the last bits - enough to flip a tree split now and then, which the parity check reports
    as skew."""
    scaled = values * 1e9
    whole = np.trunc(scaled)  # scaled - whole is exact, so the half test is too
    units = whole + np.sign(scaled) * (np.abs(scaled - whole) >= 0.5)
    return sum(map(int, units))


def _decimal_mean(units: int, n: int) -> float:
    """DuckDB's ``AVG`` of DECIMAL(38, 9) values: the exact sum over ``n * 1e9`` divided in
    the C ``long double`` (80-bit on x86-64 Linux, as ``np.longdouble`` there), then rounded
    to DOUBLE. A DOUBLE division differs in the last bit on about 1 in 3,000 windows of
    arbitrary doubles (none of whole cents)."""
    exact = np.ldexp(np.longdouble(units >> 64), 64) + np.longdouble(np.uint64(units & (2**64 - 1)))
    return float(exact / np.longdouble(n * 1e9))
