"""Content-addressed artifacts: stored as ``<sha256>.<ext>`` and verified before every load."""

from __future__ import annotations

import hashlib
import io
import pickle
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from ml_assets.lib.core.paths import atomic_write_bytes


class ArtifactIntegrityError(RuntimeError):
    """An artifact is missing or its bytes do not match the SHA-256 the registry recorded."""


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def store(directory: Path, data: bytes, ext: str) -> tuple[str, Path]:
    sha = sha256_bytes(data)
    path = directory / f"{sha}.{ext}"
    if not path.exists() or sha256_file(path) != sha:
        atomic_write_bytes(path, data)
    return sha, path


def read_verified(path: Path, expected_sha256: str) -> bytes:
    if not path.exists():
        raise ArtifactIntegrityError(f"artifact {path} is missing (expected sha256 "
                                     f"{expected_sha256[:12]}...); it cannot be loaded or served")
    data = path.read_bytes()
    actual = sha256_bytes(data)
    if actual != expected_sha256:
        raise ArtifactIntegrityError(
            f"artifact {path} fails verification: sha256 {actual[:12]}... != registered "
            f"{expected_sha256[:12]}...; refusing to load it (restore it from backup or retrain)")
    return data


def store_model(directory: Path, bundle: dict) -> tuple[str, Path]:
    return store(directory, pickle.dumps(_interned(bundle, set()), protocol=5), "pkl")


def _interned(obj, seen: set):
    """Make equal strings one object throughout the graph. Pickle memoizes by identity, and
    whether e.g. sklearn's default ``scoring="loss"`` is the very object used as a dict key
    elsewhere depends on what the process imported first - so without this the same model
    pickles to different bytes (and SHA-256) in a Dagster run and in a CLI rerun."""
    if isinstance(obj, str):
        return sys.intern(obj)
    if id(obj) in seen or isinstance(obj, (bytes, int, float, bool, np.ndarray)) or obj is None:
        return obj
    seen.add(id(obj))
    if isinstance(obj, dict):
        items = [(_interned(k, seen), _interned(v, seen)) for k, v in obj.items()]
        obj.clear()
        obj.update(items)
    elif isinstance(obj, list):
        obj[:] = [_interned(v, seen) for v in obj]
    elif isinstance(obj, tuple):
        return type(obj)(_interned(v, seen) for v in obj) if type(obj) is tuple else obj
    elif hasattr(obj, "__dict__"):
        _interned(vars(obj), seen)
    return obj


def load_model(path: Path, expected_sha256: str) -> dict:
    # Unpickling is only ever done on bytes whose SHA-256 matches the registry.
    return pickle.loads(read_verified(path, expected_sha256))  # noqa: S301


def frame_to_parquet_bytes(df: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False, compression="zstd")
    return buf.getvalue()


def dataset_sha256(df: pd.DataFrame) -> str:
    """SHA-256 of a table's content: column names, dtypes and values in row order. Independent
    of the file format, so the same rows always hash the same."""
    h = hashlib.sha256()
    for col in df.columns:
        series = df[col]
        h.update(f"{col}|{series.dtype}|".encode())
        if pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_datetime64_any_dtype(
                series.dtype):
            if isinstance(series.dtype, pd.DatetimeTZDtype):  # to_numpy() would give objects,
                series = series.dt.tz_convert("UTC").dt.tz_localize(None)  # hashed by address
            values = series.to_numpy()
            if values.dtype.kind == "f":
                values = np.where(np.isnan(values), np.nan, values)  # one canonical NaN
            elif values.dtype.kind == "M":
                values = values.view("int64")
            h.update(np.ascontiguousarray(values).tobytes())
        else:
            h.update("\x1f".join("\x00" if v is None or v is pd.NA else str(v)
                                 for v in series.tolist()).encode())
    return h.hexdigest()
