"""The only door to the control plane (``control.sqlite``, or PostgreSQL by URL): model versions, aliases, kill switch,
rollout stage, reference sets, drills, drill results, the landing ledger and the audit log.

- ``control.py``: ``Registry`` (build it via ``Workspace.registry``), ``RegistryError``, ``ALIASES``
- ``records.py``: the append-only drill, drill-result and landing-ledger records
- ``snapshot.py``: the serving path's one-query read of aliases and settings
- ``backend.py``: the connection policy and dialect of SQLite/WAL, and ``open_backend``
- ``postgres.py``: the same on PostgreSQL (advisory-lock writers, change counter)
- ``integrity.py``: checks before every open (0-byte, header, WAL, audit chain, head file),
  backup and restore
- ``schema.py``: the one schema
"""

from ml_assets.lib.core.registry.control import ALIASES, Registry
from ml_assets.lib.core.registry.integrity import (
    ControlPlaneDamaged,
    ControlPlaneUnavailable,
    RegistryError,
)
from ml_assets.lib.core.registry.snapshot import ControlSnapshotReader

__all__ = ["ALIASES", "ControlPlaneDamaged", "ControlPlaneUnavailable", "ControlSnapshotReader",
           "Registry", "RegistryError"]
