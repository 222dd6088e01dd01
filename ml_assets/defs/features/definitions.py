"""Features domain: event features from the compiled feature SQL, and their contract; with a
Spark master configured, the same features built on Spark through Pipes (``spark.py``)."""

import dagster as dg

from ml_assets.defs.features.assets import build_feature_assets
from ml_assets.defs.features.checks import build_feature_checks
from ml_assets.defs.features.spark import build_spark_defs, spark_enabled
from ml_assets.lib.core.datasets import DatasetSpec


def build_defs(spec: DatasetSpec) -> dg.Definitions:
    """The ``event_features`` asset and its blocking ``feature_contract`` check; with
    ``ML_ASSETS_SPARK_MASTER`` set, ``spark_event_features`` too (``spark.build_spark_defs``).

    Parameters
    ----------
    spec : DatasetSpec
        The dataset spec (feature definitions, owner, partition start).

    Returns
    -------
    dg.Definitions
        Without the shared resources: ``ml_assets.definitions`` adds them once for every
        domain (the Spark part brings its own Pipes client).
    """
    duckdb = dg.Definitions(assets=build_feature_assets(spec),
                            asset_checks=build_feature_checks(spec))
    return dg.Definitions.merge(duckdb, build_spark_defs(spec)) if spark_enabled() else duckdb
