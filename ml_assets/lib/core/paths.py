"""Where runtime state lives. One root (``ML_ASSETS_DATA_DIR``) moves everything."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ml_assets.lib.core.lake import DAY_FILE_FORMAT, HOUR_FILE_FORMAT

DATA_DIR_ENV = "ML_ASSETS_DATA_DIR"
_REPO_DATA_DIR = Path(__file__).resolve().parents[3] / "data"


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
        """The lake root; tables and file names under it are the catalog's (lib/core/catalog)."""
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

    def ensure(self) -> DataPaths:
        for p in (self.landing / "events", self.landing / "labels", self.landing / "reports",
                  self.lake, self.artifacts,
                  self.docs, self.dagster_home):
            p.mkdir(parents=True, exist_ok=True)
        return self


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
