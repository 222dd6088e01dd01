"""What the monitoring tables read from the lake: scored events with their labels as known at a
horizon, the label horizon itself, and which prediction days newly arrived labels touch."""

# ruff: noqa: S608  (identifiers pass through quote(), file lists through parquet_relation())
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

from ml_assets.lib.core.catalog import BATCH_SCORES, RAW_EVENTS, RAW_LABELS, Catalog
from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.identifiers import quote
from ml_assets.lib.core.lake import connect, parquet_relation
from ml_assets.lib.core.paths import DataPaths
from ml_assets.lib.features.build import MissingUpstreamError
from ml_assets.lib.ingest.landing import EARLY_REPORTS, LABELS
from ml_assets.lib.monitoring.labelable import labelable_mask, unlabelable_sql


def event_files(paths: DataPaths, spec: DatasetSpec, asset: str, lo: datetime, hi: datetime,
                strict: bool) -> list[Path]:
    """The lake files of one event-side table (at the spec's partition grain) in [lo, hi).

    Parameters
    ----------
    paths : DataPaths
    spec : DatasetSpec
    asset : str
        Catalog table name (``catalog.EVENT_TABLES``).
    lo, hi : datetime
        UTC window.
    strict : bool
        Whether every partition must exist.

    Returns
    -------
    list of Path

    Raises
    ------
    MissingUpstreamError
        ``strict`` and a partition is missing.
    """
    table = Catalog(paths.lake, spec.partition_grain).table(asset)
    files, missing = table.coverage(lo, hi)
    if strict and missing:
        raise MissingUpstreamError(
            f"{asset} lacks {len(missing)} {table.grain} partition(s) in [{lo:%Y-%m-%d}, "
            f"{hi:%Y-%m-%d}) (first: {table.key(missing[0])}); materialize {asset} for those "
            f"partitions first")
    return files


def label_horizon(paths: DataPaths, asset: str = RAW_LABELS) -> datetime | None:
    """Labels are known up to the end of the latest ingested day of this label feed.

    Parameters
    ----------
    paths : DataPaths
    asset : str
        Label-feed table (``raw_labels`` or the early reports).

    Returns
    -------
    datetime or None
        UTC midnight after the latest partition; None when none has landed.
    """
    last = Catalog(paths.lake).table(asset).latest()
    return None if last is None else last + timedelta(days=1)


def load_scores(paths: DataPaths, spec: DatasetSpec, lo: datetime, hi: datetime,
                horizon: datetime | None, strict_lo: datetime | None = None) -> pd.DataFrame:
    """Scored events in [lo, hi) with their labels as known at ``horizon``.

    Parameters
    ----------
    paths : DataPaths
    spec : DatasetSpec
    lo, hi : datetime
        Event-time window, UTC.
    horizon : datetime or None
        Labels with ``label_ts`` before it are joined; None joins none.
    strict_lo : datetime, optional
        Partitions from here on must all exist; earlier ones (baselines, calibration) may be missing.
        Defaults to ``lo``.

    Returns
    -------
    DataFrame, one row per scored event and model version
        ``event_id``, ``event_ts``, ``model_version``, ``role``, ``score``, ``decision``,
        ``acted``, ``label`` (NaN unless known), ``value`` (the business metric's value column,
        else 1.0), ``labelable`` (bool, ``labelable.labelable_mask``: the spec's
        ``unlabelable_when`` and ``label_timeout_days`` at ``horizon``; every row without a
        horizon) and ``day`` (UTC).

    Raises
    ------
    MissingUpstreamError
        A ``batch_scores`` (or, for the value column or ``unlabelable_when``, ``raw_events``)
        partition from ``strict_lo`` on is missing.
    """
    strict_lo = strict_lo or lo
    files = event_files(paths, spec, BATCH_SCORES, lo, strict_lo, False) + \
        event_files(paths, spec, BATCH_SCORES, strict_lo, hi, True)
    eid, ets = quote(spec.event_id), quote(spec.event_ts)
    con = connect()
    sql = (f"SELECT s.{eid} AS event_id, s.{ets} AS event_ts, s.model_version, s.role, s.score, "
           f"s.decision, s.acted FROM {parquet_relation(files)} s")
    label_files = Catalog(paths.lake).table(RAW_LABELS).files(lo, horizon) if horizon else []
    params = {"horizon": horizon} if label_files else {}
    if label_files:
        sql = (f"SELECT x.*, CAST(l.{quote(spec.label)} AS DOUBLE) AS label FROM ({sql}) x "
               f"LEFT JOIN (SELECT {eid}, {quote(spec.label)} FROM {parquet_relation(label_files)} "
               f"WHERE {quote(spec.label_ts)} < $horizon) l ON l.{eid} = x.event_id")
    else:
        sql = f"SELECT *, CAST(NULL AS DOUBLE) AS label FROM ({sql})"
    metric = spec.business_metric
    value_column = metric.value_column if metric else None
    # Without a horizon no label is known, so which events will never get one does not matter.
    declared = bool(spec.unlabelable_when) and horizon is not None
    if value_column or declared:
        # One join to the raw events, for only the columns needed.
        raw_files = event_files(paths, spec, RAW_EVENTS, strict_lo, hi, True)
        columns = {spec.event_id, *([value_column] if value_column else []),
                   *(c for c, _, _ in spec.unlabelable_when if declared)}
        value = f"e.{quote(value_column)}" if value_column else "1.0"
        predicate, filter_params = unlabelable_sql(spec.unlabelable_when, "e") if declared \
            else ("FALSE", {})
        params |= filter_params
        # A row without its raw event (before strict_lo) is not known to be unlabelable.
        sql = (f"SELECT y.*, {value} AS value, COALESCE(e.{eid} IS NOT NULL AND ({predicate}), "
               f"FALSE) AS declared_unlabelable FROM ({sql}) y LEFT JOIN "
               f"(SELECT {', '.join(quote(c) for c in sorted(columns))} "
               f"FROM {parquet_relation(raw_files)}) e ON e.{eid} = y.event_id")
    else:
        sql = f"SELECT *, 1.0 AS value, FALSE AS declared_unlabelable FROM ({sql})"
    df = con.execute(sql, params).df()
    df["labelable"] = labelable_mask(df["label"].to_numpy(dtype="float64"), df["event_ts"],
                                     df.pop("declared_unlabelable").to_numpy(dtype=bool), horizon,
                                     spec.label_timeout_days)
    df["day"] = df["event_ts"].dt.floor("D")
    return df


def champion_of(day_scores: pd.DataFrame) -> str | None:
    """The version whose decisions acted that day (most champion rows).

    Parameters
    ----------
    day_scores : DataFrame
        Scored rows with ``role`` and ``model_version``.

    Returns
    -------
    str or None
        None when no row is the champion's.
    """
    champ = day_scores.loc[day_scores["role"] == "champion", "model_version"]
    return None if champ.empty else str(champ.value_counts().idxmax())


def label_file_state(paths: DataPaths) -> dict[str, str]:
    """Ingested label-feed partitions with a signature that changes on rewrite.

    Parameters
    ----------
    paths : DataPaths

    Returns
    -------
    dict of str to str
        ``"asset/file"`` to ``"<size bytes>:<mtime ns>"``.
    """
    out, catalog = {}, Catalog(paths.lake)
    for asset in (LABELS.asset, EARLY_REPORTS.asset):
        for p in catalog.table(asset).files():
            st = p.stat()
            out[f"{asset}/{p.name}"] = f"{st.st_size}:{st.st_mtime_ns}"
    return out


def affected_days(paths: DataPaths, spec: DatasetSpec, names: list[str],
                  waiting: list[datetime] = ()) -> tuple[list[datetime], list[datetime]]:
    """Prediction days whose labels are in these label-feed files (plus days still ``waiting``
    from earlier calls), split by whether they can be evaluated now.

    Parameters
    ----------
    paths : DataPaths
    spec : DatasetSpec
    names : list of str
        Label-feed files as ``"asset/file"``.
    waiting : list of datetime, optional
        Days returned as waiting before.

    Returns
    -------
    ready : list of datetime
        UTC days, ascending, whose scores are all in the lake.
    waiting : list of datetime
        UTC days, ascending, scored in part: a later partition or a backfill completes them, so
        they must be remembered, not dropped. Days without any score were never predicted
        and are left out.
    """
    catalog = Catalog(paths.lake, spec.partition_grain)
    days = set(waiting)
    if names:
        files = [catalog.path_of(n) for n in names]
        days |= set(connect().execute(
            f"SELECT DISTINCT date_trunc('day', {quote(spec.event_ts)}) AS d "
            f"FROM {parquet_relation(files)} ORDER BY d").df()["d"].dt.to_pydatetime())
    ready, partial = [], []
    for d in sorted(days):
        d = d.replace(tzinfo=UTC) if d.tzinfo is None else d.astimezone(UTC)
        scores = catalog.table(BATCH_SCORES)
        if not scores.missing(d, d + timedelta(days=1)):
            ready.append(d)
        elif scores.files(d, d + timedelta(days=1)):
            partial.append(d)
    return ready, partial


def contiguous_ranges(days: list[datetime]) -> list[tuple[datetime, datetime]]:
    """Runs of consecutive days.

    Parameters
    ----------
    days : list of datetime

    Returns
    -------
    list of (first, last)
        Inclusive runs, ascending.
    """
    ranges: list[list[datetime]] = []
    for d in sorted(days):
        if ranges and d - ranges[-1][1] == timedelta(days=1):
            ranges[-1][1] = d
        else:
            ranges.append([d, d])
    return [(a, b) for a, b in ranges]
