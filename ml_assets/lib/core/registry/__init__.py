"""The only door to the control plane (``control.sqlite``): model versions, aliases, kill switch,
rollout stage, reference sets, drills, drill results, the landing ledger and the audit log.

- ``control.py``: ``Registry`` (build it via ``Workspace.registry``), ``RegistryError``, ``ALIASES``
- ``records.py``: the append-only drill, drill-result and landing-ledger records
- ``snapshot.py``: the serving path's one-query read of aliases and settings
- ``backend.py``: the connection policy (SQLite/WAL today; the PostgreSQL seam)
- ``integrity.py``: checks before every open (0-byte, header, WAL, audit chain, head file),
  backup and restore
- ``schema.py``: the one schema
"""

from ml_assets.lib.core.registry.control import ALIASES, Registry
from ml_assets.lib.core.registry.integrity import ControlPlaneDamaged, RegistryError
from ml_assets.lib.core.registry.snapshot import ControlSnapshotReader

__all__ = ["ALIASES", "ControlPlaneDamaged", "ControlSnapshotReader", "Registry", "RegistryError"]
