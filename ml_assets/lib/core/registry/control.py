"""The control plane: model versions and their cards, aliases, kill switch, rollout stage, the
frozen reference set and an append-only audit log. Every change is one transaction.

Drills, drill results and the landing ledger are in ``records.py``; the SQL runs through the
``SqliteBackend`` the registry holds (``backend.py``), the schema is ``schema.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

from ml_assets.lib.core.registry.backend import SqliteBackend
from ml_assets.lib.core.registry.records import Records, now
from ml_assets.lib.core.registry.schema import SCHEMA
from ml_assets.lib.core.registry.snapshot import ControlSnapshotReader

ALIASES = ("champion", "challenger", "previous")


class RegistryError(RuntimeError):
    """A control-plane request cannot be honoured; the message says why and what to do."""



class Registry(Records):
    """The only door to the control plane (``control.sqlite``).

    Build it through ``Workspace.registry`` (tests may build one directly to set up a world);
    the schema is applied once, here, not per call.

    Parameters
    ----------
    path : pathlib.Path
        The SQLite database file; it and its directory are created if missing.
    """

    def __init__(self, path: Path):
        self.backend = SqliteBackend(path)
        self.path = self.backend.path
        self.backend.apply_schema(SCHEMA)

    def snapshot_reader(self, model_name: str,
                        setting_keys: tuple[str, ...]) -> ControlSnapshotReader:
        """A fast reader of ``model_name``'s aliases and the given settings, for serving.

        Parameters
        ----------
        model_name : str
            The model whose aliases are read.
        setting_keys : tuple of str
            The settings read with them (e.g. the kill switch and the rollout state keys).

        Returns
        -------
        ControlSnapshotReader
            One query per ``read()`` on a per-thread read-only connection.
        """
        return ControlSnapshotReader(self.backend, model_name, setting_keys)

    @staticmethod
    def _audit(con, actor: str, action: str, target: str, reason: str, detail: dict) -> None:
        if not actor:
            raise RegistryError(f"{action} needs an identity (--actor or $USER) for the audit log")
        con.execute("INSERT INTO audit (ts, actor, action, target, reason, detail) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (now(), actor, action, target, reason, json.dumps(detail, sort_keys=True)))

    # -- models ---------------------------------------------------------------------------
    def register_model(self, model_name: str, card: dict, actor: str) -> tuple[str, bool]:
        """Register a trained model; return (version, created). The same artifact registers
        once. The first version of a model becomes champion; later ones become challenger."""
        with self.backend.transaction() as con:
            row = con.execute("SELECT version FROM models WHERE model_name=? AND artifact_sha256=?",
                              (model_name, card["artifact_sha256"])).fetchone()
            if row:
                return row["version"], False
            seq = con.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM models WHERE model_name=?",
                              (model_name,)).fetchone()[0]
            version = f"{model_name}-v{seq}"
            card = {**card, "version": version, "model_name": model_name}
            con.execute(
                "INSERT INTO models (version, model_name, seq, artifact_sha256, artifact_path, "
                "dataset_sha256, card, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (version, model_name, seq, card["artifact_sha256"], card["artifact_path"],
                 card["dataset_sha256"], json.dumps(card, sort_keys=True), now()))
            self._audit(con, actor, "register", version, "trained", {"seq": seq})
            alias = "challenger" if self._alias(con, model_name, "champion") else "champion"
            self._set_alias(con, model_name, alias, version)
            self._audit(con, actor, f"alias:{alias}", version, "registered by training", {})
            return version, True

    def get_model(self, version: str) -> dict:
        with self.backend.read() as con:
            row = con.execute("SELECT card, created_at FROM models WHERE version=?",
                              (version,)).fetchone()
        if not row:
            raise RegistryError(f"no model version {version!r}; `ml-assets models` lists them")
        return {**json.loads(row["card"]), "registered_at": row["created_at"]}

    def list_models(self, model_name: str | None = None) -> list[dict]:
        with self.backend.read() as con:
            rows = con.execute(
                "SELECT card, created_at FROM models WHERE ? IS NULL OR model_name=? "
                "ORDER BY model_name, seq", (model_name, model_name)).fetchall()
        return [{**json.loads(r["card"]), "registered_at": r["created_at"]} for r in rows]

    # -- aliases --------------------------------------------------------------------------
    @staticmethod
    def _alias(con, model_name: str, alias: str) -> str | None:
        row = con.execute("SELECT version FROM aliases WHERE model_name=? AND alias=?",
                          (model_name, alias)).fetchone()
        return row["version"] if row else None

    @staticmethod
    def _set_alias(con, model_name: str, alias: str, version: str | None) -> None:
        if version is None:
            con.execute("DELETE FROM aliases WHERE model_name=? AND alias=?", (model_name, alias))
        else:
            con.execute("INSERT INTO aliases (model_name, alias, version, updated_at) VALUES "
                        "(?, ?, ?, ?) ON CONFLICT (model_name, alias) DO UPDATE SET "
                        "version=excluded.version, updated_at=excluded.updated_at",
                        (model_name, alias, version, now()))

    def aliases(self, model_name: str) -> dict[str, str | None]:
        with self.backend.read() as con:
            rows = con.execute("SELECT alias, version FROM aliases WHERE model_name=?",
                               (model_name,)).fetchall()
        found = {r["alias"]: r["version"] for r in rows}
        return {a: found.get(a) for a in ALIASES}

    def move_aliases(self, model_name: str, changes: dict[str, str | None], actor: str,
                     action: str, reason: str, settings: dict[str, str] | None = None,
                     expect: dict[str, str | None] | None = None) -> dict[str, str | None]:
        """Set several aliases (and settings) in one audited transaction. ``expect`` guards
        against a concurrent change: the move aborts if an alias no longer has that value."""
        with self.backend.transaction() as con:
            for alias, version in (expect or {}).items():
                if self._alias(con, model_name, alias) != version:
                    raise RegistryError(f"{action} aborted: {alias} changed concurrently "
                                        f"(expected {version}); re-check and retry")
            before = {a: self._alias(con, model_name, a) for a in ALIASES}
            for alias, version in changes.items():
                self._set_alias(con, model_name, alias, version)
            for key, value in (settings or {}).items():
                con.execute("INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?) "
                            "ON CONFLICT (key) DO UPDATE SET value=excluded.value, "
                            "updated_at=excluded.updated_at", (key, value, now()))
            target = changes.get("champion") or next((v for v in changes.values() if v), "-")
            self._audit(con, actor, action, target, reason,
                        {"before": before, "changes": changes, "settings": settings or {}})
            return {a: self._alias(con, model_name, a) for a in ALIASES}

    # -- settings (kill switch, rollout stage) --------------------------------------------
    def get_setting(self, key: str, default: str | None = None) -> str | None:
        with self.backend.read() as con:
            row = con.execute("SELECT value FROM settings WHERE key=?", (key,)).fetchone()
        return row["value"] if row else default

    def set_setting(self, key: str, value: str, actor: str, reason: str) -> None:
        with self.backend.transaction() as con:
            con.execute("INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?) "
                        "ON CONFLICT (key) DO UPDATE SET value=excluded.value, "
                        "updated_at=excluded.updated_at", (key, value, now()))
            self._audit(con, actor, f"set:{key}", value, reason, {})

    # -- frozen reference set ------------------------------------------------------------
    def reference_set(self, model_name: str) -> dict | None:
        with self.backend.read() as con:
            row = con.execute("SELECT * FROM reference_sets WHERE model_name=?",
                              (model_name,)).fetchone()
        return dict(row) if row else None

    def freeze_reference_set(self, model_name: str, sha256: str, path: str, rows: int,
                             actor: str) -> dict:
        """Record the frozen reference set once; later calls return the first one."""
        with self.backend.transaction() as con:
            row = con.execute("SELECT * FROM reference_sets WHERE model_name=?",
                              (model_name,)).fetchone()
            if row:
                return dict(row)
            con.execute("INSERT INTO reference_sets VALUES (?, ?, ?, ?, ?)",
                        (model_name, sha256, path, rows, now()))
            self._audit(con, actor, "freeze_reference_set", sha256, "first training run",
                        {"rows": rows})
        return self.reference_set(model_name)

    # -- audit -----------------------------------------------------------------------------
    def audit_log(self, limit: int = 50) -> list[dict]:
        with self.backend.read() as con:
            rows = con.execute("SELECT * FROM audit ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [{**dict(r), "detail": json.loads(r["detail"])} for r in rows]
