"""Where the lake lives: a local directory, or an object-store URL (``s3://bucket/prefix``).

``ML_ASSETS_LAKE_URL`` (read when a :class:`~ml_assets.lib.core.paths.DataPaths` is built)
moves the lake off the data directory onto any fsspec filesystem (s3fs for S3 and S3-compatible
servers such as SeaweedFS or MinIO); endpoint and credentials come from the standard
``AWS_ENDPOINT_URL``/``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/``AWS_DEFAULT_REGION``
variables (botocore reads them). A remote lake path is a ``UPath``; a local one stays a
``pathlib.Path`` and keeps the local writers (temp file + syncfs + rename).

On an object store a PUT is atomic per object, so a partition is written as one PUT of its
whole bytes (readers see the old or the new object, never a part); many partitions go as one
batch of concurrent PUTs. Listings are not cached (``use_listings_cache=False``): another
process (a Dagster run) writes partitions this one must list.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlsplit

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from upath import UPath

LAKE_URL_ENV = "ML_ASSETS_LAKE_URL"
# fsspec protocols a lake may live on (s3fs's two spellings); others are refused, fail closed
REMOTE_PROTOCOLS = ("s3", "s3a")
_STORAGE_OPTIONS = {"use_listings_cache": False}

LakePath = Path | UPath


def lake_url() -> str | None:
    """``$ML_ASSETS_LAKE_URL``, or None when unset or empty (the lake is local)."""
    return os.environ.get(LAKE_URL_ENV) or None


def remote_root(url: str) -> UPath:
    """The lake root at an object-store URL.

    Parameters
    ----------
    url : str
        ``s3://<bucket>/<prefix>`` (the prefix may be empty).

    Returns
    -------
    UPath
        With listings uncached; every table path derives from it (same storage options).

    Raises
    ------
    ValueError
        The scheme is not one of ``REMOTE_PROTOCOLS``, the bucket is missing, or the URL holds
        credentials, a query, a fragment, ``..`` or control characters.
    """
    parts = urlsplit(url)
    why = None
    if parts.scheme not in REMOTE_PROTOCOLS:
        why = f"scheme must be one of {', '.join(REMOTE_PROTOCOLS)}"
    elif not parts.netloc or "@" in parts.netloc or ":" in parts.netloc:
        why = "needs a bucket name (no credentials or port: use the AWS_* variables)"
    elif parts.query or parts.fragment:
        why = "holds a query or fragment"
    elif ".." in parts.path.split("/") or any(ord(c) < 32 for c in url) or "\\" in url:
        why = "holds '..', a backslash or control characters"
    if why:
        raise ValueError(f"{LAKE_URL_ENV}={url!r} refused: {why} (e.g. s3://bucket/lake)")
    return UPath(url.rstrip("/"), **_STORAGE_OPTIONS)


def lake_root(local: Path) -> LakePath:
    """``remote_root($ML_ASSETS_LAKE_URL)`` when that is set, else ``local``.

    Raises
    ------
    ValueError
        As :func:`remote_root`, for a malformed URL.
    """
    url = lake_url()
    return remote_root(url) if url else local


def is_remote(path: LakePath) -> bool:
    """Whether ``path`` is on an object store (a ``UPath`` of a non-local protocol)."""
    return isinstance(path, UPath) and path.protocol not in ("", "file", "local")


def _dictionary_worthy(kind: pa.DataType) -> bool:
    return (pa.types.is_string(kind) or pa.types.is_large_string(kind)
            or pa.types.is_string_view(kind) or pa.types.is_dictionary(kind))


def write_parquet(table: pa.Table, where) -> None:
    """Write ``table`` as one lake Parquet file: pyarrow's defaults (snappy, column statistics,
    the Arrow schema) except that only string columns are dictionary-encoded.

    Numbers in a partition are mostly distinct (times, ids, amounts, features), so their
    dictionary pages are built and then abandoned or cost more bytes than they save: on the
    demo's hourly partitions, encoding only strings wrote 10-30% faster and 4-12% smaller files
    (daily ones 16-22% smaller). Readers see the same columns and types.

    Parameters
    ----------
    table : pyarrow.Table
    where : str, pathlib.Path or writable binary stream
        Passed to ``pyarrow.parquet.write_table``.
    """
    pq.write_table(table, where, use_dictionary=[f.name for f in table.schema
                                                 if _dictionary_worthy(f.type)])


def parquet_bytes(data: pd.DataFrame | pa.Table) -> bytes:
    """The bytes ``write_parquet_files_atomic`` would write for ``data`` (same conversion,
    :func:`write_parquet`)."""
    table = data if isinstance(data, pa.Table) else pa.Table.from_pandas(data, preserve_index=False)
    sink = pa.BufferOutputStream()
    write_parquet(table, sink)
    return sink.getvalue().to_pybytes()


def put_objects(items: dict[UPath, bytes]) -> None:
    """PUT each object whole, concurrently (``fs.pipe`` of a dict: s3fs batches the requests).

    Parameters
    ----------
    items : dict of UPath to bytes
        Remote paths of one filesystem (one lake) and their contents.

    Raises
    ------
    OSError
        From the filesystem; objects already PUT stay (each is whole).
    """
    if items:
        fs = next(iter(items)).fs
        fs.pipe({p.path: data for p, data in items.items()})


def put_parquet_files(items: Iterable[tuple[UPath, pd.DataFrame | pa.Table]]) -> None:
    """Write Parquet objects, one whole PUT each (:func:`put_objects`).

    Parameters
    ----------
    items : iterable of (UPath, pandas.DataFrame or pyarrow.Table)
        Paths and rows; the bytes are those a local write gives.
    """
    put_objects({path: parquet_bytes(rows) for path, rows in items})


def read_source(path: LakePath):
    """What pyarrow and pandas read ``path`` from: the local path itself, or the remote
    object's bytes (one GET) as a ``BytesIO``.

    Parameters
    ----------
    path : Path or UPath
        A lake file.
    """
    return io.BytesIO(path.read_bytes()) if is_remote(path) else path


def register_filesystem(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """Let ``con`` read the remote lake's ``s3://`` files (``register_filesystem`` of the
    lake root's fsspec filesystem; DuckDB's httpfs is not used). A no-op for a local lake.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection

    Returns
    -------
    duckdb.DuckDBPyConnection
        ``con``.
    """
    url = lake_url()
    if url:
        con.register_filesystem(remote_root(url).fs)
    return con
