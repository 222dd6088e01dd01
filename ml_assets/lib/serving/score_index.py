"""Precomputed scores held in memory for the read path: an event id -> row index with one
score and one decision array per model version, rebuilt from the lake's score tables when a
file changes and swapped in by one reference assignment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from ml_assets.lib.core.catalog import BATCH_SCORES, SCORE_TABLES, Catalog
from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.identifiers import quote
from ml_assets.lib.core.lake import connect
from ml_assets.lib.core.paths import DataPaths

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class ScoreIndex:
    """Event id -> row; per version a score and a decision array aligned with the rows."""

    def __init__(self, spec: DatasetSpec, df: pd.DataFrame, signature: tuple = ()):
        self.signature = signature
        self.loaded_at = datetime.now(UTC)
        eid = spec.event_id
        codes, uniques = pd.factorize(df[eid])
        n = len(uniques)
        self.rows: dict = dict(zip(uniques.tolist(), range(n), strict=True))
        # Event time as int64 microseconds since the epoch (UTC): a lookup formats one with
        # ``datetime``, ~5x cheaper than through ``pd.Timestamp``.
        self.event_us = np.empty(n, dtype="int64")
        self.event_us[codes] = df[spec.event_ts].dt.tz_convert("UTC").dt.tz_localize(None) \
            .to_numpy(dtype="datetime64[us]").view("int64")
        source = np.empty(n, dtype=object)
        source[codes] = np.where(df["source"].to_numpy(dtype=object) == BATCH_SCORES, "batch",
                                 "microbatch")
        self.source = source.tolist()
        self.scores: dict[str, np.ndarray] = {}
        self.decisions: dict[str, np.ndarray] = {}
        for version, idx in df.groupby("model_version", sort=False).indices.items():
            score = np.full(n, np.nan)
            decision = np.zeros(n, dtype=bool)
            score[codes[idx]] = df["score"].to_numpy(dtype="float64")[idx]
            decision[codes[idx]] = df["decision"].to_numpy(dtype=bool)[idx]
            self.scores[str(version)], self.decisions[str(version)] = score, decision
        latest = df.assign(_row=codes).sort_values(spec.event_ts, kind="stable")
        self.latest_by_entity = {
            key: dict(zip(*(lambda d: (d[key].tolist(), d["_row"].tolist()))(
                latest.dropna(subset=[key]).drop_duplicates(key, keep="last")), strict=True))
            for key in spec.entity_keys}  # a null key (spec.nullable_keys) is no entity
        self.ids = uniques.tolist()
        # The rollout arm is decided by the first entity key (``rollout.entity_key``).
        arm_key = spec.entity_keys[0]
        arm = np.empty(n, dtype=object)
        arm[codes] = df[arm_key].to_numpy(dtype=object)
        self.arm_entity = arm.tolist()

    def __len__(self) -> int:
        return len(self.rows)

    def lookup(self, row: int, version: str) -> dict | None:
        """The stored score of one event for one model version.

        Parameters
        ----------
        row : int
            The event's row (``self.rows[event_id]``).
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
                "source": self.source[row]}


def score_files(paths: DataPaths) -> list[Path]:
    """Every parquet file of the batch and micro-batch score tables (``SCORE_TABLES``).

    Parameters
    ----------
    paths : DataPaths
    """
    catalog = Catalog(paths.lake)
    return [p for src in SCORE_TABLES for p in catalog.table(src).files()]


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
    files = score_files(paths)
    cols = [spec.event_id, spec.event_ts, *spec.entity_keys, "model_version", "score", "decision"]
    if not files:
        return empty_score_index(spec)
    select = ", ".join(quote(c) for c in cols)  # validated spec identifiers, paths we built
    listed = ", ".join(_lit(p) for p in files)
    sources = "|".join(SCORE_TABLES)
    sql = (f"SELECT {select}, regexp_extract(filename, '({sources})') "  # noqa: S608
           f"AS source FROM read_parquet([{listed}], union_by_name = true, filename = true)")
    df = connect().execute(sql).df()
    return ScoreIndex(spec, df, files_signature(files))


def _lit(p: Path) -> str:
    return "'" + str(p).replace("'", "''") + "'"


def empty_score_index(spec: DatasetSpec) -> ScoreIndex:
    """The index before any score file exists: no events, no versions.

    Parameters
    ----------
    spec : DatasetSpec
        Names the columns of the (empty) frame.
    """
    df = pd.DataFrame({c: pd.Series(dtype="object")
                       for c in [spec.event_id, *spec.entity_keys, "model_version", "score",
                                 "decision", "source"]})
    df[spec.event_ts] = pd.Series(dtype="datetime64[us, UTC]")
    return ScoreIndex(spec, df)
