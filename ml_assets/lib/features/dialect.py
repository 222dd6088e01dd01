"""The feature query every SQL engine runs, and the few pieces each engine spells its own way.

``compile_query(spec, dialect)`` turns the declarations into one query over relations ``ev``
(events incl. look-back history) and ``lb`` (entity keys, ``label_ts``, ``available_at``,
``label``). Everything that decides a value is written here once: the point-in-time frames
(``RANGE BETWEEN w PRECEDING AND 1 PRECEDING`` over epoch microseconds), the exact
``DECIMAL(38, 9)`` sums, the NULL-key partitions, the label availability rule and its
``now - then + late`` decomposition, ratios and categorical codes. A :class:`Dialect` supplies
only spelling (identifier quotes, parameters, the epoch function, list lookup, distinct counts)
and the one structural difference: how the cumulative label counts are read as of a time
(DuckDB's ASOF joins in ``lib/features/sql.py``; Spark, which has none, in
``lib/features/spark_sql.py``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection

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

STRICTLY_BEFORE = "1 PRECEDING"  # one microsecond: frames order by epoch microseconds
EXACT_DECIMAL = "DECIMAL(38, 9)"  # |values| < 1e29, nine decimals


class Dialect(ABC):
    """How one SQL engine spells the parts of the feature query that differ between engines.

    Every method returns a SQL fragment; identifiers reaching ``quote`` have passed
    ``check_identifier`` (``[a-z_][a-z0-9_]*``), so none needs escaping.
    """

    @abstractmethod
    def quote(self, identifier: str) -> str:
        """A quoted identifier."""

    @abstractmethod
    def param(self, name: str) -> str:
        """A named query parameter (``start`` and ``end``, TIMESTAMP WITH TIME ZONE values)."""

    @abstractmethod
    def epoch_us(self, expr: str) -> str:
        """A timestamp as BIGINT microseconds since the epoch."""

    @abstractmethod
    def list_position(self, values: str, column: str) -> str:
        """1-based position of ``column`` as a string in the literal list ``values``
        (``'a', 'b'``), NULL when absent or when the column is NULL."""

    @abstractmethod
    def distinct_count(self, column: str, frame: str) -> str:
        """Number of distinct non-NULL values of ``column`` over the window ``frame``."""

    @abstractmethod
    def gap_us(self, ts: str, frame: str) -> str:
        """Microseconds from the latest ``ts`` in ``frame`` to this row's ``ts`` (NULL when the
        frame is empty)."""

    @abstractmethod
    def label_ctes(self, spec: DatasetSpec, feats: list[LabelAgg], target: str
                   ) -> tuple[list[str], list[str]]:
        """CTEs and ``LEFT JOIN`` clauses (onto ``ev_w``) giving :func:`label_delta` its reads.

        Contract: for every target event (``target``: a predicate over ``ev``), a relation ``lr``
        keyed ``_eid`` with ``lbn_<tag>_pos``/``_cnt`` (labels of its entity tuple usable before
        ``t``: the later of ``label_ts`` and ``available_at`` ``< t``) and
        ``lbw_<tag>_<sec>_pos``/``_cnt`` (labels with ``label_ts < t - sec``), and the
        :func:`late_labels_cte` relation of each window, all joined on the event id. NULL where
        nothing is counted; a NULL entity key matches no label.
        """


def entity_tag(entities: tuple[str, ...]) -> str:
    """The name part that tells an entity tuple's label CTEs apart (``card_id__merchant_id``)."""
    return "__".join(entities)


def window_seconds(f: LabelAgg) -> int:
    """A label aggregate's window in whole seconds."""
    return int(parse_window(f.window, f.name).total_seconds())


def _microseconds(window: str, feature: str) -> int:
    return int(parse_window(window, feature).total_seconds()) * 1_000_000


def _partition(d: Dialect, spec: DatasetSpec, entities: tuple[str, ...]) -> str:
    """``PARTITION BY`` columns of an entity tuple. ``PARTITION BY`` puts every NULL key in one
    partition, so an event with a NULL nullable key is put in a partition of its own (its id
    added as a partition column): it sees an empty history, exactly as an unseen entity's first
    event, and no other NULL-key event sees it."""
    keys = [d.quote(k) for k in entities]
    nulls = " OR ".join(f"{d.quote(k)} IS NULL" for k in entities if k in spec.nullable_keys)
    if nulls:
        keys.append(f"CASE WHEN {nulls} THEN {d.quote(spec.event_id)} END")
    return ", ".join(keys)


def _frame(d: Dialect, spec: DatasetSpec, entities: tuple[str, ...], window: str | None,
           feature: str) -> str:
    start = "UNBOUNDED" if window is None else _microseconds(window, feature)
    # Ordered by integer microseconds, not the TIMESTAMPTZ: the frame bounds are then integer
    # subtractions, not per-row time-zone-aware interval arithmetic (same rows: UTC, whole
    # seconds; 20-35% less WINDOW time at 1M events in DuckDB).
    return (f"(PARTITION BY {_partition(d, spec, entities)} ORDER BY "
            f"{d.epoch_us(d.quote(spec.event_ts))} RANGE BETWEEN {start} PRECEDING AND "
            f"{STRICTLY_BEFORE})")


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _window_expr(d: Dialect, f: WindowAgg, spec: DatasetSpec) -> str:
    frame = _frame(d, spec, f.entities, f.window, f.name)
    col = d.quote(f.column) if f.column else None
    # Sums and means add exact decimals: a windowed SUM/AVG over DOUBLE rounds differently
    # depending on where the partition starts and ends, so features built hourly, in ranges or
    # in a from-raw rebuild would differ in the last bits (no bit-identical rerun).
    exact = f"CAST({col} AS {EXACT_DECIMAL})"
    if f.agg == "count":
        return f"COUNT(*) OVER {frame}"
    if f.agg == "sum":
        return f"COALESCE(SUM({exact}) OVER {frame}, 0)"
    if f.agg == "mean":
        return f"AVG({exact}) OVER {frame}"
    if f.agg == "max":
        return f"MAX({col}) OVER {frame}"
    return d.distinct_count(col, frame)


def _ratio_part(d: Dialect, part: str | float, exprs: dict[str, str]) -> str:
    """A ratio's numerator or denominator: an earlier feature's expression, an event column
    or a constant. A constant is written with an exponent so the engine reads it as the same
    DOUBLE the online path divides by (a plain ``0.1`` would be a DECIMAL)."""
    if is_constant(part):
        return f"{float(part):.17e}"
    return exprs.get(part, f"CAST(ev_w.{d.quote(part)} AS DOUBLE)")


def label_delta(f: LabelAgg, what: str) -> str:
    """Labels with label_ts in [t - w, t), available before t = (available and label_ts < t)
    - (label_ts < t - w) + (label_ts < t - w but not yet available at t)."""
    tag, sec = entity_tag(f.entities), window_seconds(f)
    now, then, late = f"lr.lbn_{tag}_{what}", f"lr.lbw_{tag}_{sec}_{what}", f"lbx_{tag}_{sec}"
    return f"(COALESCE({now}, 0) - COALESCE({then}, 0) + COALESCE({late}.{what}, 0))"


def target_events_cte(d: Dialect, spec: DatasetSpec, target: str) -> str:
    """CTE ``lt``: the target events' id (``_eid``), time (``_ts``) and entity keys."""
    keys = ", ".join(d.quote(k) for k in spec.entity_keys)
    return (f"lt AS (SELECT {d.quote(spec.event_id)} AS _eid, {d.quote(spec.event_ts)} AS _ts,"
            f" {keys} FROM ev WHERE {target})")


def late_labels_cte(d: Dialect, entities: tuple[str, ...], sec: int) -> str:
    """CTE ``lbx_<tag>_<sec>``: per target event (``lt``), the labels before ``t - sec`` not yet
    available at ``t`` (only labels available more than a window after their label_ts can be
    such: few, so a plain range join)."""
    on = " AND ".join(f"lt.{d.quote(k)} = c.{d.quote(k)}" for k in entities)
    return (
        f"lbx_{entity_tag(entities)}_{sec} AS (SELECT lt._eid, SUM(c.label) AS pos,"
        f" COUNT(*) AS cnt FROM lt"
        f" JOIN (SELECT * FROM lb WHERE available_at > label_ts + INTERVAL {sec} SECOND) c"
        f" ON {on} AND c.label_ts < lt._ts - INTERVAL {sec} SECOND"
        f" AND c.available_at >= lt._ts GROUP BY lt._eid)"
    )


def compile_query(spec: DatasetSpec, d: Dialect, computed: Collection[str] = (),
                  scanned_in_order: bool = False) -> str:
    """The feature query of ``spec`` in dialect ``d``.

    Inputs: relations ``ev`` (events incl. look-back history) and ``lb`` (entity keys,
    ``label_ts``, ``available_at``, ``label``); parameters ``start`` and ``end`` (``d.param``)
    bound the events that get a feature row.

    Parameters
    ----------
    spec : DatasetSpec
    d : Dialect
    computed : collection of str
        Features computed elsewhere (``prefix_sums``): their columns are left out. No ``Ratio``
        may read one.
    scanned_in_order : bool
        ``ev`` is scanned in ``(ts, id)`` order and the engine preserves insertion order: a
        query left with row-wise features only (no window, no label join) then skips the sort.

    Returns
    -------
    str
        SQL yielding one row per event ordered by ``(ts, id)``: id, ts, entity keys, one
        DOUBLE per feature not in ``computed``.
    """
    q = d.quote
    eid, ts = q(spec.event_id), q(spec.event_ts)
    keys = [q(k) for k in spec.entity_keys]
    window_cols, label_feats, exprs = [], [], {}
    features = [f for f in spec.features if f.name not in computed]
    for f in features:
        if isinstance(f, Numeric):
            exprs[f.name] = f"CAST(ev_w.{q(f.column)} AS DOUBLE)"
        elif isinstance(f, Categorical):
            vocab = ", ".join(_sql_string(v) for v in f.vocabulary)
            position = d.list_position(vocab, f"ev_w.{q(f.column)}")
            exprs[f.name] = f"CAST(COALESCE({position}, {len(f.vocabulary) + 1}) - 1 AS DOUBLE)"
        elif isinstance(f, WindowAgg):
            window_cols.append(f"{_window_expr(d, f, spec)} AS {q(f.name)}")
            exprs[f.name] = f"CAST(ev_w.{q(f.name)} AS DOUBLE)"
        elif isinstance(f, TimeSincePrevious):
            gap = d.gap_us(ts, _frame(d, spec, f.entities, f.within, f.name))
            window_cols.append(f"{gap} / CAST({f.unit_us} AS DOUBLE) AS {q(f.name)}")
            exprs[f.name] = f"CAST(ev_w.{q(f.name)} AS DOUBLE)"
        elif isinstance(f, LabelAgg):
            label_feats.append(f)
            p, c = label_delta(f, "pos"), label_delta(f, "cnt")
            exprs[f.name] = {
                "positives": f"CAST({p} AS DOUBLE)",
                "count": f"CAST({c} AS DOUBLE)",
                "rate": f"CAST({p} AS DOUBLE) / NULLIF({c}, 0)",
            }[f.agg]
        elif isinstance(f, Ratio):
            num, den = (_ratio_part(d, part, exprs) for part in (f.numerator, f.denominator))
            exprs[f.name] = f"({num}) / NULLIF({den}, 0)"

    attrs = [q(a.name) for a in spec.attributes]
    ev_select = ", ".join([eid, ts, *keys, *attrs, *window_cols])
    start, end = d.param("start"), d.param("end")
    sql = f"WITH ev_w AS (SELECT {ev_select} FROM ev)"
    ctes, joins = (d.label_ctes(spec, label_feats, f"{ts} >= {start} AND {ts} < {end}")
                   if label_feats else ([], []))
    sql += "".join(f",\n{c}" for c in ctes)
    join = "".join(joins)
    order = "" if scanned_in_order and not window_cols and not joins else f"\nORDER BY ev_w.{ts}, ev_w.{eid}"
    outputs = "".join(f", {exprs[f.name]} AS {q(f.name)}" for f in features)
    ev_keys = ", ".join(f"ev_w.{k}" for k in keys)
    sql += f"""
SELECT ev_w.{eid}, ev_w.{ts}, {ev_keys}{outputs}
FROM ev_w{join}
WHERE ev_w.{ts} >= {start} AND ev_w.{ts} < {end}{order}"""
    return sql


def available_sql(spec: DatasetSpec, available: str, label_ts: str) -> str:
    """SQL for a label row's availability time; rows written before it was recorded (an older
    lake, fixtures) get the on-time rule: end of their label day plus the ingest delay. The same
    text in DuckDB and Spark SQL.

    Parameters
    ----------
    spec : DatasetSpec
    available, label_ts : str
        SQL expressions of the recorded ``available_at`` (may be NULL) and the label time.

    Returns
    -------
    str
        A timestamp expression (the session time zone must be UTC: DuckDB's ``connect`` and
        ``spark_session`` set it).
    """
    delay = int(spec.label_ingest_delay.total_seconds())
    return (f"COALESCE({available}, date_trunc('day', {label_ts})"
            f" + INTERVAL 1 DAY + INTERVAL {delay} SECOND)")
