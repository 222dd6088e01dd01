"""The lake catalog: the one module that knows every table written under ``lake/``.

Each table has a name, a grain and a file layout. The event-side tables (``EVENT_TABLES``) take
the dataset spec's ``partition_grain``, which a :class:`Catalog` is built with. Hourly and daily
tables keep one Parquet
file per partition, named by the partition's start (``2026-07-01T13.parquet``,
``2026-07-01.parquet``); Dagster's partition keys (``2026-07-01-13:00``) map to those names
here and nowhere else. Tables without a grain are either one file (``lake/<name>.parquet``,
unpartitioned assets) or a directory of named files (micro-batches, prediction-log flushes,
quarantine files, recorded reports).

Every lake path, listing and read in the package goes through this module (and the
:class:`~ml_assets.lib.core.lake_table.LakeTable` it hands out), so the layout can change - or
live on an object store (a ``UPath`` root, ``lake_store``: ``s3://bucket/prefix``) - in
one place.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from upath import UPath

from ml_assets.lib.core.identifiers import confined
from ml_assets.lib.core.lake_store import LakePath
from ml_assets.lib.core.lake_table import PARQUET, Grain, LakeTable, Table


def _t(name: str, grain: Grain, description: str, suffix: str = PARQUET) -> Table:
    return Table(name, grain, description, suffix)


RAW_EVENTS = "raw_events"
RAW_LABELS = "raw_labels"
RAW_EARLY_REPORTS = "raw_early_reports"
EVENT_FEATURES = "event_features"
SPARK_EVENT_FEATURES = "spark_event_features"
BATCH_SCORES = "batch_scores"
MICROBATCH_EVENTS = "microbatch_events"
MICROBATCH_SCORES = "microbatch_scores"
MICROBATCH_QUARANTINE = "microbatch_quarantine"
PREDICTION_LOG = "prediction_log"
QUARANTINE = "quarantine"
QUARANTINE_FILES = "_quarantine"
COLUMN_RANGES = "_column_ranges"
TRAINING_SET = "training_set"
DATA_SPLITS = "data_splits"
FROZEN_REFERENCE_SET = "frozen_reference_set"
SHADOW_REPORT = "shadow_report"
SHADOW_SUMMARY = "shadow_summary"
BUSINESS_METRIC = "business_metric"
FEATURE_DRIFT = "feature_drift"
PREDICTION_DRIFT = "prediction_drift"
EARLY_LABEL_WATCH = "early_label_watch"
DELAYED_EVALUATION = "delayed_evaluation"

# The daily monitoring tables (one asset each), business metric first.
MONITORING_TABLES = (BUSINESS_METRIC, FEATURE_DRIFT, PREDICTION_DRIFT, EARLY_LABEL_WATCH,
                     DELAYED_EVALUATION)
# The ingest -> features -> scoring spine that `ml-assets status` reports partitions of.
PIPELINE_TABLES = (RAW_EVENTS, RAW_LABELS, EVENT_FEATURES, BATCH_SCORES)
# Where scored rows live: batch scores and micro-batch scores.
SCORE_TABLES = (BATCH_SCORES, MICROBATCH_SCORES)
# Partitioned by event time at the spec's partition_grain (TABLES lists them hourly).
EVENT_TABLES = (RAW_EVENTS, EVENT_FEATURES, SPARK_EVENT_FEATURES, BATCH_SCORES)

TABLES: dict[str, Table] = {t.name: t for t in (
    _t(RAW_EVENTS, Grain.HOURLY, "validated events, by event time"),
    _t(RAW_LABELS, Grain.DAILY, "labels with their event's time and entity keys, by arrival day"),
    _t(RAW_EARLY_REPORTS, Grain.DAILY, "early positive reports, by arrival day"),
    _t(EVENT_FEATURES, Grain.HOURLY, "point-in-time features, one row per event"),
    _t(SPARK_EVENT_FEATURES, Grain.HOURLY, "the same features built by Spark (opt-in backfills)"),
    _t(BATCH_SCORES, Grain.HOURLY, "every scoring role's score of every event"),
    _t(MICROBATCH_EVENTS, Grain.NONE, "validated micro-batch events, one file per batch"),
    _t(MICROBATCH_SCORES, Grain.NONE, "micro-batch scores, one file per batch and role"),
    _t(MICROBATCH_QUARANTINE, Grain.NONE, "rows a micro-batch quarantined, one file per batch"),
    _t(PREDICTION_LOG, Grain.NONE, "realtime predictions, files under <YYYY-MM-DDTHH>/"),
    _t(QUARANTINE, Grain.NONE, "every quarantined row with its source and reason"),
    _t(QUARANTINE_FILES, Grain.NONE, "quarantined rows as <asset>/<partition stem> files"),
    _t(COLUMN_RANGES, Grain.NONE, "a cache: each file's min/max of a lookup column, as "
       "<table>/<column> files (lib/core/column_ranges.py)"),
    _t(TRAINING_SET, Grain.NONE, "features joined to labels known at the cutoff"),
    _t(DATA_SPLITS, Grain.NONE, "train/valid/test assignment per event id"),
    _t(FROZEN_REFERENCE_SET, Grain.NONE, "the fixed evaluation set"),
    _t(SHADOW_REPORT, Grain.DAILY, "challenger vs champion, per day"),
    _t(SHADOW_SUMMARY, Grain.NONE, "cumulative shadow report per challenger", ".json"),
    _t(BUSINESS_METRIC, Grain.DAILY, "decision rate and missed value per day"),
    _t(FEATURE_DRIFT, Grain.DAILY, "PSI/KS per feature and day"),
    _t(PREDICTION_DRIFT, Grain.DAILY, "score quantiles per day vs a trailing baseline"),
    _t(EARLY_LABEL_WATCH, Grain.DAILY, "early reports of what the model let through"),
    _t(DELAYED_EVALUATION, Grain.DAILY, "label-gated evaluation per prediction day"),
)}


class Catalog:
    """Every lake table under one root.

    Parameters
    ----------
    root : str, Path or UPath
        The lake directory or object-store root (``DataPaths.lake``); a string is a local
        directory.
    event_grain : {"hourly", "daily"}
        The grain of ``EVENT_TABLES``: the spec's ``partition_grain``.

    Raises
    ------
    ValueError
        ``event_grain`` is not hourly or daily.
    """

    def __init__(self, root: str | LakePath, event_grain: str = Grain.HOURLY):
        self.root = root if isinstance(root, UPath) else Path(root)
        self.event_grain = Grain(event_grain)
        if self.event_grain is Grain.NONE:
            raise ValueError("event tables are partitioned hourly or daily, not 'none'")
        self._tables = {name: replace(t, grain=self.event_grain) if name in EVENT_TABLES else t
                        for name, t in TABLES.items()}

    def __repr__(self) -> str:
        return f"Catalog({str(self.root)!r}, {self.event_grain.value!r})"

    def table(self, name: str) -> LakeTable:
        """The table ``name``.

        Parameters
        ----------
        name : str
            A catalog name, e.g. ``RAW_EVENTS`` (``"raw_events"``).

        Raises
        ------
        KeyError
            If the catalog has no such table.
        """
        return LakeTable(self.root, self._tables[name])

    def tables(self, grain: Grain | None = None) -> list[Table]:
        """Every table's facts (of one grain, if given), in catalog order.

        Parameters
        ----------
        grain : Grain, optional
            ``HOURLY``, ``DAILY`` or ``NONE``; None lists all.
        """
        return [t for t in self._tables.values() if grain is None or t.grain is grain]

    def path_of(self, relative: str) -> LakePath:
        """A file named relative to the lake root (``raw_labels/2026-07-01.parquet``), as
        recorded by change-tracking such as the label sensor's cursor (confined to the lake:
        a cursor is stored outside the code, so ``..`` or an absolute path is refused).

        Parameters
        ----------
        relative : str
            ``<table>/<file>``, ``/``-separated.

        Raises
        ------
        UnsafePath
            The name would leave the lake (see ``identifiers.confined``).
        """
        return confined(self.root, relative, "lake file", nested=True)
