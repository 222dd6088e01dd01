"""The one context object a run carries: where the data lives, which dataset spec is active and
the door to the control plane.

It is built once at each entry point - the CLI (from ``--data-dir``/``--spec``), the Dagster
resource (``defs/resources.py``) and the serving app - and passed down to ``lib``. Nothing below
an entry point looks a spec up by name or reads ``os.environ``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from ml_assets.lib.core.catalog import Catalog
from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.paths import DataPaths
from ml_assets.lib.core.registry import Registry


@dataclass(frozen=True)
class Workspace:
    """Paths, spec and control plane of one deployment.

    Parameters
    ----------
    paths : DataPaths
        Runtime state root (landing, lake, artifacts, docs, control plane).
    spec : DatasetSpec
        The dataset spec object itself (never a name to look up again).
    """

    paths: DataPaths
    spec: DatasetSpec

    @classmethod
    def open(cls, data_dir: str | Path, spec: DatasetSpec) -> Workspace:
        """A workspace over ``data_dir`` (created lazily) for ``spec``."""
        return cls(DataPaths(Path(data_dir).resolve()), spec)

    @cached_property
    def catalog(self) -> Catalog:
        """The lake's tables (file layout, listing, reads and atomic writes)."""
        return Catalog(self.paths.lake)

    @cached_property
    def registry(self) -> Registry:
        """The control plane, opened once per workspace (schema applied on first use)."""
        return Registry(self.paths.control_db)
