"""Dataset specs by name. ``ML_ASSETS_SPEC`` picks the active one (default: the fraud demo)."""

from __future__ import annotations

import os

from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.identifiers import SpecError

SPEC_ENV = "ML_ASSETS_SPEC"


def available_specs() -> dict[str, DatasetSpec]:
    from .fraud import FRAUD_SPEC
    from .support_tickets import SUPPORT_TICKETS_SPEC

    return {s.name: s for s in (FRAUD_SPEC, SUPPORT_TICKETS_SPEC)}


def active_spec() -> DatasetSpec:
    name = os.environ.get(SPEC_ENV, "card_fraud")
    specs = available_specs()
    if name not in specs:
        raise SpecError(f"{SPEC_ENV}={name!r} names no dataset spec; known: {sorted(specs)}")
    return specs[name]
