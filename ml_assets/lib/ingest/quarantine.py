"""Quarantined rows, one file per source partition, so nothing that failed a contract is lost."""

from __future__ import annotations

import pandas as pd
from scipy import stats

from ml_assets.lib.core.catalog import QUARANTINE_FILES, Catalog
from ml_assets.lib.core.lake_store import read_source
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
    return pd.concat([pd.read_parquet(read_source(f)).assign(asset=f.parent.name) for f in files],
                     ignore_index=True)


MAX_QUARANTINE_SHARE = 0.02  # a clean source's rate of bad rows; well above it, do not build on it
QUARANTINE_ALPHA = 1e-3  # ... "well above": one-sided binomial p-value below this


def quarantine_excess(valid: int, quarantined: int, max_share: float = MAX_QUARANTINE_SHARE,
                      alpha: float = QUARANTINE_ALPHA) -> tuple[bool, float, float]:
    """Whether a partition's quarantined rows are more than a source at ``max_share`` bad rows
    would produce by chance, so the partition is too broken to build on.

    A fixed share misjudges small partitions: one bad row of an hour's 5 is a 20% share, yet a
    source with 2% bad rows gives that hour at least one bad row 10% of the time. The share must
    exceed ``max_share`` *and* the one-sided binomial test of ``quarantined`` rows out of ``n``
    against ``max_share`` must reject at ``alpha`` (exact tail, ``scipy.stats.binom.sf``).

    Parameters
    ----------
    valid, quarantined : int
        Rows kept and rows quarantined in the partition.
    max_share : float
        The tolerated rate of bad rows (0-1).
    alpha : float
        Significance level of the excess.

    Returns
    -------
    (excess, share, p_value) : (bool, float, float)
        ``share`` = quarantined / rows (0 for an empty partition); ``p_value`` =
        P(X >= quarantined) for X ~ Binomial(rows, max_share) (1 without quarantined rows).
    """
    n = valid + quarantined
    share = quarantined / n if n else 0.0
    p_value = float(stats.binom.sf(quarantined - 1, n, max_share)) if quarantined else 1.0
    return bool(share > max_share and p_value < alpha), share, p_value
