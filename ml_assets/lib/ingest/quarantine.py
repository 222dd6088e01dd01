"""Quarantined rows, one file per source partition, so nothing that failed a contract is lost."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ml_assets.lib.core.paths import DataPaths, write_parquet_atomic
from ml_assets.lib.ingest.contracts import QUARANTINE_COLUMNS


def quarantine_dir(paths: DataPaths, asset: str) -> Path:
    return paths.lake / "_quarantine" / asset


def write_quarantine(paths: DataPaths, asset: str, rows: pd.DataFrame, stems: list[str]) -> None:
    """Replace the quarantine file of each partition stem in ``stems`` (removing stale ones)."""
    directory = quarantine_dir(paths, asset)
    by_stem = {Path(src).stem: g for src, g in rows.groupby("source")} if len(rows) else {}
    for stem in stems:
        path = directory / f"{stem}.parquet"
        if stem in by_stem:
            write_parquet_atomic(by_stem[stem].reset_index(drop=True), path)
        elif path.exists():
            path.unlink()


def read_quarantine(paths: DataPaths) -> pd.DataFrame:
    files = sorted((paths.lake / "_quarantine").glob("*/*.parquet"))
    if not files:
        return pd.DataFrame(columns=["asset", *QUARANTINE_COLUMNS])
    return pd.concat([pd.read_parquet(f).assign(asset=f.parent.name) for f in files],
                     ignore_index=True)
