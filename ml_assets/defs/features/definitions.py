"""Features domain: hourly event features from the compiled feature SQL, and their contract."""

import dagster as dg

from ml_assets.defs.features.assets import build_feature_assets
from ml_assets.defs.features.checks import build_feature_checks
from ml_assets.lib.core.datasets import DatasetSpec


def build_defs(spec: DatasetSpec) -> dg.Definitions:
    """The ``event_features`` asset and its blocking ``feature_contract`` check.

    Parameters
    ----------
    spec : DatasetSpec
        The dataset spec (feature definitions, owner, partition start).

    Returns
    -------
    dg.Definitions
        Without resources: ``ml_assets.definitions`` adds them once for every domain.
    """
    return dg.Definitions(assets=build_feature_assets(spec),
                          asset_checks=build_feature_checks(spec))
