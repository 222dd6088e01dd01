"""Trailing-window count, sum and time since the previous event executed in numpy from prefix
sums, bit for bit what the compiled SQL (``lib/features/sql.py``) gives.

The range query is the standard prefix-sum one (Blelloch 1990, "Prefix sums and their
applications"): with the events of an entity sorted by time and ``P[i]`` the sum of the first
``i`` values, the sum over ``[t - w, t)`` is ``P[hi] - P[lo]`` where ``lo`` and ``hi`` are the
first positions at or after ``t - w`` and ``t`` (``searchsorted``, left side: a window start is
included, a tie at ``t`` is not). All entities are searched at once on one int64 key
``group * stride + time``, ``stride`` larger than any time plus the widest window, so no search
crosses into another entity (when ``groups * stride`` would overflow, times are replaced by
their ranks). Events are fetched once; when already in ``(ts, id)`` order (as the lake stores
them) one stable counting sort by group code per entity tuple puts them in (group, time) order,
and results are scattered back to ``(ts, id)`` order, the compiled query's row order.

Exactness: the SQL adds ``CAST(col AS DECIMAL(38, 9))``, i.e. integers in units of 1e-9, and
casts the sum to DOUBLE once. The same cast is done by DuckDB here, the units are fetched as
integers and the prefix sums are int64, so every difference is the exact decimal sum: integer
subtraction loses nothing, whereas a DOUBLE running sum rounds at every step and its
differences depend on everything summed before the window. The DOUBLE of an exact sum ``s`` is
``s / 1e9`` in IEEE double when ``|s| <= 2**53`` (``s`` and 1e9 are then exact doubles and the
division is correctly rounded, as is DuckDB's DECIMAL to DOUBLE cast on that range); larger
sums are cast by DuckDB itself. A column whose units do not fit int64, or whose absolute sum
could overflow it, is left to the SQL.

``mean`` stays in SQL: DuckDB finalizes ``AVG(DECIMAL)`` as a long double quotient of a
hugeint, which this module does not reproduce.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import cached_property
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
from pandas._libs.algos import groupsort_indexer  # private, but groupby's core since 0.x

from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.identifiers import quote
from ml_assets.lib.features.definitions import (
    FeatureDef,
    Ratio,
    TimeSincePrevious,
    WindowAgg,
    parse_window,
)

EXACT_DOUBLE = 2**53  # |units| up to this are exact doubles
_SAFE_TOTAL = 2.0**62  # a column's absolute unit total below this: no prefix sum overflows
BLOCK_ROWS = 1 << 17  # sorted rows per block: 1 MB per int64 temporary, cache-sized
KEY_LIMIT = 2**63  # search keys group * stride must stay below it (int64); else ranks


def prefix_sum_features(spec: DatasetSpec) -> tuple[FeatureDef, ...]:
    """The features of ``spec`` this module computes: count and sum windows and the time since
    the previous event, unless a ``Ratio`` reads them (ratios are SQL expressions over the
    query's own columns).

    Parameters
    ----------
    spec : DatasetSpec

    Returns
    -------
    tuple of WindowAgg and TimeSincePrevious
        In declaration order.
    """
    read = {p for f in spec.features if isinstance(f, Ratio) for p in (f.numerator, f.denominator)}
    return tuple(f for f in spec.features if f.name not in read and (
        isinstance(f, TimeSincePrevious) or isinstance(f, WindowAgg) and f.agg in ("count", "sum")))


def _width_us(f: WindowAgg | TimeSincePrevious) -> int:
    window = f.within if isinstance(f, TimeSincePrevious) else f.window
    return int(parse_window(window, f.name).total_seconds()) * 1_000_000


def _us(at: datetime) -> int:
    return pd.Timestamp(at).value // 1000  # nanoseconds; a datetime holds whole microseconds


def _units(column: pa.ChunkedArray) -> np.ndarray | None:
    """Exact DECIMAL(38, 9) values as int64 units of 1e-9 (Arrow stores them as two's-complement
    128-bit integers: low and high 64-bit words), or None when one does not fit int64 or the
    column's absolute total could overflow a prefix sum."""
    lows = [np.zeros(0, dtype=np.int64)]
    for chunk in column.chunks:
        words = np.frombuffer(chunk.buffers()[1], dtype=np.int64).reshape(-1, 2)
        low, high = words[chunk.offset:chunk.offset + len(chunk)].T
        fits = (not len(low) or high.min() == high.max() == 0 and low.min() >= 0
                or np.array_equal(high, low >> 63))  # the high word is the low word's sign
        if not fits:
            return None
        lows.append(low)
    low = np.concatenate(lows)
    bound = len(low) * max(-int(low.min(initial=0)), int(low.max(initial=0)))
    if bound >= _SAFE_TOTAL and np.abs(low.astype(np.float64)).sum() >= _SAFE_TOTAL:
        return None
    return low


def _key_codes(column: pa.Array) -> tuple[np.ndarray, int]:
    """Codes of one key column and how many there can be: a dense non-null integer key is its
    own code (offset by its minimum, no hashing); otherwise its dictionary index (NULL one
    value)."""
    if pa.types.is_signed_integer(column.type) and not column.null_count and len(column):
        values = column.to_numpy()
        low, high = int(values.min()), int(values.max())
        if high - low < 4 * len(values) + 65536:
            return values.astype(np.int64, copy=False) - low, high - low + 1
    encoded = column.dictionary_encode(null_encoding="encode")
    return encoded.indices.to_numpy().astype(np.int64), len(encoded.dictionary)


def _group_codes(table: pa.Table, entities: tuple[str, ...], nullable: tuple[str, ...],
                 perm: np.ndarray | None) -> np.ndarray:
    """One int64 code per row for its entity tuple, rows in ``(ts, id)`` order. A NULL in a
    nullable key gives the row a code of its own (no history, seen by no one), as the SQL's
    ``PARTITION BY`` on the event id does; a NULL elsewhere is one value, as ``PARTITION BY``
    groups NULLs."""
    codes = np.zeros(table.num_rows, dtype=np.int64)
    alone = np.zeros(table.num_rows, dtype=bool)
    for i, key in enumerate(entities):
        column = table.column(key).combine_chunks()
        part, count = _key_codes(column)
        codes = part if i == 0 else pd.factorize(codes * count + part)[0]
        if key in nullable and column.null_count:
            alone |= column.is_null().to_numpy(zero_copy_only=False)
    if perm is not None:
        codes, alone = codes[perm], alone[perm]
    if alone.any():
        codes[alone] = codes.max() + 1 + np.arange(int(alone.sum()))
    return codes


def _group_order(codes: np.ndarray) -> np.ndarray:
    """Stable permutation sorting ``codes`` (>= 0): rows already in time order end up in
    (group, time) order. One counting sort, O(rows + groups): the one pandas' groupby uses
    (``groupsort_indexer``), 3-5x faster at 4M rows than LSD radix over 16-bit digits."""
    return groupsort_indexer(codes.astype(np.intp, copy=False), int(codes.max(initial=-1)) + 1)[0]


class _Times:
    """The events' times in microseconds, ascending (``(ts, id)`` order): ``t``, and ``t0``
    the first, which times are taken relative to. The distinct times (``axis``, relative to
    ``t0``) and each row's index among them (``rank``) are read off ``t`` in one pass on
    first use, once per chunk for every entity tuple whose keys need them."""

    def __init__(self, t: np.ndarray):
        self.t = t
        self.t0 = int(t[0]) if len(t) else 0  # relative times are >= 0: no sign in strides

    @cached_property
    def _new(self) -> np.ndarray:
        new = np.empty(len(self.t), dtype=bool)
        new[:1] = True
        np.not_equal(self.t[1:], self.t[:-1], out=new[1:])
        return new

    @cached_property
    def axis(self) -> np.ndarray:
        return self.t[self._new] - self.t0

    @cached_property
    def rank(self) -> np.ndarray:
        rank = np.cumsum(self._new)
        rank -= 1
        return rank


def _search_keys(group: np.ndarray, at: np.ndarray, widths: list[int], times: _Times,
                 order: np.ndarray) -> tuple[np.ndarray, Callable[[int, Any], np.ndarray]]:
    """Sorted int64 search keys ``group * stride + time`` (rows in (group, time) order) and a
    function giving, for one width ``w`` and some rows (an index array or slice), the keys of
    ``time - w``. Time is in microseconds when ``groups * stride`` fits int64, else the rank
    among the distinct times, and a window start's rank the number of distinct times below it
    (same order and ties, so the same ``searchsorted`` positions). ``at`` is
    ``times.t[order] - times.t0``: a row's rank is gathered, not searched (sorting every time
    and window start cost 89 of 309 s at 16M events, a search per row 8 s more). ``group``
    is overwritten with the keys when it can be (the caller needs it no more)."""
    stride = (int(at.max()) if len(at) else 0) + max(widths) + 1
    if (int(group[-1]) + 1 if len(group) else 0) * stride < KEY_LIMIT:
        key = np.multiply(group, stride, out=group)
        key += at
        return key, lambda w, some: key[some] - w
    axis = times.axis
    base = np.multiply(group, len(axis), out=group)
    return (base + times.rank[order],
            lambda w, some: base[some] + np.searchsorted(axis, at[some] - w))


def _scatter_double(con: duckdb.DuckDBPyConnection, values: np.ndarray, rows,
                    units: np.ndarray) -> None:
    """``values[rows] = CAST(units AS DECIMAL(38, 9) -> DOUBLE)`` for exact sums given in
    units: an int64 converted to a double is exact up to 2**53, and dividing by 1e9 is then
    the correctly rounded quotient; larger sums are cast by DuckDB."""
    values[rows] = units / 1e9
    if not len(units) or max(-int(units.min()), int(units.max())) <= EXACT_DOUBLE:
        return  # the usual case, decided by two reductions instead of an abs() per row
    big = np.flatnonzero(np.abs(units) > EXACT_DOUBLE)
    con.register("_prefix_big", pa.table({"u": units[big]}))
    values[rows[big]] = con.execute(
        "SELECT CAST(CAST(u AS DECIMAL(38, 0)) * CAST(1e-9 AS DECIMAL(38, 9)) AS DOUBLE) "
        "AS d FROM _prefix_big").fetchnumpy()["d"]
    con.unregister("_prefix_big")


def compute_prefix_features(con: duckdb.DuckDBPyConnection, spec: DatasetSpec,
                            features: tuple[FeatureDef, ...], start: datetime,
                            end: datetime) -> tuple[dict[str, np.ndarray], bool]:
    """Values of ``features`` (``prefix_sum_features``) for the events of view ``ev`` in
    ``[start, end)``, from all of ``ev`` as history.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        With the view ``ev`` (events incl. look-back), as ``compute_features`` creates it.
    spec : DatasetSpec
    features : tuple of WindowAgg and TimeSincePrevious
    start, end : datetime
        UTC window of the target events.

    Returns
    -------
    values : dict of str to ndarray of float64, each of shape (targets,)
        Targets ordered by ``(event_ts, event_id)``, as the compiled query orders its rows;
        NaN where SQL gives NULL (no previous event). A sum whose column could overflow int64
        is left out (the caller computes it in SQL); every feature is left out when two events
        share a timestamp and an id (then no order pairs rows with the query's).
    in_order : bool
        Whether ``ev`` was scanned in ``(event_ts, event_id)`` order.
    """
    eid, ts = quote(spec.event_id), quote(spec.event_ts)
    entities = list(dict.fromkeys(k for f in features for k in f.entities))
    sums = list(dict.fromkeys(f.column for f in features if getattr(f, "agg", None) == "sum"))
    cols = [f"epoch_us({ts}) AS _t", f"{eid} AS _eid", *(quote(k) for k in entities),
            *(f"COALESCE(CAST({quote(c)} AS DECIMAL(38, 9)), 0) AS {quote('_u_' + c)}"
              for c in sums)]
    table = con.sql(f"SELECT {', '.join(cols)} FROM ev").to_arrow_table()
    t = table.column("_t").to_numpy()
    ids = table.column("_eid").to_numpy(zero_copy_only=False)
    if ids.dtype == object:  # strings: DuckDB orders them by bytes, as their sorted codes do
        ids = pd.factorize(ids, sort=True)[0]
    perm = None
    if not np.all((t[1:] > t[:-1]) | ((t[1:] == t[:-1]) & (ids[1:] >= ids[:-1]))):
        perm = np.lexsort((ids, t))
        t, ids = t[perm], ids[perm]
    if np.any((t[1:] == t[:-1]) & (ids[1:] == ids[:-1])):
        return {}, False
    del ids  # each array of n rows held at once is memory a cold process must fault in
    units = {c: _units(table.column("_u_" + c)) for c in sums}
    table = table.select(entities)  # frees the ids and the 16-byte decimals
    units = {c: u if perm is None or u is None else u[perm] for c, u in units.items()}
    first, last = np.searchsorted(t, [_us(start), _us(end)])
    times = _Times(t)
    out: dict[str, np.ndarray] = {}
    for tup in dict.fromkeys(f.entities for f in features):
        feats = [f for f in features if f.entities == tup
                 and (getattr(f, "agg", None) != "sum" or units[f.column] is not None)]
        if feats:
            out |= _entity_features(con, feats, _group_codes(table, tup, spec.nullable_keys, perm),
                                    times, units, first, last)
    return out, perm is None


def _entity_features(con: duckdb.DuckDBPyConnection, feats: list, codes: np.ndarray,
                     times: _Times, units: dict[str, np.ndarray], first: int,
                     last: int) -> dict[str, np.ndarray]:
    """The features of one entity tuple, ``codes`` its group per row; the rows of
    ``times.t`` in ``[first, last)`` are the targets.

    Arrays of one value per event (the sort, the keys, the prefix sums, the outputs) are
    built once; the rest is computed in blocks of ``BLOCK_ROWS`` sorted rows. A block's
    temporaries stay in the CPU cache and the allocator reuses them, where whole-length ones
    (tens to hundreds of MB each at millions of events) are fresh memory on every call, and
    on a VM memory touched for the first time costs more than the arithmetic."""
    order = _group_order(codes)
    group = codes[order]
    del codes
    at = times.t[order]
    at -= times.t0
    by_width: dict[int, list] = {}
    for f in feats:
        by_width.setdefault(_width_us(f), []).append(f)
    key, starts_of = _search_keys(group, at, list(by_width), times, order)
    prefix = {}
    for c in dict.fromkeys(f.column for f in feats if getattr(f, "agg", None) == "sum"):
        prefix[c] = np.empty(len(at) + 1, dtype=np.int64)
        prefix[c][0] = 0
        np.take(units[c], order, out=prefix[c][1:])
        np.cumsum(prefix[c][1:], out=prefix[c][1:])
    out = {f.name: np.empty(last - first) for f in feats}
    every = first == 0 and last == len(key)  # every event a target: blocks need no filter
    run_start = 0  # where the run of equal (group, time) holding the block's first row begins
    for lo in range(0, len(key), BLOCK_ROWS):
        hi_row = min(lo + BLOCK_ROWS, len(key))
        block = order[lo:hi_row]
        some = (slice(None) if every else np.flatnonzero((block >= first) & (block < last)))
        if not every and not len(some):
            # run_start goes stale, harmlessly: a run crossing into the next block is one
            # (group, time), so its rows there are not targets either
            continue
        # hi: the first row of each target's run, so ties at t are excluded
        starts = np.arange(lo, hi_row)
        starts[1:][key[lo + 1:hi_row] == key[lo:hi_row - 1]] = 0
        if lo and key[lo] == key[lo - 1]:
            starts[0] = run_start
        np.maximum.accumulate(starts, out=starts)
        run_start = int(starts[-1])
        hi = starts[some]
        targets = slice(lo, hi_row) if every else some + lo
        rows = block[some] - first if first else block[some]
        _block_features(con, by_width, out, rows, targets, hi, key, at, starts_of, prefix)
    return out


def _block_features(con, by_width, out, rows, targets, hi, key, at, starts_of, prefix) -> None:
    """Every feature's values for one block's ``targets`` (sorted rows, ``hi`` the first row
    of each one's run), scattered to ``rows`` of ``out``; ``by_width`` groups the features by
    window width in microseconds (one ``searchsorted`` per width)."""
    for width, feats in by_width.items():
        low = np.searchsorted(key, starts_of(width, targets))
        for f in feats:
            if isinstance(f, TimeSincePrevious):
                gap = np.subtract(at[targets], at[np.maximum(hi - 1, 0)])
                gap = gap / float(f.unit_us)
                gap[hi <= low] = np.nan  # no previous event in the window: NULL
                out[f.name][rows] = gap
            elif f.agg == "count":
                out[f.name][rows] = hi - low
            else:
                total = prefix[f.column][hi]
                total -= prefix[f.column][low]
                _scatter_double(con, out[f.name], rows, total)
