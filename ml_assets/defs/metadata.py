"""One way to say "unknown" in Dagster metadata: leave the key out.

A sentinel such as ``-1.0`` would be plotted by the UI as if it were measured, and a string
``"none"`` turns a numeric series into text; an omitted key is simply a gap in the plot."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd


def known_metadata(values: Mapping[str, object]) -> dict[str, object]:
    """Metadata for an asset, check or op, with unknown values left out.

    Parameters
    ----------
    values : mapping of str to object
        Metadata entries. ``None``, NaN (float or numpy), ``pd.NA`` and ``pd.NaT`` mean
        "unknown"; numpy scalars are converted to the Python ``int``/``float``/``bool`` Dagster
        records natively; ``dg.MetadataValue`` instances and other values pass unchanged.

    Returns
    -------
    dict
        The entries whose value is known, in the given order.
    """
    out = {}
    for key, value in values.items():
        if isinstance(value, np.generic):
            value = value.item()
        if (value is None or value is pd.NA or value is pd.NaT
                or (isinstance(value, float) and math.isnan(value))):
            continue
        out[key] = value
    return out
