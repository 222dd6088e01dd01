"""The one context object a run carries: where the data lives, which dataset spec is active and
the door to the control plane.

It is built once at each entry point - the CLI (from ``--data-dir``/``--spec``), the Dagster
resource (``defs/resources.py``) and the serving app - and passed down to ``lib``. Nothing below
an entry point looks a spec up by name or reads ``os.environ``; the variables read here, when
a Workspace is built, are ``ML_ASSETS_SIGNING_KEY`` (the model signing key file) and
``ML_ASSETS_CONTROL_URL`` (a PostgreSQL control plane instead of ``control.sqlite``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from ml_assets.lib.core.catalog import Catalog
from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.paths import DataPaths
from ml_assets.lib.core.registry import Registry, RegistryError
from ml_assets.lib.core.registry.backend import POSTGRES_SCHEMES

SIGNING_KEY_ENV = "ML_ASSETS_SIGNING_KEY"
CONTROL_URL_ENV = "ML_ASSETS_CONTROL_URL"
MIN_KEY_BYTES = 32


def signing_key_file_from_env() -> Path | None:
    """The model signing key file named by ``$ML_ASSETS_SIGNING_KEY``, or None when unset."""
    name = os.environ.get(SIGNING_KEY_ENV, "").strip()
    return Path(name).expanduser().resolve() if name else None


def control_url_from_env() -> str | None:
    """The control plane's database URL from ``$ML_ASSETS_CONTROL_URL``, or None when unset
    (the default: ``<data_dir>/control.sqlite``).

    Raises
    ------
    RegistryError
        When it is set to anything but a ``postgresql://`` (``postgres://``,
        ``postgresql+psycopg2://``) URL.
    """
    url = os.environ.get(CONTROL_URL_ENV, "").strip()
    if url and not url.startswith(POSTGRES_SCHEMES):
        raise RegistryError(f"${CONTROL_URL_ENV} must be a postgresql:// URL (unset it for "
                            f"<data_dir>/control.sqlite); got {url.split('://')[0]}://...")
    return url or None


@dataclass(frozen=True)
class Workspace:
    """Paths, spec and control plane of one deployment.

    Parameters
    ----------
    paths : DataPaths
        Runtime state root (landing, lake, artifacts, docs, control plane).
    spec : DatasetSpec
        The dataset spec object itself (never a name to look up again).
    signing_key_file : pathlib.Path, optional
        The model signing key (default ``$ML_ASSETS_SIGNING_KEY``); it must lie outside the
        data directory, so write access to the data directory alone cannot forge a model.
    control_url : str, optional
        A PostgreSQL control plane shared by several machines (default
        ``$ML_ASSETS_CONTROL_URL``); None keeps it in ``paths.control_db`` (SQLite).
    """

    paths: DataPaths
    spec: DatasetSpec
    signing_key_file: Path | None = field(default_factory=signing_key_file_from_env)
    control_url: str | None = field(default_factory=control_url_from_env)

    @property
    def control_location(self) -> Path | str:
        """What ``Registry`` opens: ``control_url`` when set, else ``paths.control_db``."""
        return self.control_url or self.paths.control_db

    @classmethod
    def open(cls, data_dir: str | Path, spec: DatasetSpec) -> Workspace:
        """A workspace over ``data_dir`` (created lazily) for ``spec``.

        Parameters
        ----------
        data_dir : str or Path
            Runtime state root; resolved to an absolute path.
        spec : DatasetSpec

        Returns
        -------
        Workspace
            With the signing key file from ``$ML_ASSETS_SIGNING_KEY`` (None when unset).
        """
        return cls(DataPaths(Path(data_dir).resolve()), spec)

    @cached_property
    def catalog(self) -> Catalog:
        """The lake's tables (file layout, listing, reads and atomic writes); the event-side
        tables at the spec's ``partition_grain``."""
        return Catalog(self.paths.lake, self.spec.partition_grain)

    @cached_property
    def registry(self) -> Registry:
        """The control plane, opened once per workspace (checked, schema applied on first use).

        Raises
        ------
        RegistryError
            When the control plane is damaged or missing where one existed, or the signing key
            file is unreadable, too short or inside the data directory (fail closed).
        """
        return Registry(self.control_location, signing_key=self.signing_key())

    def open_registry_unkeyed(self) -> Registry:
        """A fresh, uncached open of the control plane without the signing key.

        For ``ml-assets control restore``: it probes whether the current file passes its checks
        and records the restore in the file it just put in place. Neither needs the key, and a
        bad key file must not block getting a damaged control plane back.

        Returns
        -------
        Registry
            A new registry over ``control_location`` (checked, schema applied).

        Raises
        ------
        RegistryError
            When the control plane is damaged or missing where one existed.
        """
        return Registry(self.control_location)

    def signing_key(self) -> bytes | None:
        """The model signing key's bytes, or None when no key file is configured.

        Raises
        ------
        RegistryError
            When the key file is unreadable, shorter than 32 bytes, or inside the data directory.
        """
        if self.signing_key_file is None:
            return None
        key_file = Path(self.signing_key_file).resolve()
        if key_file.is_relative_to(self.paths.root.resolve()):
            raise RegistryError(f"signing key {key_file} is inside the data directory: anyone "
                                f"who can write the data can forge with it; keep it outside")
        try:
            key = key_file.read_bytes().strip()
        except OSError as exc:
            raise RegistryError(f"signing key {key_file} (${SIGNING_KEY_ENV}) is unreadable "
                                f"({exc}); refusing to load models unverified") from exc
        if len(key) < MIN_KEY_BYTES:
            raise RegistryError(f"signing key {key_file} has {len(key)} bytes; use at least "
                                f"{MIN_KEY_BYTES} (e.g. `head -c 32 /dev/urandom | base64`)")
        return key
