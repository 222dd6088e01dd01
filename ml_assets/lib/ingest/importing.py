"""``ml-assets land``: CSV/Parquet files as they come -> the landing layout, one file per UTC day.

Sources may be CSV (``.csv``, ``.csv.gz``) or Parquet files, directories (read recursively,
Hive ``key=value/`` directories become columns) or globs. Every column is read as text (CSV
entirely so: string ids keep their leading zeros) and cast deliberately, in DuckDB:

- timestamps must carry a UTC offset (``2026-03-01T10:00:00+02:00``, ``...Z``) or be typed
  with a zone; they become ``timestamp[us, UTC]`` (the same instant). Naive, empty or
  unparseable values refuse the import naming file, column, row (data rows counted from 1,
  a CSV header excluded) and value;
- integer ids become ``int64`` when every value is an integer's canonical spelling, numbers
  ``float64`` when every value is a number, labels ``int8`` when every value is 0/1/true/false.
  Otherwise the column stays text (labels with true/false written as 1/0), so the pipeline's
  contract quarantines exactly the bad rows with reasons; the report names the column;
- columns the spec does not know are dropped and reported; a spec column missing from a file
  (after ``--map src=dst`` renames) refuses the import naming the file.

Rows are written to ``landing/<kind>/YYYY-MM-DD.parquet`` by the UTC day of their timestamp
(events by ``event_ts``, labels and reports by ``label_ts``), sorted by timestamp and id, so
the same input gives byte-identical files. Landing files are append-only
(``ingest.integrity``): a day whose file already holds the same rows is left unchanged, one
holding other rows refuses the whole import. Everything is validated before anything is
written. All sources of one command are held in memory: land long histories in slices.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.lake import DAY_FILE_FORMAT, connect
from ml_assets.lib.core.paths import DataPaths, atomic_write_bytes
from ml_assets.lib.ingest.contracts import (
    CANONICAL_TS,
    ID,
    INTEGER_TEXT,
    LABEL,
    NUMBER,
    TIMESTAMP,
    event_kinds,
    label_kinds,
)

SUFFIXES = (".csv", ".csv.gz", ".parquet")
# An instant as text: ISO date and time with an explicit offset (Z, +HH, +HHMM, +HH:MM). A
# zoned Parquet timestamp read as text ("2026-03-01 08:00:00+00") is one too.
OFFSET_TS = r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)? ?([Zz]|[+-]\d{2}(:?\d{2})?)"
META = ["_source", "_row"]


class LandingImportError(ValueError):
    """The sources cannot be landed as they are; one line naming file, column, row, value."""


@dataclass(frozen=True)
class Feed:
    """One landing feed: its folder under ``landing/``, columns (in contract order) and kinds."""

    name: str  # "events" | "labels" | "reports"
    kinds: dict[str, str]  # {column: kind}, contract order
    ts: str  # the timestamp whose UTC day names the file
    id: str


def feeds(spec: DatasetSpec) -> dict[str, Feed]:
    """The feeds ``spec`` lands: events, labels and (with ``early_reports``) reports."""
    labels = label_kinds(spec)
    out = {"events": Feed("events", event_kinds(spec), spec.event_ts, spec.event_id),
           "labels": Feed("labels", labels, spec.label_ts, spec.event_id)}
    if spec.early_reports:
        out["reports"] = Feed("reports", labels, spec.label_ts, spec.event_id)
    return out


def parse_mapping(pairs: list[str]) -> dict[str, str]:
    """``["src=dst", ...]`` -> ``{src: dst}``; a pair without ``=`` raises LandingImportError."""
    bad = [p for p in pairs if p.count("=") != 1 or "" in p.split("=")]
    if bad:
        raise LandingImportError(f"--map {bad[0]!r}: write it as your_column=spec_column")
    return dict(p.split("=") for p in pairs)


def source_files(patterns: list[str]) -> tuple[list[Path], list[Path]]:
    """The data files behind files, directories (recursive) and globs.

    Parameters
    ----------
    patterns : list of str
        Paths as given on the command line.

    Returns
    -------
    (list of pathlib.Path, list of pathlib.Path)
        Data files (``SUFFIXES``), sorted and deduplicated; other files a directory or glob
        holds (``_SUCCESS``, checksums), ignored and reported.

    Raises
    ------
    LandingImportError
        A pattern matches no data file, or is the path of a file of another format.
    """
    files, ignored = set(), set()
    for pattern in patterns:
        matches = [Path(m) for m in sorted(glob.glob(pattern, recursive=True))]
        found = set()
        for m in matches:
            inside = sorted(p for p in m.rglob("*") if p.is_file()) if m.is_dir() else [m]
            data = {p for p in inside if p.name.endswith(SUFFIXES)}
            if not m.is_dir() and not data and not glob.has_magic(pattern):
                raise LandingImportError(f"{m}: not a {', '.join(SUFFIXES)} file")
            found |= data
            ignored |= set(inside) - data
        if not found:
            raise LandingImportError(f"{pattern}: no {', '.join(SUFFIXES)} file there")
        files |= found
    return sorted(files), sorted(ignored)


def _q(name: str) -> str:  # source column names are anyone's: escape, don't validate
    return '"' + name.replace('"', '""') + '"'


def _relation(path: Path) -> str:
    literal = "'" + str(path).replace("'", "''") + "'"
    if path.name.endswith(".parquet"):  # partition values stay text: "007" is not 7
        return f"read_parquet({literal}, hive_partitioning = true, hive_types_autocast = false)"
    return f"read_csv({literal}, all_varchar = true, header = true)"


@dataclass
class _Read:
    tables: list[pa.Table]
    missing: dict[tuple[str, ...], list[tuple[str, list[str]]]]  # -> [(file, its columns)]
    dropped: set[str]
    renamed: dict[str, str]


def _read(con: duckdb.DuckDBPyConnection, files: list[Path], feed: Feed,
          mapping: dict[str, str]) -> _Read:
    """Each file's spec columns as text, with ``_source`` and ``_row`` (1-based)."""
    out = _Read([], {}, set(), {})
    for path in files:
        relation = _relation(path)
        try:
            names = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()]
        except duckdb.Error as exc:
            raise LandingImportError(f"{path}: unreadable ({str(exc).splitlines()[0]})") from exc
        renames = {s: d for s, d in mapping.items() if s in names and d in feed.kinds}
        after = [renames.get(n, n) for n in names]
        twice = sorted({a for a in after if after.count(a) > 1})
        if twice:
            raise LandingImportError(f"{path}: column(s) {twice} appear twice after --map; "
                                     "map only one source column to each spec column")
        missing = tuple(c for c in feed.kinds if c not in after)
        if missing:
            out.missing.setdefault(missing, []).append((str(path), names))
            continue
        out.dropped |= {n for n in after if n not in feed.kinds}
        out.renamed |= renames
        source = {a: n for n, a in zip(names, after, strict=True)}
        select = ", ".join(f"CAST({_q(source[c])} AS VARCHAR) AS {_q(c)}" for c in feed.kinds)
        table = con.sql(f"SELECT {select} FROM {relation}").to_arrow_table()
        table = pa.table({c: table[c].cast(pa.string()) for c in feed.kinds})
        out.tables.append(table.append_column("_source", pa.array([str(path)] * len(table)))
                          .append_column("_row", pa.array(np.arange(1, len(table) + 1))))
    return out


def _missing_error(missing: dict[tuple[str, ...], list[tuple[str, list[str]]]],
                   mapping: dict[str, str]) -> str:
    columns, files = next(iter(missing.items()))
    (first, names), more = files[0], sum(len(f) for f in missing.values()) - 1
    mapped = f", after --map {mapping}" if mapping else ""
    return (f"{first}{f' and {more} more file(s)' if more else ''}: spec column(s) "
            f"{list(columns)} missing (its columns: {names}{mapped}); if it is there under "
            f"another name, map it: --map your_col={columns[0]}")


def _first(con: duckdb.DuckDBPyConnection, query: str) -> tuple | None:
    rows = con.execute(query).fetchall()  # all of them: the connection is reused
    return rows[0] if rows else None


def _check_timestamps(con: duckdb.DuckDBPyConnection, feed: Feed) -> None:
    """Refuse the first naive, unparseable or empty timestamp, naming file, row and value."""
    c = _q(feed.ts)
    row = _first(con, f"""
        SELECT problem, _source, _row, v FROM (
          SELECT _source, _row, {c} AS v, CASE
            WHEN v IS NULL THEN 3
            WHEN regexp_full_match(trim(v), '{OFFSET_TS}')
                 AND TRY_CAST(trim(v) AS TIMESTAMPTZ) IS NOT NULL THEN 0
            WHEN TRY_CAST(trim(v) AS TIMESTAMP) IS NOT NULL THEN 1
            ELSE 2 END AS problem FROM src)
        WHERE problem > 0 ORDER BY problem, _source, _row LIMIT 1""")
    if row is None:
        return
    problem, source, n, value = row
    raise LandingImportError({
        1: f"{source}: column {feed.ts!r} holds timestamps without a UTC offset (e.g. row {n}: "
           f"{value!r}); add the UTC offset (2026-03-01T10:00:00+02:00, or Z for UTC) and rerun",
        2: f"{source}: row {n}: column {feed.ts!r} value {value!r} is not a timestamp with a UTC "
           "offset; fix that row and rerun (nothing was written)",
        3: f"{source}: row {n}: column {feed.ts!r} is empty; every row needs one (its UTC day "
           "names its landing file); fix that row and rerun (nothing was written)",
    }[problem])


def _text_or_typed(kind: str, id_type: str, column: str) -> tuple[str, str, str, str] | None:
    """(text expression, its failing-value predicate, typed expression, what a value must be)
    for a column cast only when every value casts; None for columns that stay text."""
    v = _q(column)
    if kind == ID and id_type == "int64":
        return (v, f"NOT regexp_full_match({v}, '{INTEGER_TEXT}') OR TRY_CAST({v} AS BIGINT) "
                   "IS NULL", f"CAST({v} AS BIGINT)", "an integer")
    if kind == NUMBER:
        return v, f"TRY_CAST({v} AS DOUBLE) IS NULL", f"CAST({v} AS DOUBLE)", "a number"
    if kind == LABEL:  # true/false as 1/0 even when the column stays text
        text = f"CASE lower(trim({v})) WHEN 'true' THEN '1' WHEN 'false' THEN '0' ELSE {v} END"
        return (text, f"coalesce(TRY_CAST({text} AS DOUBLE) IN (0, 1), false) = false",
                f"CAST(CAST({text} AS DOUBLE) AS TINYINT)", "0, 1, true or false")
    return None


def _typed(con: duckdb.DuckDBPyConnection, feed: Feed, id_type: str,
           ) -> tuple[pa.Table, dict[str, str]]:
    """The rows of ``src`` in landing types, sorted by time and id, with ``_day``; and the
    columns left as text with why."""
    _check_timestamps(con, feed)
    exprs = {c: f"CAST(trim({_q(c)}) AS TIMESTAMPTZ)" if k == TIMESTAMP else _q(c)
             for c, k in feed.kinds.items()}
    as_text = {}
    for c, k in feed.kinds.items():
        plan = _text_or_typed(k, id_type, c)
        if plan is None:
            continue
        text, failing, typed, what = plan
        bad = f"{_q(c)} IS NOT NULL AND ({failing})"
        count, source, n, value = _first(
            con, f"SELECT count(*) OVER (), _source, _row, {_q(c)} FROM src WHERE {bad} "
                 "ORDER BY _source, _row LIMIT 1") or (0, None, None, None)
        exprs[c] = text if count else typed
        if count:
            as_text[c] = (f"{count} value(s) not {what} (first: {source} row {n}: {value!r}); "
                          "kept as text, the pipeline quarantines those rows with reasons")
    select = ", ".join(f"{e} AS {_q(c)}" for c, e in exprs.items())
    table = con.sql(
        f"SELECT {select}, strftime({exprs[feed.ts]}, '{DAY_FILE_FORMAT}') AS _day FROM src "
        f"ORDER BY {_q(feed.ts)}, {_q(feed.id)}, _source, _row").to_arrow_table()
    columns = {c: table[c].cast(CANONICAL_TS if feed.kinds[c] == TIMESTAMP else
                                pa.string() if pa.types.is_string_view(table[c].type)
                                else table[c].type) for c in feed.kinds}
    return pa.table({**columns, "_day": table["_day"].cast(pa.string())}), as_text


def _parquet_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()


def _same_rows(path: Path, table: pa.Table, data: bytes) -> bool:
    if path.read_bytes() == data:
        return True
    try:
        return pq.read_table(path).equals(table)
    except Exception:  # noqa: BLE001 - an unreadable file holds other rows, whatever the error
        return False


def _by_day(table: pa.Table) -> dict[str, pa.Table]:
    days = table["_day"].to_numpy(zero_copy_only=False)
    names, starts = np.unique(days, return_index=True)  # rows are sorted by time: days contiguous
    ends = [*starts[1:], len(days)]
    body = table.drop_columns(["_day"])
    return {d: body.slice(s, e - s) for d, s, e in zip(names, starts, ends, strict=True)}


def land(paths: DataPaths, spec: DatasetSpec, sources: dict[str, list[str]],
         mapping: dict[str, str] | None = None) -> dict[str, dict]:
    """Import CSV/Parquet sources into daily landing files (see the module docstring).

    Parameters
    ----------
    paths : DataPaths
        The data directory; files go to ``landing/<feed>/YYYY-MM-DD.parquet``.
    spec : DatasetSpec
        Columns, their kinds and ``id_type``.
    sources : dict
        ``{"events"|"labels"|"reports": [file, directory or glob, ...]}``.
    mapping : dict, optional
        ``{source column: spec column}``, applied in every feed that has the spec column.

    Returns
    -------
    dict
        Per feed: ``files`` (read), ``ignored_files``, ``rows``, ``written`` and ``unchanged``
        (days, ``YYYY-MM-DD``), ``first_day``, ``last_day``, ``dropped`` (columns),
        ``renamed`` (``{source: spec column}``), ``as_text`` (``{column: why}``).

    Raises
    ------
    LandingImportError
        An unknown feed or ``--map`` target, an unreadable source, a missing column, a naive,
        empty or unparseable timestamp, or a day whose landing file holds other rows (or is
        covered by hourly files). Nothing is written then.
    """
    mapping = mapping or {}
    known = feeds(spec)
    stray = [f for f in sources if f not in known]
    if stray:
        raise LandingImportError(f"no {stray[0]} feed in spec {spec.name!r} (it lands "
                                 f"{sorted(known)})")
    targets = set().union(*(f.kinds for f in known.values()))
    unknown = [f"{s}={d}" for s, d in mapping.items() if d not in targets]
    if unknown:
        raise LandingImportError(f"--map {unknown[0]}: no spec column of that name (they are "
                                 f"{sorted(targets)})")
    con = connect()
    report, planned, conflicts = {}, [], []
    for name, patterns in sources.items():
        feed = known[name]
        files, ignored = source_files(patterns)
        read = _read(con, files, feed, mapping)
        if read.missing:
            raise LandingImportError(_missing_error(read.missing, mapping))
        con.register("src", pa.concat_tables(read.tables))
        table, as_text = _typed(con, feed, spec.id_type)
        con.unregister("src")
        written, unchanged = [], []
        for day, rows in _by_day(table).items():
            path = paths.landing / name / f"{day}.parquet"
            data = _parquet_bytes(rows)
            hourly = sorted(path.parent.glob(f"{day}T*.parquet"))
            if hourly:
                conflicts.append(f"{hourly[0].relative_to(paths.root)} already covers part of "
                                 f"{day} (hourly files and a daily file cannot both land)")
            elif not path.exists():
                planned.append((path, data))
                written.append(day)
            elif _same_rows(path, rows, data):
                unchanged.append(day)
            else:
                conflicts.append(f"{path.relative_to(paths.root)} already holds other rows "
                                 f"than the {len(rows)} landed now")
        days = sorted(written + unchanged)
        report[name] = {"files": [str(f) for f in files], "ignored_files": [str(f) for f in ignored],
                        "rows": len(table), "written": written, "unchanged": unchanged,
                        "first_day": days[0] if days else None,
                        "last_day": days[-1] if days else None, "dropped": sorted(read.dropped),
                        "renamed": read.renamed, "as_text": as_text}
    if conflicts:
        more = f" (and {len(conflicts) - 1} more)" if len(conflicts) > 1 else ""
        raise LandingImportError(
            f"{conflicts[0]}{more}: landing files are append-only, nothing was written. For a "
            "deliberate re-delivery replace the file, then record it: `ml-assets landing "
            "accept <file> --reason ...`")
    for path, data in planned:
        atomic_write_bytes(path, data)
    return report
