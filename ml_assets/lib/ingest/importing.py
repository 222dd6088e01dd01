"""``ml-assets land``: CSV/Parquet files as they come -> the landing layout, one file per UTC day.

Sources may be CSV (``.csv``, ``.csv.gz``) or Parquet files (suffixes in any case),
directories (read recursively; dot files such as ``._x.csv`` are ignored and reported; Hive
``key=value/`` folders below the directory named become columns, never replacing a column of
the file) or globs (a path that exists is never a glob). The same file reached twice (paths,
symlinks, the same content gzipped) is read once. CSV is RFC 4180 with a header, ``,`` (or
``--delimiter``), ``"`` quotes, no comment lines; a row of another width refuses the import.
Every column is read as text (CSV entirely so: string ids keep their leading zeros) and cast
deliberately, in DuckDB:

- timestamps must carry a UTC offset (``2026-03-01T10:00:00+02:00``, ``...Z``) or be typed
  with a zone; they become ``timestamp[us, UTC]`` (the same instant). Naive, empty or
  unparseable values refuse the import naming file, column, row (data rows counted from 1,
  a CSV header excluded) and value;
- integer ids become ``int64`` when every value is an integer's canonical spelling, numbers
  ``float64`` when every value is a number, labels ``int8`` when every value is a yes/no
  spelling (``BOOLEAN_SPELLINGS``: 1/0, true/false, t/f, yes/no, y/n; any case, surrounding
  blanks ignored). Otherwise the column stays text (labels' spellings written as 1/0), so the
  pipeline's contract quarantines exactly the bad rows with reasons; the report names the
  column, the first bad value's file and row;
- rows before the spec's ``start``, at or after its ``end`` or in the future refuse the
  import (they could never be ingested);
- columns the spec does not know are dropped and reported; a spec column missing from a file
  (after ``--map src=dst`` renames) refuses the import naming the file.

Rows are written to ``landing/<kind>/YYYY-MM-DD.parquet`` by the UTC day of their timestamp
(events by ``event_ts``, labels and reports by ``label_ts``), sorted by timestamp and id, so
the same input gives byte-identical files. Landing files are append-only
(``ingest.integrity``), so a day that already landed (its file, or parts a writer put in
``YYYY-MM-DD/``) gets the next export's rows as a new part,
``YYYY-MM-DD/part-<landed, UTC>-<sha256 prefix>.parquet`` (``landing_layout``: a period in
parts), holding only the rows not landed yet: a row with the same id and values as a landed
one is "already landed" and not written again (a rerun of the same export writes nothing),
one whose id landed with other values is written and reported "conflicting" (the ingest
quarantines it as a duplicate, or both labels as conflicting). Everything is validated before
anything is written, and a file is created, never overwritten: a day file a concurrent run
created meanwhile with other rows stops this run there. All sources of one command are held
in memory: land long histories in slices.
"""

from __future__ import annotations

import csv
import glob
import gzip
import hashlib
import io
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.lake import DAY, DAY_FILE_FORMAT, connect
from ml_assets.lib.core.lake_store import parquet_bytes
from ml_assets.lib.core.paths import DataPaths, create_file_bytes
from ml_assets.lib.ingest.contracts import (
    CANONICAL_TS,
    FUTURE_TOLERANCE,
    ID,
    INTEGER_TEXT,
    LABEL,
    NUMBER,
    TIMESTAMP,
    event_kinds,
    label_kinds,
)
from ml_assets.lib.ingest.landing_layout import Layout

SUFFIXES = (".csv", ".csv.gz", ".parquet")
# An instant as text: ISO date and time with an explicit offset (Z, +HH, +HHMM, +HH:MM; at
# most 23:59, DuckDB would shift by +99:99). A zoned Parquet timestamp read as text
# ("2026-03-01 08:00:00+00") is one too.
OFFSET_TS = (r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)? ?"
             r"([Zz]|[+-]([01]\d|2[0-3])(:?[0-5]\d)?)")
# Ends like a time with an offset (an impossible one, when OFFSET_TS does not match it).
OFFSET_LIKE = r"\d:\d\d(:\d\d(\.\d+)?)? ?[+-]\d\d(:?\d\d)?$"
META = ["_source", "_row"]
# The usual spellings of a yes/no value (compared lower-cased and trimmed): a label written
# "Yes"/"n"/"TRUE" is as good as 1/0, not text for the contract to quarantine.
BOOLEAN_SPELLINGS = {"1": 1, "0": 0, "true": 1, "false": 0, "t": 1, "f": 0, "yes": 1, "no": 0,
                     "y": 1, "n": 0}


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
    """``["src=dst", ...]`` -> ``{src: dst}``; a pair without ``=`` or a source column mapped
    twice raises LandingImportError."""
    bad = [p for p in pairs if p.count("=") != 1 or "" in p.split("=")]
    if bad:
        raise LandingImportError(f"--map {bad[0]!r}: write it as your_column=spec_column")
    split = [p.split("=") for p in pairs]
    twice = sorted({s for s, _ in split if sum(t == s for t, _ in split) > 1})
    if twice:
        raise LandingImportError(f"--map maps {twice[0]!r} more than once; give one target")
    return dict(split)


@dataclass(frozen=True)
class Source:
    """One data file and the Hive ``key=value`` folders between it and the directory named."""

    path: Path
    hive: tuple[tuple[str, str], ...] = ()


def _is_data(path: Path) -> bool:
    return path.name.lower().endswith(SUFFIXES)  # .CSV is a CSV


def _hidden(path: Path, root: Path) -> bool:
    """A dot file or folder below ``root`` (``.DS_Store``, ``._x.csv`` AppleDouble, ``.git``)."""
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def _in_directory(root: Path) -> tuple[list[Source], set[Path]]:
    inside = sorted(p for p in root.rglob("*") if p.is_file())
    data = [p for p in inside if _is_data(p) and not _hidden(p, root)]
    hive = [tuple(tuple(part.split("=", 1)) for part in p.relative_to(root).parent.parts
                  if "=" in part) for p in data]
    return [Source(p, h) for p, h in zip(data, hive, strict=True)], set(inside) - set(data)


def source_files(patterns: list[str]) -> tuple[list[Source], list[Path]]:
    """The data files behind files, directories (recursive) and globs.

    A path that exists is taken literally (``orders[1].csv`` is that file, not a pattern);
    only a path that does not exist is expanded as a glob. Hive columns come only from
    ``key=value`` folders below a directory named (or matched); a file named directly has none.

    Parameters
    ----------
    patterns : list of str
        Paths as given on the command line.

    Returns
    -------
    (list of Source, list of pathlib.Path)
        Data files (``SUFFIXES``, any case) with their Hive values, sorted, one per resolved
        path; other files a directory or glob holds (``_SUCCESS``, checksums, dot files),
        ignored and reported.

    Raises
    ------
    LandingImportError
        A pattern matches no data file, or is the path of a file of another format.
    """
    found: dict[Path, Source] = {}
    ignored = set()
    for pattern in patterns:
        literal = Path(pattern).exists()
        matches = [Path(pattern)] if literal else [
            Path(m) for m in sorted(glob.glob(pattern, recursive=True))]
        hits = 0
        for m in matches:
            if m.is_dir():
                data, other = _in_directory(m)
            elif _is_data(m):
                data, other = [Source(m)], set()
            elif literal:
                raise LandingImportError(f"{m}: not a {', '.join(SUFFIXES)} file")
            else:
                data, other = [], {m}
            for source in data:  # the same file reached twice (abs + rel, symlink) is read once
                found.setdefault(source.path.resolve(), source)
            ignored |= other
            hits += len(data)
        if not hits:
            raise LandingImportError(f"{pattern}: no {', '.join(SUFFIXES)} file there")
    return sorted(found.values(), key=lambda s: str(s.path)), sorted(ignored)


def _q(name: str) -> str:  # source column names are anyone's: escape, don't validate
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _relation(links: list[Path], delimiter: str, file_column: str | None = None) -> str:
    """DuckDB reads ``links`` (safely named links to the sources, so no glob or Hive guessing;
    all CSV or all Parquet) as text; CSV dialect pinned: no comment or skipped lines, RFC 4180
    quotes, a row of another width is an error. ``file_column`` adds each row's link."""
    listed = "[" + ", ".join(_literal(str(link)) for link in links) + "]"
    file = f", filename = {_literal(file_column)}" if file_column else ""
    if links[0].name.endswith(".parquet"):
        return f"read_parquet({listed}, hive_partitioning = false{file})"
    return (f"read_csv({listed}, all_varchar = true, header = true, "
            f"delim = {_literal(delimiter)}, quote = '\"', escape = '\"', comment = '', "
            f"skip = 0, strict_mode = true, null_padding = false, hive_partitioning = false{file})")


def _open(path: Path) -> BinaryIO:  # a .csv.gz decompressed: the same rows either way
    return gzip.open(path, "rb") if path.name.lower().endswith(".gz") else open(path, "rb")


def _content_sha(path: Path) -> str:
    """SHA-256 of the file's content (``.csv.gz`` decompressed)."""
    with _open(path) as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _header(path: Path, delimiter: str) -> list[str]:
    """The file's own column names (DuckDB renames a repeated one to ``name_1``)."""
    if path.name.lower().endswith(".parquet"):
        return pq.read_schema(path).names
    with _open(path) as fh:
        text = io.TextIOWrapper(fh, encoding="utf-8", errors="replace", newline="")
        return next(csv.reader(text, delimiter=delimiter), [])


@dataclass
class _Read:
    tables: list[pa.Table]
    missing: dict[tuple[str, ...], list[tuple[str, list[str]]]]  # -> [(file, its columns)]
    dropped: set[str]
    renamed: dict[str, str]
    empty: list[str]  # files without rows (a day without events)
    repeated: dict[str, str]  # {file: the file with the same content, read instead}
    multiline: dict[str, int]  # {CSV file: rows with a quoted field spanning lines}


def _duckdb_error(path: Path, link: Path, exc: Exception, delimiter: str) -> LandingImportError:
    lines = [line.replace(str(link), str(path)) for line in str(exc).splitlines() if line.strip()]
    where = [line for line in lines[1:] if line.startswith(("Expected", "Original"))]
    hint = ("; not CSV with the header's number of fields in every row, '\"' quotes and that "
            "separator (--delimiter)" + _first_bad_width(path, delimiter)
            if "sniffing" in lines[0] else "")
    return LandingImportError(f"{path}: unreadable ({'; '.join(lines[:1] + where[:2])}{hint})")


def _first_bad_width(path: Path, delimiter: str) -> str:
    """``; row N (line L) has K field(s), the header H``: the first row of another width, which
    DuckDB's sniffer refuses without naming. Read only for a file already refused."""
    with _open(path) as fh:
        rows = csv.reader(io.TextIOWrapper(fh, encoding="utf-8", errors="replace", newline=""),
                          delimiter=delimiter)
        header = next(rows, [])
        for n, row in enumerate(rows, start=1):
            if len(row) != len(header):
                return (f"; row {n} (line {rows.line_num}) has {len(row)} field(s), the header "
                        f"{len(header)}")
    return ""


def _checked_header(source: Source, delimiter: str) -> list[str]:
    """The file's header, refused when a name repeats (which one is meant cannot be guessed)."""
    header = _header(source.path, delimiter)
    twice = sorted({n for n in header if header.count(n) > 1})
    if twice:
        raise LandingImportError(f"{source.path}: column(s) {twice} appear more than once in "
                                 "its header; which one is meant cannot be guessed")
    return header


def _described(con: duckdb.DuckDBPyConnection, relation: str, path: Path, link: Path,
               delimiter: str) -> list[str]:
    """The column names DuckDB reads from ``relation``; a read error names ``path``."""
    try:
        return [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()]
    except duckdb.Error as exc:
        raise _duckdb_error(path, link, exc, delimiter) from exc


def _with_hive(source: Source, names: list[str]) -> list[str]:
    """The file's columns and its Hive folders' keys; a key that is also a column refuses."""
    clash = [k for k, _ in source.hive if k in names]
    if clash:
        raise LandingImportError(
            f"{source.path}: folder {clash[0]}=... and the file's column {clash[0]!r} both give "
            f"{clash[0]!r}; rename the folder or drop the column (neither replaces the other)")
    return names + [k for k, _ in source.hive]


def _select(names: list[str], feed: Feed, mapping: dict[str, str], path: Path,
            out: _Read) -> tuple[str | None, tuple[str, ...]]:
    """The SELECT list casting the file's spec columns (after ``--map``) to text, and the spec
    columns missing (the SELECT is None then)."""
    renames = {s: d for s, d in mapping.items() if s in names and d in feed.kinds}
    after = [renames.get(n, n) for n in names]
    twice = sorted({a for a in after if after.count(a) > 1})
    if twice:
        raise LandingImportError(f"{path}: column(s) {twice} appear twice after --map; "
                                 "map only one source column to each spec column")
    missing = tuple(c for c in feed.kinds if c not in after)
    if missing:
        return None, missing
    out.dropped |= {n for n in after if n not in feed.kinds}
    out.renamed |= renames
    source_of = {a: n for n, a in zip(names, after, strict=True)}
    return ", ".join(f"CAST({_q(source_of[c])} AS VARCHAR) AS {_q(c)}" for c in feed.kinds), ()


def _multiline(names: list[str]) -> str:
    return " OR ".join(f"contains({_q(n)}, chr(10))" for n in names)


def _read_one(con: duckdb.DuckDBPyConnection, source: Source, link: Path, feed: Feed,
              mapping: dict[str, str], delimiter: str, out: _Read) -> None:
    """One file read on its own: the reference path, and the one that names a bad file."""
    path = source.path
    _checked_header(source, delimiter)
    relation = _relation([link], delimiter)
    names = _with_hive(source, _described(con, relation, path, link, delimiter))
    hive = "".join(f", {_literal(v)} AS {_q(k)}" for k, v in source.hive)
    query = f"SELECT *{hive} FROM {relation}"
    select, missing = _select(names, feed, mapping, path, out)
    if missing:
        out.missing.setdefault(missing, []).append((str(path), names))
        return
    try:
        table = con.sql(f"SELECT {select} FROM ({query})").to_arrow_table()
    except duckdb.Error as exc:
        raise _duckdb_error(path, link, exc, delimiter) from exc
    if not len(table):
        out.empty.append(str(path))
    if not link.name.endswith(".parquet"):
        (count,) = _first(con, f"SELECT count(*) FROM ({query}) WHERE {_multiline(names)}")
        if count:
            out.multiline[str(path)] = count
    out.tables.append(_tagged(table, [path], np.array([len(table)]), feed))


class _NotInOrder(Exception):
    """A multi-file scan did not return rows file after file (it always should)."""


def _read_together(con: duckdb.DuckDBPyConnection, group: list[tuple[Source, Path]],
                   feed: Feed, mapping: dict[str, str], delimiter: str, out: _Read) -> None:
    """Files with the same header, Hive keys and format in one DuckDB scan (per-file queries
    cost milliseconds each: a year of hourly exports is 8,760 files). Raises
    ``duckdb.Error`` for the caller to read them one by one, which names the bad file."""
    sources, links = [s for s, _ in group], [link for _, link in group]
    first = sources[0]
    names = _described(con, _relation(links[:1], delimiter), first.path, links[0], delimiter)
    columns = _with_hive(first, names)
    select, missing = _select(columns, feed, mapping, first.path, out)
    if missing:
        out.missing.setdefault(missing, []).extend((str(s.path), columns) for s in sources)
        return
    file_col = "_file"
    while file_col in columns:
        file_col += "_"
    raw = con.sql(f"SELECT * FROM {_relation(links, delimiter, file_col)}").to_arrow_table()
    # rows come file after file, each file's in its order (DuckDB preserves insertion order)
    file_index = pc.index_in(raw[file_col], pa.array([str(link) for link in links])).to_numpy()
    if np.any(np.diff(file_index) < 0):
        raise _NotInOrder
    for key, _ in first.hive:
        raw = raw.append_column(key, pc.take(pa.array([dict(s.hive)[key] for s in sources]),
                                             file_index))
    con.register("_group", raw)
    try:
        table = con.sql(f"SELECT {select} FROM _group").to_arrow_table()
        spans = [] if links[0].name.endswith(".parquet") else con.sql(
            f"SELECT {_q(file_col)}, count(*) FROM _group WHERE {_multiline(names)} "
            "GROUP BY ALL").fetchall()
    finally:
        con.unregister("_group")
    index = {str(link): i for i, link in enumerate(links)}
    counts = np.bincount(file_index, minlength=len(links))
    out.empty += [str(s.path) for s, n in zip(sources, counts, strict=True) if not n]
    out.multiline |= {str(sources[index[f]].path): n for f, n in spans}
    out.tables.append(_tagged(table, [s.path for s in sources], counts, feed))


def _read(con: duckdb.DuckDBPyConnection, sources: list[Source], feed: Feed,
          mapping: dict[str, str], links: Path, delimiter: str) -> _Read:
    """Each file's spec columns as text, with ``_source`` and ``_row`` (1-based): files of one
    header, Hive keys and format read together (``_read_together``), one by one when that
    fails, so an error names its file."""
    out = _Read([], {}, set(), {}, [], {}, {})
    seen: dict[str, Path] = {}
    groups: dict[tuple, list[tuple[Source, Path]]] = {}
    for i, source in enumerate(sources):
        path = source.path
        first = seen.setdefault(_content_sha(path), path)
        if first != path:
            out.repeated[str(path)] = str(first)
            continue
        if path.stat().st_size == 0:  # not even a header: an export of nothing
            out.empty.append(str(path))
            out.tables.append(_tagged(pa.table({c: pa.array([], pa.string())
                                                for c in feed.kinds}), [path], np.zeros(1), feed))
            continue
        lower = path.name.lower()
        suffix = next(s for s in SUFFIXES if lower.endswith(s))
        link = links / f"{feed.name}-{i}{suffix}"
        link.symlink_to(path.resolve())
        header = tuple(_checked_header(source, delimiter))
        # Parquet files read together must also agree on types (DuckDB would cast to the first's)
        types = (tuple(str(t) for t in pq.read_schema(path).types) if suffix == ".parquet"
                 else ())
        groups.setdefault((suffix, header, types, tuple(k for k, _ in source.hive)),
                          []).append((source, link))
    for group in groups.values():
        try:
            _read_together(con, group, feed, mapping, delimiter, out)
        except (duckdb.Error, _NotInOrder):
            for source, link in group:
                _read_one(con, source, link, feed, mapping, delimiter, out)
    return out


def _tagged(table: pa.Table, paths: list[Path], counts: np.ndarray, feed: Feed) -> pa.Table:
    """The feed's columns as text, with ``_source`` (the file) and ``_row`` (1-based within
    it); ``table`` holds ``counts[i]`` rows of ``paths[i]``, file after file."""
    table = pa.table({c: table[c].cast(pa.string()) for c in feed.kinds})
    counts = np.asarray(counts, dtype=np.int64)
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    source = pa.DictionaryArray.from_arrays(np.repeat(np.arange(len(paths)), counts),
                                            pa.array([str(p) for p in paths], pa.string()))
    return (table.append_column("_source", source.cast(pa.string()))
            .append_column("_row", pa.array(np.arange(len(table)) - starts + 1)))


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


def _first_where(con: duckdb.DuckDBPyConnection, column: str, where: str,
                 ) -> tuple[int, str | None, int | None, str | None]:
    """How many rows of ``src`` match ``where``, and the first one's file, row and ``column``."""
    return _first(con, f"SELECT count(*) OVER (), _source, _row, {_q(column)} FROM src "
                       f"WHERE {where} ORDER BY _source, _row LIMIT 1") or (0, None, None, None)


def _padded_ids(con: duckdb.DuckDBPyConnection, feed: Feed) -> dict[str, str]:
    """Text ids with surrounding whitespace: kept as they are (the contract decides), counted."""
    out = {}
    for c in (c for c, k in feed.kinds.items() if k == ID):
        count, source, n, value = _first_where(con, c, f"{_q(c)} <> trim({_q(c)})")
        if count:
            out[c] = (f"{count} value(s) with surrounding whitespace, kept as they are "
                      f"(first: {source} row {n}: {value!r})")
    return out


def _ts_text(column: str) -> str:  # DuckDB parses "Z" but not "z"
    return f"regexp_replace(trim({_q(column)}), 'z$', 'Z')"


def _check_timestamps(con: duckdb.DuckDBPyConnection, feed: Feed) -> None:
    """Refuse the first naive, unparseable or empty timestamp, naming file, row and value."""
    row = _first(con, f"""
        SELECT problem, _source, _row, v FROM (
          SELECT _source, _row, {_q(feed.ts)} AS v, {_ts_text(feed.ts)} AS t, CASE
            WHEN v IS NULL THEN 3
            WHEN regexp_full_match(t, '{OFFSET_TS}')
                 AND TRY_CAST(t AS TIMESTAMPTZ) IS NOT NULL THEN 0
            WHEN regexp_matches(t, '{OFFSET_LIKE}') THEN 2
            WHEN TRY_CAST(t AS TIMESTAMP) IS NOT NULL THEN 1
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
    if kind == LABEL:  # yes/no spellings as 1/0 even when the column stays text
        cases = " ".join(f"WHEN '{w}' THEN '{b}'" for w, b in BOOLEAN_SPELLINGS.items())
        text = f"CASE lower(trim({v})) {cases} ELSE {v} END"
        return (text, f"coalesce(TRY_CAST({text} AS DOUBLE) IN (0, 1), false) = false",
                f"CAST(CAST({text} AS DOUBLE) AS TINYINT)",
                f"a yes/no value ({'/'.join(BOOLEAN_SPELLINGS)}, any case)")
    return None


def _check_window(con: duckdb.DuckDBPyConnection, feed: Feed, spec: DatasetSpec,
                  now: datetime) -> None:
    """Refuse rows the pipeline could never ingest: before the spec's ``start``, at or after
    its ``end``, or in the future (``FUTURE_TOLERANCE``). A far-future typo would also make
    every earlier day without a file look complete (``later_file``)."""
    future = now.astimezone(UTC) + FUTURE_TOLERANCE
    end, why = ((spec.end_utc, "the spec's end") if spec.end_utc and spec.end_utc <= future
                else (future, "now + 5 minutes"))
    ts = f"CAST({_ts_text(feed.ts)} AS TIMESTAMPTZ)"
    count, source, n, value = _first_where(
        con, feed.ts, f"{ts} < '{spec.start_utc.isoformat()}'::TIMESTAMPTZ "
                      f"OR {ts} >= '{end.isoformat()}'::TIMESTAMPTZ")
    if count:
        raise LandingImportError(
            f"{count} row(s) with {feed.ts!r} outside [{spec.start_utc.isoformat()}, "
            f"{end.isoformat()}) (the spec's start .. {why}; first: {source} row {n}: "
            f"{value!r}); they could never be ingested: fix or drop them and rerun (nothing "
            "was written)")


def _typed(con: duckdb.DuckDBPyConnection, feed: Feed, spec: DatasetSpec, now: datetime,
           ) -> tuple[pa.Table, dict[str, str]]:
    """The rows of ``src`` in landing types, sorted by time and id, with ``_day``; and the
    columns left as text with why."""
    _check_timestamps(con, feed)
    _check_window(con, feed, spec, now)
    id_type = spec.id_type
    exprs = {c: f"CAST({_ts_text(c)} AS TIMESTAMPTZ)" if k == TIMESTAMP else _q(c)
             for c, k in feed.kinds.items()}
    as_text = {}
    for c, k in feed.kinds.items():
        plan = _text_or_typed(k, id_type, c)
        if plan is None:
            continue
        text, failing, typed, what = plan
        bad = f"{_q(c)} IS NOT NULL AND ({failing})"
        count, source, n, value = _first_where(con, c, bad)
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


def _same_rows(path: Path, table: pa.Table, data: bytes) -> bool:
    if path.read_bytes() == data:
        return True
    try:
        return pq.read_table(path).equals(table)
    except Exception:  # noqa: BLE001 - an unreadable file holds other rows, whatever the error
        return False


def _other_rows(paths: DataPaths, path: Path, rows: pa.Table) -> str:
    return f"{path.relative_to(paths.root)} already holds other rows than the {len(rows)} landed now"


def _not_landed(con: duckdb.DuckDBPyConnection, landed: tuple[Path, ...], rows: pa.Table,
                feed: Feed) -> tuple[pa.Table, dict[str, int]]:
    """The rows of one day not landed yet in its files ``landed``, and how many rows were
    ``new`` (id not landed), ``already_landed`` (a landed row has the same id and values: not
    returned) and ``conflicting`` (the id landed with other values: returned).

    Values are compared as text, numbers as numbers: a column kept as text in one export and
    typed in another (``as_text``) still matches. One DuckDB join on the id.
    """
    con.register("day_rows", rows.append_column("_i", pa.array(np.arange(len(rows)))))
    listed = ", ".join(_literal(str(p)) for p in landed)
    text = "CAST({} AS VARCHAR)".format
    same = " AND ".join(
        (f"coalesce(TRY_CAST(o.{_q(c)} AS DOUBLE) = TRY_CAST(n.{_q(c)} AS DOUBLE), "
         if k == NUMBER else "(") + f"{text('o.' + _q(c))} IS NOT DISTINCT FROM "
        f"{text('n.' + _q(c))})" for c, k in feed.kinds.items())
    try:
        flags = con.execute(
            f"SELECT bool_or(o.{_q(feed.id)} IS NOT NULL) AS seen, "
            f"coalesce(bool_or(o.{_q(feed.id)} IS NOT NULL AND {same}), false) AS same "
            f"FROM day_rows n LEFT JOIN read_parquet([{listed}], union_by_name = true) o "
            f"ON {text('o.' + _q(feed.id))} = {text('n.' + _q(feed.id))} "
            "GROUP BY n._i ORDER BY n._i").fetchnumpy()
    except duckdb.Error as exc:  # a corrupt landed file, or one without the feed's columns
        raise LandingImportError(
            f"{landed[0]}{f' (and {len(landed) - 1} more)' if len(landed) > 1 else ''}: the "
            f"landed file(s) of this day cannot be compared with the new rows "
            f"({str(exc).splitlines()[0]}); fix them (nothing was written)") from exc
    finally:
        con.unregister("day_rows")
    seen, same = flags["seen"].astype(bool), flags["same"].astype(bool)
    return rows.filter(pa.array(~same)), {"new": int((~seen).sum()),
                                          "already_landed": int(same.sum()),
                                          "conflicting": int((seen & ~same).sum())}


def _by_day(table: pa.Table) -> dict[str, pa.Table]:
    days = table["_day"].to_numpy(zero_copy_only=False)
    names, starts = np.unique(days, return_index=True)  # rows are sorted by time: days contiguous
    ends = [*starts[1:], len(days)][:len(starts)]  # no rows (header-only files): no days
    body = table.drop_columns(["_day"])
    return {d: body.slice(s, e - s) for d, s, e in zip(names, starts, ends, strict=True)}


def land(paths: DataPaths, spec: DatasetSpec, sources: dict[str, list[str]],
         mapping: dict[str, str] | None = None, delimiter: str = ",",
         now: datetime | None = None) -> dict[str, dict]:
    """Import CSV/Parquet sources into daily landing files (see the module docstring).

    Parameters
    ----------
    paths : DataPaths
        The data directory; files go to ``landing/<feed>/YYYY-MM-DD.parquet``, or a new part
        ``landing/<feed>/YYYY-MM-DD/part-....parquet`` when the day already landed.
    spec : DatasetSpec
        Columns, their kinds and ``id_type``.
    sources : dict
        ``{"events"|"labels"|"reports": [file, directory or glob, ...]}``.
    mapping : dict, optional
        ``{source column: spec column}``, applied in every feed that has the spec column.
    delimiter : str, default ","
        The CSV field separator (the dialect is never guessed).
    now : datetime, optional
        The current time (default: the clock); rows after it (``FUTURE_TOLERANCE``) refuse.
        A part's name carries it (parts sort in landing order: the first copy of an id stands).

    Returns
    -------
    dict
        Per feed: ``files`` (read), ``ignored_files``, ``empty_files`` (no rows),
        ``repeated_files`` (``{file: the file with the same content, read instead}``),
        ``multiline_rows`` (``{CSV file: rows with a quoted field spanning lines}``),
        ``padded_ids`` (``{id column: how many values have surrounding whitespace}``), ``rows``, ``written`` (days a day file or a
        part was written for) and ``unchanged`` (days, ``YYYY-MM-DD``), ``parts`` (``{day:
        the part written, relative to the data directory}``), ``day_rows`` (``{day: {"new",
        "already_landed", "conflicting": row counts}}``), ``first_day``, ``last_day``, ``dropped`` (columns),
        ``renamed`` (``{source: spec column}``), ``as_text`` (``{column: why}``).

    Raises
    ------
    LandingImportError
        An unknown feed or ``--map`` target, an unreadable source (a malformed CSV row), a
        Hive folder clashing with a column, a source inside the landing or lake, a missing
        column, a naive, empty or unparseable timestamp, a row outside the spec's
        ``[start, end)`` or in the future, a landing folder resolving outside the data
        directory, or a day covered by hourly files. Nothing is written then, except when a
        concurrent run created a day file meanwhile: the files before it stay written.
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
    guard = [paths.landing.resolve(), paths.lake.resolve()]
    con = connect()
    now = now or datetime.now(UTC)
    report, planned, conflicts = {}, [], []
    with tempfile.TemporaryDirectory(prefix="ml-assets-land-") as links:
        for name, patterns in sources.items():
            feed = known[name]
            folder = paths.landing / name
            if not folder.resolve().is_relative_to(paths.root.resolve()):
                raise LandingImportError(f"{folder}: resolves outside the data directory "
                                         f"{paths.root}; refusing to write there")
            files, ignored = source_files(patterns)
            own = [s.path for s in files if any(s.path.resolve().is_relative_to(g)
                                                for g in guard)]
            if own:
                raise LandingImportError(f"{own[0]}: is inside the data directory's landing or "
                                         "lake; land files from where they were delivered")
            read = _read(con, files, feed, mapping, Path(links), delimiter)
            if read.missing:
                raise LandingImportError(_missing_error(read.missing, mapping))
            con.register("src", pa.concat_tables(read.tables))
            table, as_text = _typed(con, feed, spec, now)
            padded = _padded_ids(con, feed)
            ids = table[feed.id].to_pandas()
            repeated = ids[ids.duplicated(keep=False)]
            con.unregister("src")
            layout = Layout.scan(folder, DAY, "later_file", now=now)  # a day's file and parts
            written, unchanged, parts, day_rows = [], [], {}, {}
            for day, rows in _by_day(table).items():
                path = folder / f"{day}.parquet"
                hourly = sorted(path.parent.glob(f"{day}T*.parquet"))
                landed = layout.files.get((DAY, datetime.fromisoformat(day).replace(tzinfo=UTC)))
                if hourly:
                    conflicts.append(f"{hourly[0].relative_to(paths.root)} already covers part "
                                     f"of {day} (hourly files and a daily file cannot both land)")
                    continue
                new, day_rows[day] = (_not_landed(con, landed, rows, feed) if landed else
                                      (rows, {"new": len(rows), "already_landed": 0,
                                              "conflicting": 0}))
                if not len(new):
                    unchanged.append(day)
                    continue
                data = parquet_bytes(new)
                if landed:  # named by landing time, so parts sort in the order they landed
                    path = folder / day / (f"part-{now.astimezone(UTC):%Y%m%dT%H%M%SZ}-"
                                           f"{hashlib.sha256(data).hexdigest()[:16]}.parquet")
                    parts[day] = str(path.relative_to(paths.root))
                planned.append((name, day, path, new, data))
                written.append(day)
            days = sorted(written + unchanged)
            report[name] = {
                "files": [str(f.path) for f in files],
                "ignored_files": [str(f) for f in ignored],
                "empty_files": read.empty, "repeated_files": read.repeated,
                "multiline_rows": read.multiline, "padded_ids": padded,
                "repeated_ids": ({"rows": len(repeated), "example": str(repeated.iloc[0])}
                                 if len(repeated) else {}),
                "rows": len(table), "written": written, "unchanged": unchanged,
                "parts": parts, "day_rows": day_rows,
                "first_day": days[0] if days else None, "last_day": days[-1] if days else None,
                "dropped": sorted(read.dropped), "renamed": read.renamed, "as_text": as_text}
    if conflicts:
        more = f" (and {len(conflicts) - 1} more)" if len(conflicts) > 1 else ""
        raise LandingImportError(
            f"{conflicts[0]}{more}: landing files are append-only, nothing was written. For a "
            "deliberate re-delivery replace the file, then record it: `ml-assets landing "
            "accept <file> --reason ...`")
    for name, day, path, rows, data in planned:
        # never overwrite: a file that appeared since the check was written by a concurrent run
        if create_file_bytes(path, data):
            continue
        if not _same_rows(path, rows, data):
            raise LandingImportError(
                f"{_other_rows(paths, path, rows)}: another `ml-assets land` wrote it meanwhile; "
                "this run stopped there (files before it were written): rerun it")
        report[name]["written"].remove(day)
        report[name]["parts"].pop(day, None)
        report[name]["unchanged"] = sorted([*report[name]["unchanged"], day])
    return report
