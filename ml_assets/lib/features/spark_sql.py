"""The feature query in Spark SQL, and its execution on a SparkSession over Parquet files.

The query is ``dialect.compile_query``, the one DuckDB runs; Spark differs in spelling
(backquoted identifiers, ``:start`` parameters, ``unix_micros``, ``array_position``, a distinct
count as ``size(collect_set(...))`` since Spark has no ``COUNT(DISTINCT) OVER``) and in how
the cumulative label counts are read as of a time: Spark has no ASOF join, so the target events
and the labels are put in one relation per entity tuple and time shift, and a running
``SUM ... RANGE BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING`` over epoch microseconds read at
the event rows counts exactly the labels strictly before the event's (shifted) time.

Values: counts, sums (``DECIMAL(38, 9)``, cast to DOUBLE once: both engines divide the exact
integer units by 1e9 correctly rounded), max, distinct counts, time since previous, label
aggregates, numeric and categorical columns and ratios of those are the same DOUBLEs as DuckDB's.
A ``mean`` is not: Spark's ``AVG(DECIMAL(38, 9))`` is the exact quotient rounded to 13 decimals
(``DECIMAL(38, 13)``) then cast to DOUBLE, DuckDB's a long double quotient rounded to DOUBLE;
they agree within ``engine_parity.MEAN_RTOL`` relative (and ``MEAN_ATOL`` absolute, the decimal
rounding), and so does a ratio reading a mean (``engine_parity.engine_differences``).

Data crosses as Parquet in and Arrow out (``DataFrame.toArrow``), never pandas.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from datetime import datetime

import pyarrow as pa

from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.features.definitions import LabelAgg
from ml_assets.lib.features.dialect import (
    Dialect,
    available_sql,
    compile_query,
    entity_tag,
    late_labels_cte,
    target_events_cte,
    window_seconds,
)

SPARK_MASTER_ENV = "ML_ASSETS_SPARK_MASTER"
DEFAULT_MASTER = "local[2]"
# The interpreter of the Spark driver's environment (``make .venv-spark/.installed``); pyspark
# is kept out of the main one (see the Makefile). Default: the running interpreter.
SPARK_PYTHON_ENV = "ML_ASSETS_SPARK_PYTHON"
DRIVER_MEMORY_ENV, DEFAULT_DRIVER_MEMORY = "ML_ASSETS_SPARK_DRIVER_MEMORY", "4g"


def spark_python() -> str:
    """The Python that runs a Spark driver: ``$ML_ASSETS_SPARK_PYTHON`` or this interpreter."""
    return os.environ.get(SPARK_PYTHON_ENV) or sys.executable


class SparkDialect(Dialect):
    """Spark SQL's spelling of the feature query (``lib/features/dialect.py``)."""

    def quote(self, identifier: str) -> str:
        return f"`{identifier}`"

    def param(self, name: str) -> str:
        return f":{name}"

    def epoch_us(self, expr: str) -> str:
        return f"unix_micros({expr})"

    def list_position(self, values: str, column: str) -> str:
        # array_position: 0 when absent, NULL for a NULL value
        return f"NULLIF(array_position(array({values}), CAST({column} AS STRING)), 0)"

    def distinct_count(self, column: str, frame: str) -> str:
        return f"size(collect_set({column}) OVER {frame})"  # collect_set drops NULLs

    def gap_us(self, ts: str, frame: str) -> str:
        return f"(unix_micros({ts}) - MAX(unix_micros({ts})) OVER {frame})"

    def label_ctes(self, spec: DatasetSpec, feats: list[LabelAgg], target: str
                   ) -> tuple[list[str], list[str]]:
        """Cumulative label counts read at each target event by a running sum over the events
        and labels of one entity tuple ordered together (see the module docstring); labels with
        a NULL key are left out, as an equi-join would."""
        q = self.quote
        eid = q(spec.event_id)
        ctes, joins = [target_events_cte(self, spec, target)], [f" LEFT JOIN lr ON lr._eid = ev_w.{eid}"]
        reads: list[str] = []

        def read(name: str, entities: tuple[str, ...], label_time: str, shift_us: int) -> None:
            keys = ", ".join(q(k) for k in entities)
            known = " AND ".join(f"{q(k)} IS NOT NULL" for k in entities)
            ctes.append(
                f"{name} AS (SELECT _eid, pos AS {name}_pos, cnt AS {name}_cnt FROM ("
                f"SELECT _eid, SUM(lpos) OVER w AS pos, SUM(lcnt) OVER w AS cnt FROM ("
                f"SELECT {keys}, unix_micros(_ts) - {shift_us} AS at, _eid, CAST(0 AS DOUBLE) AS lpos,"
                f" 0L AS lcnt FROM lt UNION ALL SELECT {keys}, unix_micros({label_time}) AS at,"
                f" NULL AS _eid, label AS lpos, 1L AS lcnt FROM lb WHERE {known})"
                f" WINDOW w AS (PARTITION BY {keys} ORDER BY at"
                f" RANGE BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)) WHERE _eid IS NOT NULL)")
            reads.append(name)

        for entities in dict.fromkeys(f.entities for f in feats):
            tag = entity_tag(entities)
            read(f"lbn_{tag}", entities, "greatest(label_ts, available_at)", 0)
            for sec in sorted({window_seconds(f) for f in feats if f.entities == entities}):
                read(f"lbw_{tag}_{sec}", entities, "label_ts", sec * 1_000_000)
                ctes.append(late_labels_cte(self, entities, sec))
                joins.append(f" LEFT JOIN lbx_{tag}_{sec} ON lbx_{tag}_{sec}._eid = ev_w.{eid}")
        cols = ", ".join(f"{r}.{r}_{what}" for r in reads for what in ("pos", "cnt"))
        using = "".join(f" LEFT JOIN {r} ON {r}._eid = lt._eid" for r in reads)
        ctes.append(f"lr AS (SELECT lt._eid, {cols} FROM lt{using})")
        return ctes, joins


SPARK = SparkDialect()


def compile_spark_query(spec: DatasetSpec) -> str:
    """The Spark SQL feature query of ``spec`` (``dialect.compile_query``; parameters
    ``:start`` and ``:end``, relations ``ev`` and ``lb``).

    Returns
    -------
    str
        SQL yielding one row per event ordered by ``(ts, id)``: id, ts, entity keys, one DOUBLE
        per feature.
    """
    return compile_query(spec, SPARK)


def spark_session(master: str | None = None, app: str = "ml_assets_features"):
    """A SparkSession for feature builds: UTC session time, ANSI SQL (overflow fails, never
    wraps), no UI, the driver bound to 127.0.0.1 unless the master is a cluster, its heap
    ``$ML_ASSETS_SPARK_DRIVER_MEMORY`` (default 4g; the result is collected there as Arrow).

    Parameters
    ----------
    master : str, optional
        ``local[N]`` or ``spark://host:port``; default ``$ML_ASSETS_SPARK_MASTER`` or
        ``local[2]``.
    app : str
        Application name.

    Returns
    -------
    pyspark.sql.SparkSession

    Raises
    ------
    RuntimeError
        pyspark is not installed (run the driver with :func:`spark_python`) or Java is not on
        PATH.
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError as e:
        raise RuntimeError(f"pyspark is not installed in {sys.executable}: Spark drivers run "
                           f"in their own environment (`make .venv-spark/.installed`, then "
                           f"{SPARK_PYTHON_ENV}=.venv-spark/bin/python)") from e
    if not os.environ.get("JAVA_HOME") and not _on_path("java"):
        raise RuntimeError("Java is not installed (no `java` on PATH, JAVA_HOME unset): "
                           "Spark needs a JDK 17 or later, e.g. Debian's openjdk-17-jre-headless")
    master = master or os.environ.get(SPARK_MASTER_ENV) or DEFAULT_MASTER
    builder = (SparkSession.builder.master(master).appName(app)
               # local mode's 1 GB default heap fails collecting a million rows to Arrow
               .config("spark.driver.memory",
                       os.environ.get(DRIVER_MEMORY_ENV) or DEFAULT_DRIVER_MEMORY)
               .config("spark.ui.enabled", "false")
               .config("spark.ui.showConsoleProgress", "false")
               .config("spark.sql.session.timeZone", "UTC")
               .config("spark.sql.ansi.enabled", "true")
               .config("spark.sql.shuffle.partitions", "8"))
    if master.startswith("local"):
        builder = (builder.config("spark.driver.host", "127.0.0.1")
                   .config("spark.driver.bindAddress", "127.0.0.1"))
    return builder.getOrCreate()


def _on_path(program: str) -> bool:
    import shutil
    return shutil.which(program) is not None


def spark_features(spark, spec: DatasetSpec, event_files: Sequence[str],
                   label_files: Sequence[str], start: datetime, end: datetime) -> pa.Table:
    """Features of the events in ``[start, end)``, computed by Spark from lake Parquet files.

    Parameters
    ----------
    spark : pyspark.sql.SparkSession
        From :func:`spark_session` (UTC session time zone).
    spec : DatasetSpec
    event_files : sequence of str
        ``raw_events`` partitions covering ``[start - spec.lookback, end)``.
    label_files : sequence of str
        ``raw_labels`` partitions (entity keys, ``label_ts``, ``label``, optionally
        ``available_at``); labels dated or available at or after ``end`` are left out, as
        ``build.load_labels`` does.
    start, end : datetime
        UTC window.

    Returns
    -------
    pyarrow.Table, one row per event in [start, end), ordered by (ts, id)
        Event id, timestamp, entity keys and one DOUBLE column per feature.

    Raises
    ------
    ValueError
        No event file was given.
    """
    if not event_files:
        raise ValueError(f"spark_features: no raw_events files for [{start}, {end})")
    spark.read.parquet(*event_files).createOrReplaceTempView("ev")
    q = SPARK.quote
    keys = ", ".join(q(k) for k in spec.entity_keys)
    if label_files:
        raw = spark.read.parquet(*label_files)
        has = "available_at" in raw.columns
        raw.createOrReplaceTempView("lb_raw")
        label_ts = f"CAST({q(spec.label_ts)} AS TIMESTAMP)"
        available = available_sql(spec, "CAST(available_at AS TIMESTAMP)" if has else "NULL",
                                  label_ts)
        spark.sql(
            f"SELECT * FROM (SELECT {keys}, {label_ts} AS label_ts, {available} AS available_at,"
            f" CAST({q(spec.label)} AS DOUBLE) AS label FROM lb_raw)"
            " WHERE label_ts < :end AND available_at < :end", args={"end": end}
        ).createOrReplaceTempView("lb")
    else:
        spark.sql(f"SELECT {keys}, CAST(NULL AS TIMESTAMP) AS label_ts,"
                  " CAST(NULL AS TIMESTAMP) AS available_at, CAST(NULL AS DOUBLE) AS label"
                  " FROM ev WHERE false").createOrReplaceTempView("lb")
    return spark.sql(compile_spark_query(spec), args={"start": start, "end": end}).toArrow()
