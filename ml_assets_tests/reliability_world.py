"""Helpers for the reliability tests: tiny landing files, copies of the session world, real
child processes that can be stopped at a chosen point and killed with SIGKILL."""

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from ml_assets.lib.paths import DataPaths

HOUR = datetime(2026, 7, 1, 10, tzinfo=UTC)
NOW = datetime(2026, 11, 1, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[1]


def good_events(hour: datetime = HOUR, n: int = 5, first_id: int = 1) -> pd.DataFrame:
    return pd.DataFrame({
        "event_id": np.arange(first_id, first_id + n, dtype="int64"),
        "event_ts": pd.date_range(hour, periods=n, freq="7min", tz="UTC").astype("datetime64[us, UTC]"),
        "card_id": np.arange(n, dtype="int64") % 2,
        "merchant_id": np.arange(n, dtype="int64"),
        "amount": np.linspace(1, 100, n),
        "merchant_category": "grocery",
        "country": "US",
        "device": "web",
        "distance_km": 3.0,
    })


def copy_world(world: dict, dst: Path) -> DataPaths:
    """A private copy of the session world (which is read-only), without its Dagster instance."""
    shutil.copytree(world["paths"].root, dst, ignore=shutil.ignore_patterns("dagster_home"))
    return DataPaths(dst)


def tree_digest(root: Path, exclude: tuple[str, ...] = ("dagster_home",)) -> dict[str, str]:
    """relative path -> sha256 of every file under root (outside ``exclude``)."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if p.is_file() and not any(part in exclude for part in rel.parts):
            out[str(rel)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def child_env(data_dir: Path | None = None) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO),
           "PYTHONWARNINGS": "ignore"}
    if data_dir is not None:
        env["ML_ASSETS_DATA_DIR"] = str(data_dir)
        env["DAGSTER_HOME"] = str(data_dir / "dagster_home")
    return env


def write_script(directory: Path, name: str, body: str) -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(body))
    return path


class Child:
    """A real Python process running a script; it prints markers on stdout we can wait for."""

    def __init__(self, script: Path, *args: str, env: dict | None = None):
        self.proc = subprocess.Popen([sys.executable, "-u", str(script), *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env=env or child_env(), cwd=REPO)
        self.lines: list[str] = []

    def wait_for(self, marker: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                if self.proc.poll() is not None:
                    break
                continue
            self.lines.append(line.rstrip())
            if line.startswith(marker):
                return line.rstrip()
        err = self.proc.stderr.read() if self.proc.poll() is not None else ""
        raise AssertionError(f"child never printed {marker!r}; stdout={self.lines[-5:]} "
                             f"stderr={err[-2000:]}")

    def kill9(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        assert self.proc.returncode == -signal.SIGKILL

    def stop(self) -> None:
        """Kill the child if it is still running (cleanup after a failed assertion)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)

    def finish(self, timeout: float = 120) -> tuple[int, str, str]:
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, "\n".join(self.lines) + out, err


def shifted_hour(paths: DataPaths, src_hour: datetime, dst_hour: datetime, id_offset: int,
                 ) -> pd.DataFrame:
    """A landing file for ``dst_hour`` made from ``src_hour``'s (new ids, same entities)."""
    df = pd.read_parquet(paths.landing_events_file(src_hour))
    df["event_ts"] = df["event_ts"] + (dst_hour - src_hour)
    df["event_id"] = df["event_id"] + id_offset
    return df


def hours(start: datetime, n: int) -> list[datetime]:
    return [start + timedelta(hours=i) for i in range(n)]


def spec_with(**overrides):
    """The fraud spec with some fields replaced (validation runs on construction)."""
    from ml_assets.lib.datasets import DatasetSpec
    from ml_assets.specs.fraud import FRAUD_SPEC

    fields = {f: getattr(FRAUD_SPEC, f) for f in FRAUD_SPEC.__dataclass_fields__}
    return DatasetSpec(**{**fields, **overrides})
