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


def record_partitions(context, out: Mapping[str, object],
                      figures: Mapping[str, Mapping[str, object]] | None = None) -> None:
    """Record each written partition's own figures on its own materialization.

    A range run materializes every partition of the range; metadata added to the output would
    be stamped on each of them, so a range total (rows of 60 days) would plot as a flat line
    that drops after a one-day rerun. Here every partition gets its own ``rows`` and
    ``figures[key]`` (unknown values left out, see :func:`known_metadata`), in one call per
    partition: Dagster copies its metadata accumulator on every call, so calls cost O(n) each.

    Parameters
    ----------
    context : dg.AssetExecutionContext
        The partitioned asset's context.
    out : mapping of str to DataFrame, Arrow table or None
        What the asset returns to the lake IO manager; ``None`` (blocked) records nothing.
    figures : mapping of str to mapping, optional
        Further per-partition figures, by partition key.
    """
    figures = figures or {}
    for key, data in out.items():
        if data is not None:
            context.add_asset_metadata(
                known_metadata({"rows": len(data), **figures.get(key, {})}), partition_key=key)


def by_version(rows: pd.DataFrame, names: Mapping[str, str]) -> dict[str, object]:
    """One partition's per-model figures keyed by model version, each version's role beside them.

    A series keyed by role (``champion/auc``) splices two models into one line after a
    promotion, unmarked; keyed by version each model keeps its own line, ``<version>/role`` says
    what it was on that partition and ``champion`` names the acting champion, so the partition
    where a promotion took effect shows.

    Parameters
    ----------
    rows : DataFrame, one row per model version
        ``model_version``, ``role`` and the columns named in ``names``; a missing column or a
        null value is unknown and left out downstream (:func:`known_metadata`).
    names : mapping of str to str
        Metadata name -> column: ``{"psi_vs_baseline": "psi"}`` records ``<version>/psi_vs_baseline``.

    Returns
    -------
    dict
        ``<version>/<name>`` values, ``<version>/role`` and, when a row is the champion, ``champion``.
    """
    out: dict[str, object] = {}
    for r in rows.to_dict("records"):
        version = r["model_version"]
        out |= {f"{version}/{name}": r.get(column) for name, column in names.items()}
        out[f"{version}/role"] = r["role"]
        if r["role"] == "champion":
            out["champion"] = version
    return out
