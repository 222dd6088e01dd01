"""Precomputed scores held in memory for the read path: sorted event ids with one score and
one decision array per model version, rebuilt from the lake's score tables when a file
changes and swapped in by one reference assignment.

Everything is a NumPy array, looked up by binary search: a Python dict of every event (and
lists of its source and arm entity) took 253 s and 7 GB to build at ``demo --scale 20``
(25M events).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ml_assets.lib.core.catalog import BATCH_SCORES, SCORE_TABLES, Catalog
from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.identifiers import quote
from ml_assets.lib.core.lake import connect, parquet_relation
from ml_assets.lib.core.paths import DataPaths

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Integer columns with NULLs (spec.nullable_keys) stay integers: Arrow's default turns them
# into float64, and the rollout arm hashes an entity as text, where 1.0 is not 1.
_NULLABLE = {pa.int8(): pd.Int8Dtype(), pa.int16(): pd.Int16Dtype(), pa.int32(): pd.Int32Dtype(),
             pa.int64(): pd.Int64Dtype(), pa.uint8(): pd.UInt8Dtype(),
             pa.uint16(): pd.UInt16Dtype(), pa.uint32(): pd.UInt32Dtype(),
             pa.uint64(): pd.UInt64Dtype()}


def _position(keys: np.ndarray, value) -> int | None:
    """Where ``value`` is in the sorted unique ``keys`` (binary search), or None. A value of
    a type the keys do not compare with (a string among integer ids) is in no index."""
    try:
        i = int(np.searchsorted(keys, value))
    except (TypeError, ValueError, OverflowError):
        return None
    return i if i < len(keys) and keys[i] == value else None


def _python(value):
    """A NumPy scalar as the Python value a dict or JSON holds (``int``, ``str``)."""
    return value.item() if isinstance(value, np.generic) else value


def _column(series: pd.Series) -> np.ndarray:
    """A key column as a NumPy array: int64 when it is integral without NULLs, else objects
    (strings, or integers with NULLs as None)."""
    if pd.api.types.is_integer_dtype(series.dtype) and not series.isna().any():
        return series.to_numpy(dtype="int64")
    return series.astype(object).where(series.notna(), None).to_numpy(dtype=object)


class ScoreIndex:
    """Event ids (sorted) -> row; per version a score and a decision array aligned with them.

    Parameters
    ----------
    spec : DatasetSpec
        Names the event id, event time and entity key columns.
    df : pandas.DataFrame, shape (n_rows,)
        Score rows: the spec's id, time and key columns, ``model_version``, ``score``,
        ``decision`` and ``micro`` (bool: from the micro-batch score table). Where one event
        has rows of several sources, the later row's time, keys and source stand.
    signature : tuple
        ``files_signature`` of the files read.
    """

    def __init__(self, spec: DatasetSpec, df: pd.DataFrame, signature: tuple = ()):
        self.signature = signature
        self.loaded_at = datetime.now(UTC)
        codes, uniques = pd.factorize(df[spec.event_id], sort=True)
        n = len(uniques)
        self.ids = _column(pd.Series(uniques))
        # Event time as int64 microseconds since the epoch (UTC): a lookup formats one with
        # ``datetime``, ~5x cheaper than through ``pd.Timestamp``.
        self.event_us = np.empty(n, dtype="int64")
        self.event_us[codes] = df[spec.event_ts].dt.tz_convert("UTC").dt.tz_localize(None) \
            .to_numpy(dtype="datetime64[us]").view("int64")
        self.micro = np.zeros(n, dtype=bool)
        self.micro[codes] = df["micro"].to_numpy(dtype=bool)
        self.scores: dict[str, np.ndarray] = {}
        self.decisions: dict[str, np.ndarray] = {}
        for version, idx in df.groupby("model_version", sort=False).indices.items():
            score = np.full(n, np.nan)
            decision = np.zeros(n, dtype=bool)
            score[codes[idx]] = df["score"].to_numpy(dtype="float64")[idx]
            decision[codes[idx]] = df["decision"].to_numpy(dtype=bool)[idx]
            self.scores[str(version)], self.decisions[str(version)] = score, decision
        keys = {}
        for key in spec.entity_keys:
            values = _column(df[key])
            keys[key] = np.empty(n, dtype=values.dtype)
            keys[key][codes] = values
        # The rollout arm is decided by the first entity key (``rollout.entity_key``).
        self.arm_entity = keys[spec.entity_keys[0]]
        self._latest = {key: self._latest_rows(values) for key, values in keys.items()}

    def _latest_rows(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(entities sorted, row of each one's latest event)``: by event time, ties by
        event id; a NULL key (``spec.nullable_keys``) is no entity."""
        rows = np.flatnonzero(pd.notna(values))  # ascending, as the event ids
        order = rows[np.argsort(self.event_us[rows], kind="stable")]
        entity = values[order]
        by_entity = np.argsort(entity, kind="stable")
        entity, order = entity[by_entity], order[by_entity]
        last = np.ones(len(entity), dtype=bool)
        last[:-1] = entity[1:] != entity[:-1]
        return entity[last], order[last]

    def __len__(self) -> int:
        return len(self.ids)

    def row(self, event_id) -> int | None:
        """The row of ``event_id`` (in the spec's ``id_type``), or None if it has no score."""
        return _position(self.ids, event_id)

    def latest_row(self, key: str, value) -> int | None:
        """The row of the latest scored event (by event time) of entity ``key = value``, or
        None (an unknown key or entity)."""
        if key not in self._latest:
            return None
        entities, rows = self._latest[key]
        i = _position(entities, value)
        return None if i is None else int(rows[i])

    def event_id(self, row: int):
        """The event id of ``row`` as a Python value."""
        return _python(self.ids[row])

    def arm(self, row: int):
        """The rollout entity (first entity key) of ``row`` as a Python value (None: NULL)."""
        return _python(self.arm_entity[row])

    def lookup(self, row: int, version: str) -> dict | None:
        """The stored score of one event for one model version.

        Parameters
        ----------
        row : int
            The event's row (``self.row(event_id)``).
        version : str
            Model version.

        Returns
        -------
        dict or None
            ``score`` (0-1), ``decision`` (bool), ``event_ts`` (ISO 8601, UTC) and ``source``
            (``"batch"`` or ``"microbatch"``); None if that version did not score the event.
        """
        scores = self.scores.get(version)
        score = None if scores is None else scores.item(row)  # a Python float: no numpy scalar
        if score is None or score != score:  # not scored by this version (NaN)
            return None
        return {"score": score, "decision": self.decisions[version].item(row),
                "event_ts": (_EPOCH + timedelta(microseconds=self.event_us.item(row))).isoformat(),
                "source": "microbatch" if self.micro.item(row) else "batch"}


def _listed(paths: DataPaths) -> dict[str, list[Path]]:
    """Each score table's files, in ``SCORE_TABLES`` order."""
    catalog = Catalog(paths.lake)
    return {src: catalog.table(src).files() for src in SCORE_TABLES}


def score_files(paths: DataPaths) -> list[Path]:
    """Every parquet file of the batch and micro-batch score tables (``SCORE_TABLES``).

    Parameters
    ----------
    paths : DataPaths
    """
    return [p for files in _listed(paths).values() for p in files]


def files_signature(files: list[Path]) -> tuple:
    """``(name, mtime in ns)`` per file: it changes when a score file is added or rewritten.

    Parameters
    ----------
    files : list of pathlib.Path
        Existing files (as from ``score_files``).
    """
    return tuple((p.name, p.stat().st_mtime_ns) for p in files)


def load_score_index(paths: DataPaths, spec: DatasetSpec) -> ScoreIndex:
    """Read every score file into a new index (one DuckDB query over the parquet files).

    Parameters
    ----------
    paths : DataPaths
    spec : DatasetSpec
        Names the event id, event time and entity key columns.

    Returns
    -------
    ScoreIndex
        Signed with ``files_signature`` of the files read; empty if there are none.
    """
    cols = ", ".join(quote(c) for c in [spec.event_id, spec.event_ts, *spec.entity_keys,
                                        "model_version", "score", "decision"])
    listed = _listed(paths)
    con = connect()
    # One query per table, concatenated in SCORE_TABLES order: batch rows first, so an event
    # also scored by a micro-batch takes the micro-batch's time, keys and source.
    tables = [con.sql(f"SELECT {cols}, {src != BATCH_SCORES} AS micro "  # noqa: S608
                      f"FROM {parquet_relation(files)}").to_arrow_table()
              for src, files in listed.items() if files]
    if not tables:
        return empty_score_index(spec)
    # Through Arrow, versions dictionary-encoded and no block consolidation: DuckDB's .df()
    # of 16.7M score rows took 37 s, most of it building pandas blocks and version strings.
    table = pa.concat_tables(tables, promote_options="permissive")
    table = table.set_column(table.schema.get_field_index("model_version"), "model_version",
                             pc.dictionary_encode(table["model_version"]))
    frame = table.to_pandas(split_blocks=True, self_destruct=True, types_mapper=_NULLABLE.get)
    return ScoreIndex(spec, frame, files_signature([p for files in listed.values() for p in files]))


def empty_score_index(spec: DatasetSpec) -> ScoreIndex:
    """The index before any score file exists: no events, no versions.

    Parameters
    ----------
    spec : DatasetSpec
        Names the columns of the (empty) frame.
    """
    df = pd.DataFrame({c: pd.Series(dtype="object")
                       for c in [spec.event_id, *spec.entity_keys, "model_version", "score",
                                 "decision"]})
    df["micro"] = pd.Series(dtype=bool)
    df[spec.event_ts] = pd.Series(dtype="datetime64[us, UTC]")
    return ScoreIndex(spec, df)
