"""Compile feature declarations to one DuckDB query, and build features over a time range.

Every trailing window is ``[t - w, t)``: an event never sees itself, a tie at the same instant,
or anything later.

count, sum and time-since-previous are read from one cumulative pass per entity tuple
(``_cumulative_reads``): the running count and running exact-decimal sums over the entity's
events ordered by time (``RANGE UNBOUNDED PRECEDING``, so events at the same instant enter
together), read with ASOF joins at the last instant before ``t`` and the last before ``t - w``;
the window's value is the difference. This is the prefix-sum range query (a range sum is a
difference of two prefix sums); reading a prefix "as of" a time is the point-in-time join
feature stores use (Feast's and Tecton's as-of joins). The difference is exact because the
running values are integers and DECIMAL(38, 9) sums: a DOUBLE running sum would make the
difference depend on everything before the window (catastrophic cancellation, and reruns over
other ranges would differ in the last bits). All windows of an entity tuple share the pass, and
each distinct window length adds one ASOF read shared by its counts and sums.

mean, max and distinct stay ``RANGE`` frames ending one microsecond before the event
(``_frame``), all in one select so DuckDB sorts each partitioning once. mean has no cumulative
form that reproduces its bits: DuckDB finalizes ``AVG(DECIMAL)`` by dividing the exact sum by
``count * 10^scale`` in x87 80-bit long double and rounding that to DOUBLE. SQL has no long
double: ``CAST(sum AS DOUBLE) / count`` rounds twice and differs in the last bit on about a
quarter of rows, and even the correctly rounded quotient can differ from the long double's
double rounding when that quotient lands on a midpoint between two DOUBLEs.

Availability rule for label aggregates: a feature at ``t`` counts a label only when
``label_ts < t`` (the label is in its window by label time) AND ``available_at < t`` (the
pipeline could have used it: its daily file was ingested, ``lib/ingest/landing.py``
``label_availability``). The window ``[t - w, t)`` is taken over ``label_ts``. So the answer
depends only on recorded availability, never on when or in what ranges the build runs: the
hourly schedule, a range backfill, a bulk rebuild, the online state and ``reproduce`` agree.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import duckdb
import pandas as pd

from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.identifiers import quote
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

STRICTLY_BEFORE = "INTERVAL 1 MICROSECOND PRECEDING"
EXACT_DECIMAL = "DECIMAL(38, 9)"  # |values| < 1e29, nine decimals


def _seconds(window: str, feature: str) -> int:
    return int(parse_window(window, feature).total_seconds())


def _interval(window: str, feature: str) -> str:
    return f"INTERVAL {_seconds(window, feature)} SECOND"


def _partition(spec: DatasetSpec, entities: tuple[str, ...]) -> str:
    """``PARTITION BY`` columns of an entity tuple. ``PARTITION BY`` puts every NULL key in one
    partition, so an event with a NULL nullable key is put in a partition of its own (its id
    added as a partition column): it sees an empty history, exactly as an unseen entity's first
    event, and no other NULL-key event sees it."""
    keys = [quote(k) for k in entities]
    nulls = " OR ".join(f"{quote(k)} IS NULL" for k in entities if k in spec.nullable_keys)
    if nulls:
        keys.append(f"CASE WHEN {nulls} THEN {quote(spec.event_id)} END")
    return ", ".join(keys)


def _frame(spec: DatasetSpec, entities: tuple[str, ...], window: str | None, feature: str) -> str:
    start = "UNBOUNDED PRECEDING" if window is None else f"{_interval(window, feature)} PRECEDING"
    return (f"(PARTITION BY {_partition(spec, entities)} ORDER BY {quote(spec.event_ts)}"
            f" RANGE BETWEEN {start} AND {STRICTLY_BEFORE})")


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


CUMULATIVE_AGGS = ("count", "sum")  # WindowAggs read from the cumulative pass


def _exact(column: str) -> str:
    # Sums and means add exact decimals: DuckDB's SUM/AVG over DOUBLE rounds differently
    # depending on where the partition starts and ends, so features built hourly, in ranges or
    # in a from-raw rebuild would differ in the last bits (no bit-identical rerun).
    return f"CAST({quote(column)} AS {EXACT_DECIMAL})"


def _window_expr(f: WindowAgg, spec: DatasetSpec) -> str:
    frame, col = _frame(spec, f.entities, f.window, f.name), quote(f.column)
    return {
        "mean": f"AVG({_exact(f.column)}) OVER {frame}",
        "max": f"MAX({col}) OVER {frame}",
        "distinct": f"COUNT(DISTINCT {col}) OVER {frame}",
    }[f.agg]


def _ratio_part(part: str | float, exprs: dict[str, str]) -> str:
    """A ratio's numerator or denominator: an earlier feature's expression, an event column
    or a constant. A constant is written with an exponent so DuckDB reads it as the same DOUBLE
    the online path divides by (a plain ``0.1`` would be a DECIMAL)."""
    if is_constant(part):
        return f"{float(part):.17e}"
    return exprs.get(part, f"CAST(ev_w.{quote(part)} AS DOUBLE)")


def compile_feature_query(spec: DatasetSpec) -> str:
    """The DuckDB feature query of ``spec``.

    Inputs: relations ``ev`` (events incl. look-back history) and ``lb`` (entity keys,
    ``label_ts``, ``available_at``, ``label``); parameters ``$start`` and ``$end`` bound the events that get a
    feature row.

    Parameters
    ----------
    spec : DatasetSpec

    Returns
    -------
    str
        SQL yielding one row per event: id, ts, entity keys, one DOUBLE per feature.
    """
    eid, ts = quote(spec.event_id), quote(spec.event_ts)
    keys = [quote(k) for k in spec.entity_keys]
    window_cols, cumulative, label_feats, exprs = [], [], [], {}
    for f in spec.features:
        if isinstance(f, Numeric):
            exprs[f.name] = f"CAST(ev_w.{quote(f.column)} AS DOUBLE)"
        elif isinstance(f, Categorical):
            vocab = ", ".join(_sql_string(v) for v in f.vocabulary)
            exprs[f.name] = (
                f"CAST(COALESCE(list_position([{vocab}], CAST(ev_w.{quote(f.column)} AS VARCHAR)),"
                f" {len(f.vocabulary) + 1}) - 1 AS DOUBLE)"
            )
        elif isinstance(f, WindowAgg) and f.agg not in CUMULATIVE_AGGS:
            window_cols.append(f"{_window_expr(f, spec)} AS {quote(f.name)}")
            exprs[f.name] = f"CAST(ev_w.{quote(f.name)} AS DOUBLE)"
        elif isinstance(f, WindowAgg | TimeSincePrevious):
            cumulative.append(f)
        elif isinstance(f, LabelAgg):
            label_feats.append(f)
            p, c = _label_delta(f, "pos"), _label_delta(f, "cnt")
            exprs[f.name] = {
                "positives": f"CAST({p} AS DOUBLE)",
                "count": f"CAST({c} AS DOUBLE)",
                "rate": f"CAST({p} AS DOUBLE) / NULLIF({c}, 0)",
            }[f.agg]
        elif isinstance(f, Ratio):
            num, den = (_ratio_part(part, exprs) for part in (f.numerator, f.denominator))
            exprs[f.name] = f"({num}) / NULLIF({den}, 0)"

    attrs = [quote(a.name) for a in spec.attributes]
    ev_select = ", ".join([eid, ts, *keys, *attrs, *window_cols])
    target = f"{ts} >= $start AND {ts} < $end"
    # frames see the whole history; only target events are read further
    sql = f"WITH ev_w AS (SELECT * FROM (SELECT {ev_select} FROM ev) WHERE {target})"
    cum_ctes, cum_joins = _cumulative_reads(spec, cumulative, exprs)
    label_ctes, label_joins = _label_ctes(spec, label_feats, target)
    sql += "".join(f",\n{c}" for c in cum_ctes + label_ctes)
    join = "".join(cum_joins + label_joins)
    outputs = ", ".join(f"{exprs[f.name]} AS {quote(f.name)}" for f in spec.features)
    ev_keys = ", ".join(f"ev_w.{k}" for k in keys)
    sql += f"""
SELECT ev_w.{eid}, ev_w.{ts}, {ev_keys}, {outputs}
FROM ev_w{join}
ORDER BY ev_w.{ts}, ev_w.{eid}"""
    return sql


def _cumulative_reads(spec: DatasetSpec, feats: list[WindowAgg | TimeSincePrevious],
                      exprs: dict[str, str]) -> tuple[list[str], list[str]]:
    """count, sum and time-since-previous features as reads of one cumulative pass per entity
    tuple (module docstring). Sets each feature's DOUBLE expression in ``exprs``.

    ``cum_<entities>`` holds, for every event, the running count and one running
    DECIMAL(38, 9) sum per summed column up to and including its instant. A target event at
    ``t`` reads it as of the last instant before ``t`` (``cn_``: also that instant, the
    previous event's time) and before ``t - w`` for each window length ``w`` (``cw_``); a
    window's value is the difference, 0 when nothing is read. Events lacking a nullable key
    are left out of the pass, and an ASOF equality never matches a NULL key, so such an event
    sees an empty history and no other event sees it (as ``_partition`` gives the frames).
    """
    ts, ctes, joins = quote(spec.event_ts), [], []
    for entities in dict.fromkeys(f.entities for f in feats):
        group = [f for f in feats if f.entities == entities]
        tag, keys = _entity_tag(entities), ", ".join(quote(k) for k in entities)
        sums = list(dict.fromkeys(f.column for f in group if getattr(f, "agg", None) == "sum"))
        running = ", ".join(["COUNT(*) OVER w AS _n",
                             *(f"SUM({_exact(c)}) OVER w AS _s{i}" for i, c in enumerate(sums))])
        present = " AND ".join(f"{quote(k)} IS NOT NULL" for k in entities
                               if k in spec.nullable_keys) or "true"
        cum = quote(f"cum_{tag}")
        ctes.append(f"{cum} AS (SELECT {keys}, {ts} AS _ts, {running} FROM ev WHERE {present}"
                    f" WINDOW w AS (PARTITION BY {keys} ORDER BY {ts} RANGE UNBOUNDED PRECEDING))")

        def read(alias: str, before: str, on=entities, cum=cum) -> None:
            same = " AND ".join(f"ev_w.{quote(k)} = {alias}.{quote(k)}" for k in on)
            joins.append(f" ASOF LEFT JOIN {cum} {alias} ON {same} AND {alias}._ts < {before}")

        now = quote(f"cn_{tag}")
        read(now, f"ev_w.{ts}")
        then = {sec: quote(f"cw_{tag}_{sec}") for sec in sorted(
            {_seconds(f.window, f.name) for f in group if isinstance(f, WindowAgg)})}
        for sec, alias in then.items():
            read(alias, f"ev_w.{ts} - INTERVAL {sec} SECOND")
        for f in group:
            if isinstance(f, TimeSincePrevious):
                exprs[f.name] = (f"CASE WHEN {now}._ts >= ev_w.{ts} - {_interval(f.within, f.name)}"
                                 f" THEN date_diff('microsecond', {now}._ts, ev_w.{ts})"
                                 f" / CAST({f.unit_us} AS DOUBLE) END")
            else:
                col = "_n" if f.agg == "count" else f"_s{sums.index(f.column)}"
                exprs[f.name] = (f"CAST(COALESCE({now}.{col}, 0)"
                                 f" - COALESCE({then[_seconds(f.window, f.name)]}.{col}, 0)"
                                 " AS DOUBLE)")
    return ctes, joins


def _entity_tag(entities: tuple[str, ...]) -> str:
    return "__".join(entities)


def _label_delta(f: LabelAgg, what: str) -> str:
    """Labels with label_ts in [t - w, t), available before t = (available and label_ts < t)
    - (label_ts < t - w) + (label_ts < t - w but not yet available at t)."""
    tag, sec = _entity_tag(f.entities), _seconds(f.window, f.name)
    now, then, late = f"lbn_{tag}", f"lbw_{tag}_{sec}", f"lbx_{tag}_{sec}"
    return (f"(COALESCE({now}.{what}, 0) - COALESCE({then}.{what}, 0)"
            f" + COALESCE({late}.{what}, 0))")


def _label_ctes(spec: DatasetSpec, feats: list[LabelAgg], target: str) -> tuple[list[str], list[str]]:
    """Cumulative label counts per entity, read with ASOF joins: over the time a label became
    usable (later of ``label_ts`` and ``available_at``) at ``t``, over ``label_ts`` at
    ``t - window``, plus the few labels before ``t - window`` not yet available at ``t`` (only
    labels available more than a window after their label_ts can be such). Exact integer
    arithmetic, no per-row frames."""
    if not feats:
        return [], []
    eid, ts = quote(spec.event_id), quote(spec.event_ts)
    all_keys = ", ".join(quote(k) for k in spec.entity_keys)
    ctes = [f"lt AS (SELECT {eid} AS _eid, {ts} AS _ts, {all_keys} FROM ev WHERE {target})"]
    joins = []
    for entities in dict.fromkeys(f.entities for f in feats):
        tag, keys = _entity_tag(entities), ", ".join(quote(k) for k in entities)
        on = " AND ".join(f"lt.{quote(k)} = c.{quote(k)}" for k in entities)
        for name, order in ((f"lbc_{tag}", "label_ts"),
                            (f"lbu_{tag}", "greatest(label_ts, available_at)")):
            ctes.append(
                f"{name} AS (SELECT {keys}, {order} AS at, SUM(label) OVER w AS pos,"
                f" COUNT(*) OVER w AS cnt FROM lb"
                f" WINDOW w AS (PARTITION BY {keys} ORDER BY {order} RANGE UNBOUNDED PRECEDING))"
            )
        ctes.append(
            f"lbn_{tag} AS (SELECT lt._eid, c.pos, c.cnt FROM lt ASOF LEFT JOIN lbu_{tag} c"
            f" ON {on} AND c.at < lt._ts)"
        )
        joins.append(f" LEFT JOIN lbn_{tag} ON lbn_{tag}._eid = ev_w.{eid}")
        windows = {_seconds(f.window, f.name) for f in feats if f.entities == entities}
        for sec in sorted(windows):
            name = f"lbw_{tag}_{sec}"
            ctes.append(
                f"{name} AS (SELECT lt._eid, c.pos, c.cnt FROM lt ASOF LEFT JOIN lbc_{tag} c"
                f" ON {on} AND c.at < lt._ts - INTERVAL {sec} SECOND)"
            )
            joins.append(f" LEFT JOIN {name} ON {name}._eid = ev_w.{eid}")
            late = f"lbx_{tag}_{sec}"
            ctes.append(
                f"{late} AS (SELECT lt._eid, SUM(c.label) AS pos, COUNT(*) AS cnt FROM lt"
                f" JOIN (SELECT * FROM lb WHERE available_at > label_ts + INTERVAL {sec} SECOND) c"
                f" ON {on} AND c.label_ts < lt._ts - INTERVAL {sec} SECOND"
                f" AND c.available_at >= lt._ts GROUP BY lt._eid)"
            )
            joins.append(f" LEFT JOIN {late} ON {late}._eid = ev_w.{eid}")
    return ctes, joins


def available_sql(spec: DatasetSpec, available: str, label_ts: str) -> str:
    """SQL for a label row's availability time; rows written before it was recorded (an older
    lake, fixtures) get the on-time rule: end of their label day plus the ingest delay.

    Parameters
    ----------
    spec : DatasetSpec
    available, label_ts : str
        SQL expressions of the recorded ``available_at`` (may be NULL) and the label time.

    Returns
    -------
    str
        A TIMESTAMPTZ expression (the connection's time zone must be UTC, as ``connect`` sets).
    """
    delay = int(spec.label_ingest_delay.total_seconds())
    return (f"COALESCE({available}, date_trunc('day', {label_ts})"
            f" + INTERVAL 1 DAY + INTERVAL {delay} SECOND)")


def labels_with_entities_sql(spec: DatasetSpec, events: str, labels: str) -> str:
    """Join label rows to their event's entity keys: labels carry only the event id.

    Parameters
    ----------
    spec : DatasetSpec
    events, labels : str
        Relation expressions of the raw events and raw labels.

    Returns
    -------
    str
        SQL yielding entity keys, ``label_ts`` and ``label`` (DOUBLE) per label.
    """
    eid = quote(spec.event_id)
    key_cols = ", ".join(f"e.{quote(k)}" for k in spec.entity_keys)
    return (
        f"SELECT {key_cols}, l.{quote(spec.label_ts)} AS label_ts, "
        f"CAST(l.{quote(spec.label)} AS DOUBLE) AS label "
        f"FROM {labels} l JOIN (SELECT {eid}, {', '.join(quote(k) for k in spec.entity_keys)} "
        f"FROM {events}) e ON e.{eid} = l.{eid}"
    )


def compute_features(
    con: duckdb.DuckDBPyConnection,
    spec: DatasetSpec,
    events: str,
    labels: str | None,
    start: datetime,
    end: datetime,
) -> pd.DataFrame:
    """Features for events in ``[start, end)``.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Temp views ``ev`` and ``lb`` are (re)created on it.
    spec : DatasetSpec
    events : str
        Relation expression holding at least ``[start - lookback, end)``.
    labels : str or None
        Relation with the label rows: entity keys, ``label_ts``, ``label`` and optionally
        ``available_at`` (missing or null: the on-time rule of ``available_sql``); None means
        no labels yet.
    start, end : datetime
        UTC window.

    Returns
    -------
    DataFrame, one row per event in [start, end)
        Event id, timestamp, entity keys and one float column per feature.
    """
    con.execute(f"CREATE OR REPLACE TEMP VIEW ev AS SELECT * FROM {events}")
    # No labels yet: an empty relation with the entity keys' own types.
    lb = labels or (
        "(SELECT " + ", ".join(quote(k) for k in spec.entity_keys)
        + ", NULL::TIMESTAMPTZ AS label_ts, NULL::TIMESTAMPTZ AS available_at,"
        " NULL::DOUBLE AS label FROM ev WHERE false)"
    )
    has = "available_at" in con.execute(f"SELECT * FROM {lb} LIMIT 0").df().columns
    available = available_sql(spec, "available_at" if has else "NULL", "label_ts")
    con.execute(f"CREATE OR REPLACE TEMP VIEW lb AS SELECT * REPLACE ({available} AS available_at) FROM {lb}"
                if has else
                f"CREATE OR REPLACE TEMP VIEW lb AS SELECT *, {available} AS available_at FROM {lb}")
    df = con.execute(compile_feature_query(spec), {"start": start, "end": end}).df()
    return df


def chunk_ranges(start: datetime, end: datetime, chunk: timedelta) -> Iterator[tuple[datetime, datetime]]:
    """Consecutive ``(lo, hi)`` ranges of length ``chunk`` covering [start, end) (the last may be shorter).

    Parameters
    ----------
    start, end : datetime
    chunk : timedelta

    Yields
    ------
    lo, hi : datetime
    """
    lo = start
    while lo < end:
        hi = min(lo + chunk, end)
        yield lo, hi
        lo = hi
