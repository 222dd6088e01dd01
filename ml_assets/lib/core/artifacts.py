"""Content-addressed artifacts: stored as ``<sha256>.<ext>`` and verified before every load."""

from __future__ import annotations

import hashlib
import io
import pickle
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from ml_assets.lib.core.identifiers import UnsafePath, confined
from ml_assets.lib.core.paths import DataPaths, atomic_write_bytes


class ArtifactIntegrityError(RuntimeError):
    """An artifact is missing or its bytes do not match the SHA-256 the registry recorded."""


def recorded_file(paths: DataPaths, rel: str, what: str = "artifact_path") -> Path:
    """The file a control-plane row or pointer recorded relative to the data directory.

    Parameters
    ----------
    paths : DataPaths
        The data directory.
    rel : str
        The recorded path (``artifacts/<sha256>.pkl``).
    what : str, default "artifact_path"
        The field it came from, for the error.

    Returns
    -------
    Path
        ``paths.root / rel``.

    Raises
    ------
    UnsafePath
        When ``rel`` leaves ``artifacts/`` (``..``, absolute, a symlink out): a row written
        outside the code must not point the loader at any other file.
    """
    path = confined(paths.root, rel, what, nested=True)
    if not path.resolve().is_relative_to(paths.artifacts.resolve()):
        raise UnsafePath(f"{what} {rel!r} refused: it is not inside {paths.artifacts}")
    return path


def sha256_bytes(data: bytes) -> str:
    """SHA-256 (FIPS 180-4) of ``data`` as 64 lowercase hex digits."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    """SHA-256 (FIPS 180-4) of a file's bytes as 64 lowercase hex digits, read in 1 MiB blocks.

    Parameters
    ----------
    path : pathlib.Path
        An existing file (``FileNotFoundError`` otherwise).
    """
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def store(directory: Path, data: bytes, ext: str) -> tuple[str, Path]:
    """Write ``data`` as ``<directory>/<sha256>.<ext>`` (atomically; kept if already intact).

    Parameters
    ----------
    directory : pathlib.Path
    data : bytes
    ext : str
        File extension without the dot, e.g. ``"pkl"``.

    Returns
    -------
    (str, pathlib.Path)
        The SHA-256 hex digest of ``data`` and the file.
    """
    sha = sha256_bytes(data)
    path = directory / f"{sha}.{ext}"
    if not path.exists() or sha256_file(path) != sha:
        atomic_write_bytes(path, data)
    return sha, path


def read_verified(path: Path, expected_sha256: str) -> bytes:
    """The bytes of ``path``, only if their SHA-256 is ``expected_sha256``.

    Parameters
    ----------
    path : pathlib.Path
    expected_sha256 : str
        64 lowercase hex digits, as recorded in the registry.

    Raises
    ------
    ArtifactIntegrityError
        The file is missing or its SHA-256 differs.
    """
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
    """Pickle ``bundle`` (protocol 5, equal strings interned so the bytes are reproducible)
    and ``store`` it as ``<sha256>.pkl``.

    Parameters
    ----------
    directory : pathlib.Path
        Usually ``DataPaths.artifacts``.
    bundle : dict
        The model and its metadata; interned in place.

    Returns
    -------
    (str, pathlib.Path)
        SHA-256 hex digest of the pickle and its file.
    """
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


# What a model bundle may reference when unpickled: classes of these libraries plus the few
# reconstruction functions numpy and sklearn pickle by name. Anything else (os.system, eval,
# subprocess, builtins.exec, a project function) is refused before it can be called, so a
# pickle an attacker wrote into artifacts/ cannot run code even if its SHA-256 was re-recorded.
_CLASS_MODULES = ("numpy", "sklearn", "scipy")
_FUNCTIONS = {
    ("builtins", "slice"), ("builtins", "frozenset"), ("builtins", "set"),
    ("functools", "partial"), ("collections", "OrderedDict"),
    ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"), ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"), ("numpy.random._pickle", "__generator_ctor"),
    ("numpy.random._pickle", "__bit_generator_ctor"),
    ("numpy.random._pickle", "__randomstate_ctor"),
    ("numpy.random.bit_generator", "__pyx_unpickle_SeedSequence"),
    ("sklearn.utils.validation", "check_array"),
}
_REFUSED_CLASSES = {("numpy", "memmap")}  # would open (and create) files


class _ModelUnpickler(pickle.Unpickler):
    """Resolves only allow-listed globals (see ``_CLASS_MODULES`` and ``_FUNCTIONS``)."""

    def find_class(self, module: str, name: str):
        obj = super().find_class(module, name) if _allowed_name(module, name) else None
        if (module, name) in _FUNCTIONS or (
                isinstance(obj, type) and module.split(".")[0] in _CLASS_MODULES
                and (module, name) not in _REFUSED_CLASSES):
            return obj
        raise ArtifactIntegrityError(f"model artifact references {module}.{name}, which a "
                                     "model bundle never contains; refusing to load it")


def _allowed_name(module: str, name: str) -> bool:
    """Import only modules that could hold an allowed global (importing runs module code)."""
    return (module, name) in _FUNCTIONS or module.split(".")[0] in _CLASS_MODULES


def load_model(path: Path, expected_sha256: str) -> dict:
    """A verified model bundle: bytes must match ``expected_sha256``, and the pickle may only
    build allow-listed numpy/sklearn/scipy objects (``_ModelUnpickler``).

    Parameters
    ----------
    path : pathlib.Path
        The artifact (``recorded_file`` of the model card's ``artifact_path``).
    expected_sha256 : str
        The card's ``artifact_sha256`` (64 hex digits).

    Returns
    -------
    dict
        The model bundle as ``store_model`` wrote it.

    Raises
    ------
    ArtifactIntegrityError
        Missing file, wrong SHA-256, or a pickle referencing anything outside the allow list.
    """
    data = read_verified(path, expected_sha256)
    return _ModelUnpickler(io.BytesIO(data)).load()


def frame_to_parquet_bytes(df: pd.DataFrame) -> bytes:
    """``df`` as Parquet bytes (zstd-compressed, index dropped)."""
    buf = io.BytesIO()
    df.to_parquet(buf, index=False, compression="zstd")
    return buf.getvalue()


def dataset_sha256(df: pd.DataFrame) -> str:
    """SHA-256 of a table's content: column names, dtypes and values in row order. Independent
    of the file format, so the same rows always hash the same.

    Parameters
    ----------
    df : DataFrame, any columns
        Tz-aware timestamps are hashed as UTC nanoseconds; every NaN hashes alike; other
        non-numeric values by ``str`` (None and ``pd.NA`` alike).

    Returns
    -------
    str
        64 lowercase hex digits (SHA-256, FIPS 180-4).
    """
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
