"""Feature backfills on Spark, launched through Dagster Pipes, with a parity check against
DuckDB. Present only when a Spark master is configured (``ML_ASSETS_SPARK_MASTER``)."""

import os

import dagster as dg

from ml_assets.defs.features.assets import lookback_deps
from ml_assets.defs.metadata import add_partition_metadata
from ml_assets.defs.partitions import event_partitions
from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.workspace import Workspace
from ml_assets.lib.features.engine_parity import MEAN_RTOL, lake_parity
from ml_assets.lib.features.spark_sql import SPARK_MASTER_ENV, spark_python

# The Pipes external process: a Spark driver that imports no Dagster, in the Spark environment.
SPARK_BACKFILL_MODULE = "ml_assets.pipes.spark_backfill"


def spark_enabled() -> bool:
    """Whether this deployment builds features on Spark too (a master is configured)."""
    return bool(os.environ.get(SPARK_MASTER_ENV))


def build_spark_defs(spec: DatasetSpec) -> dg.Definitions:
    """``spark_event_features`` with its ``engine_parity`` check, and the Pipes client that
    launches the Spark driver (the ``spark_pipes`` resource: swap in another Pipes client, e.g.
    for Kubernetes or EMR, to run the driver elsewhere).

    Parameters
    ----------
    spec : DatasetSpec
        Must have an ``origin`` (loaded by ``load_spec``/``ML_ASSETS_SPEC``): the driver loads
        the same spec by its reference and refuses a source whose SHA-256 changed.
    """
    @dg.asset(
        name="spark_event_features",
        group_name="features",
        partitions_def=event_partitions(spec),
        backfill_policy=dg.BackfillPolicy.single_run(),
        deps=[*lookback_deps(spec), "event_features"],
        kinds={"spark", "parquet"},
        owners=[spec.owner],
        description=(
            "The event_features declarations computed by Spark SQL (same point-in-time frames, "
            "label availability and exact DECIMAL sums) in a Spark driver launched through "
            f"Dagster Pipes; master from {SPARK_MASTER_ENV}. For backfills whose history does "
            "not fit one machine; scoring reads event_features."),
        check_specs=[dg.AssetCheckSpec(
            "engine_parity", asset="spark_event_features", additional_deps=["event_features"],
            description=(
                "Spark's features equal DuckDB's event_features: row counts on every partition of "
                "the run, values on a deterministic sample of about 50,000 events: counts, sums, "
                f"max, distinct counts, label aggregates bit for bit; means within {MEAN_RTOL:g} "
                "relative (Spark rounds AVG(DECIMAL) to 13 decimals)."))],
    )
    def spark_event_features(context: dg.AssetExecutionContext,
                             project: dg.ResourceParam[Workspace],
                             spark_pipes: dg.PipesSubprocessClient):
        origin = project.spec.origin
        if origin is None:
            raise dg.Failure("the spec has no source the Spark driver could load it from: load "
                             "it with ML_ASSETS_SPEC or ml_assets.specs.loading.load_spec")
        start, end = context.partition_time_window
        extras = {"spec_ref": origin.ref, "spec_sha256": origin.sha256,
                  "data_dir": str(project.paths.root), "start": start.isoformat(),
                  "end": end.isoformat(), "master": os.environ.get(SPARK_MASTER_ENV, "")}
        invocation = spark_pipes.run(context=context, extras=extras,
                                     command=[spark_python(), "-m", SPARK_BACKFILL_MODULE])
        [done] = invocation.get_custom_messages()
        # each partition's own rows on its own materialization; the run's totals in the log
        add_partition_metadata(context.get_step_execution_context(), context.assets_def.key,
                               {key: {"rows": n} for key, n in done["rows"].items()})
        context.log.info(f"{sum(done['rows'].values()):,} feature rows computed by Spark in "
                         f"{done['spark_seconds']} s (session start {done['session_seconds']} s)")
        yield from invocation.get_results()
        verdict = lake_parity(project.catalog, spec, start, end)
        if verdict["missing"]:
            yield dg.AssetCheckResult(
                check_name="engine_parity", passed=False, severity=dg.AssetCheckSeverity.WARN,
                description=f"not compared: event_features lacks {len(verdict['missing'])} "
                            f"partition(s) of the run, e.g. {verdict['missing'][:3]}",
                metadata={"missing_partitions": len(verdict["missing"])})
            return
        differences = verdict["differences"]
        yield dg.AssetCheckResult(
            check_name="engine_parity", passed=not differences,
            description="; ".join(differences[:5]) if differences else (
                f"{verdict['compared_rows']:,} sampled events of {verdict['rows']:,} identical"),
            metadata={"rows": verdict["rows"], "compared_rows": verdict["compared_rows"],
                      "differences": len(differences)})

    return dg.Definitions(assets=[spark_event_features],
                          resources={"spark_pipes": dg.PipesSubprocessClient()})
