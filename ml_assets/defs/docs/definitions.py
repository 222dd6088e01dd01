"""Docs domain: model card, interface contract, runbook and shadow checklist as Markdown."""

import dagster as dg

from ml_assets.defs.docs.assets import build_docs_assets
from ml_assets.lib.core.datasets import DatasetSpec


def build_defs(spec: DatasetSpec) -> dg.Definitions:
    """The generated documents.

    Parameters
    ----------
    spec : DatasetSpec
        The dataset spec (model name, owner).

    Returns
    -------
    dg.Definitions
        Without resources: ``ml_assets.definitions`` adds them once for every domain.
    """
    return dg.Definitions(assets=build_docs_assets(spec))
