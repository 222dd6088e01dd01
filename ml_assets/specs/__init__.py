"""Dataset specs by name. ``ML_ASSETS_SPEC`` picks the active one (default: the fraud demo)."""

from __future__ import annotations

import os

from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.identifiers import SpecError

SPEC_ENV = "ML_ASSETS_SPEC"
DEFAULT_SPEC = "card_fraud"


def available_specs() -> dict[str, DatasetSpec]:
    from .fraud import FRAUD_SPEC
    from .support_tickets import SUPPORT_TICKETS_SPEC

    return {s.name: s for s in (FRAUD_SPEC, SUPPORT_TICKETS_SPEC)}


def spec_named(name: str, source: str = "--spec") -> DatasetSpec:
    """The built-in dataset spec called ``name``.

    Parameters
    ----------
    name : str
        A spec name, e.g. ``card_fraud``.
    source : str, default "--spec"
        Where the name came from, for the error message.

    Raises
    ------
    SpecError
        When no built-in spec has that name (the message lists the known ones).
    """
    specs = available_specs()
    if name not in specs:
        raise SpecError(f"{source}={name!r} names no dataset spec; known: {sorted(specs)}")
    return specs[name]


def active_spec() -> DatasetSpec:
    """The spec ``ML_ASSETS_SPEC`` names (default ``card_fraud``); for entry points only."""
    return spec_named(os.environ.get(SPEC_ENV, DEFAULT_SPEC), SPEC_ENV)
