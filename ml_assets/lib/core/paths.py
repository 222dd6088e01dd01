"""Where runtime state lives. One root (``ML_ASSETS_DATA_DIR``) moves everything."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

DATA_DIR_ENV = "ML_ASSETS_DATA_DIR"
_REPO_DATA_DIR = Path(__file__).resolve().parents[3] / "data"

HOUR_FILE_FORMAT = "%Y-%m-%dT%H"
DAY_FILE_FORMAT = "%Y-%m-%d"


def default_data_dir() -> Path:
    return Path(os.environ.get(DATA_DIR_ENV) or _REPO_DATA_DIR).resolve()


@dataclass(frozen=True)
class DataPaths:
    root: Path

    @classmethod
    def from_env(cls) -> DataPaths:
        return cls(default_data_dir())

    @property
    def landing(self) -> Path:
        return self.root / "landing"

    @property
    def lake(self) -> Path:
        return self.root / "lake"

    @property
    def artifacts(self) -> Path:
        return self.root / "artifacts"

    @property
    def docs(self) -> Path:
        return self.root / "docs"

    @property
    def control_db(self) -> Path:
        return self.root / "control.sqlite"

    @property
    def dagster_home(self) -> Path:
        return self.root / "dagster_home"

    def landing_events_file(self, hour: datetime) -> Path:
        return self.landing / "events" / f"{hour.strftime(HOUR_FILE_FORMAT)}.parquet"

    def landing_labels_file(self, day: datetime) -> Path:
        return self.landing / "labels" / f"{day.strftime(DAY_FILE_FORMAT)}.parquet"

    def landing_reports_file(self, day: datetime) -> Path:
        return self.landing / "reports" / f"{day.strftime(DAY_FILE_FORMAT)}.parquet"

    def lake_file(self, asset: str, partition_key: str | None = None) -> Path:
        """The Parquet file of one asset partition (or of an unpartitioned asset)."""
        if partition_key is None:
            return self.lake / f"{asset}.parquet"
        return self.lake / asset / f"{partition_file_stem(partition_key)}.parquet"

    def ensure(self) -> DataPaths:
        for p in (self.landing / "events", self.landing / "labels", self.landing / "reports",
                  self.lake, self.artifacts,
                  self.docs, self.dagster_home):
            p.mkdir(parents=True, exist_ok=True)
        return self


def partition_file_stem(partition_key: str) -> str:
    """Dagster's hourly keys look like ``2026-07-01-13:00``; files use ``2026-07-01T13``."""
    if len(partition_key) == 16 and partition_key[10] == "-" and partition_key.endswith(":00"):
        return f"{partition_key[:10]}T{partition_key[11:13]}"
    return partition_key


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write via a temp file in the same directory then ``os.replace``: readers see old or new."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def write_parquet_atomic(df, path: Path) -> None:
    """Atomically write a DataFrame as Parquet (temp file + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    df.to_parquet(tmp, index=False)
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)
