"""Serving domain (in Dagster): the online/offline parity check of the realtime path."""

import dagster as dg

from ml_assets.defs.serving.checks import build_serving_checks
from ml_assets.lib.core.datasets import DatasetSpec


def build_defs(spec: DatasetSpec) -> dg.Definitions:
    """The ``online_offline_parity`` check on ``batch_scores``.

    Parameters
    ----------
    spec : DatasetSpec
        The dataset spec (features, models).

    Returns
    -------
    dg.Definitions
        Without resources: ``ml_assets.definitions`` adds them once for every domain.
    """
    return dg.Definitions(asset_checks=build_serving_checks(spec))
