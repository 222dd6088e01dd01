"""Quarantined rows, one file per source partition, so nothing that failed a contract is lost."""

from __future__ import annotations

import pandas as pd

from ml_assets.lib.core.catalog import QUARANTINE_FILES, Catalog
from ml_assets.lib.core.paths import DataPaths
from ml_assets.lib.ingest.contracts import QUARANTINE_COLUMNS


def write_quarantine(paths: DataPaths, asset: str, rows: pd.DataFrame, stems: list[str]) -> None:
    """Replace the quarantine file of each partition stem in ``stems`` (removing stale ones).

    Parameters
    ----------
    paths : DataPaths
    asset : str
        The asset the rows failed in (the folder under the quarantine table).
    rows : DataFrame, one row per quarantined record
        ``QUARANTINE_COLUMNS`` plus ``partition``, the stem of the partition the row belongs
        to (a daily landing file's rows belong to their hours); that column is not stored.
    stems : list of str
        The partitions just validated; one without rows loses its file.
    """
    table = Catalog(paths.lake).table(QUARANTINE_FILES)
    by_stem = dict(tuple(rows.groupby("partition"))) if len(rows) else {}
    for stem in stems:
        if stem in by_stem:
            table.write(f"{asset}/{stem}",
                        by_stem[stem].drop(columns="partition").reset_index(drop=True))
        else:
            table.delete(f"{asset}/{stem}")


def read_quarantine(paths: DataPaths) -> pd.DataFrame:
    """Every quarantined row in the lake.

    Parameters
    ----------
    paths : DataPaths

    Returns
    -------
    DataFrame, one row per quarantined record
        ``asset`` plus ``QUARANTINE_COLUMNS``; empty (with those columns) if none.
    """
    files = Catalog(paths.lake).table(QUARANTINE_FILES).files()
    if not files:
        return pd.DataFrame(columns=["asset", *QUARANTINE_COLUMNS])
    return pd.concat([pd.read_parquet(f).assign(asset=f.parent.name) for f in files],
                     ignore_index=True)
