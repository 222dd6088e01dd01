"""The control plane: model versions and their cards, aliases, kill switch, rollout stage, the
frozen reference set and an append-only audit log. Every change is one transaction.

The audit log is in ``audit.py``, drills, drill results and the landing ledger in
``records.py``, model signing in ``signing.py``; the SQL runs through the backend the registry
holds (SQLite, ``backend.py``, or PostgreSQL, ``postgres.py``), the schema is ``schema.py``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ml_assets.lib.core.registry import integrity
from ml_assets.lib.core.registry.audit import Audit
from ml_assets.lib.core.registry.backend import open_backend
from ml_assets.lib.core.registry.integrity import ControlPlaneDamaged, RegistryError
from ml_assets.lib.core.registry.records import Records, now
from ml_assets.lib.core.registry.schema import MIGRATIONS, render
from ml_assets.lib.core.registry.signing import Signing
from ml_assets.lib.core.registry.snapshot import ControlSnapshotReader

ALIASES = ("champion", "challenger", "previous")
__all__ = ["ALIASES", "ControlPlaneDamaged", "Registry", "RegistryError"]


class Registry(Audit, Records, Signing):
    """The only door to the control plane (``control.sqlite`` or a PostgreSQL database).

    Build it through ``Workspace.registry`` (tests may build one directly to set up a world);
    the schema is applied once, here, not per call. Opening checks the file first (see
    ``integrity.py``): a missing file is a new control plane only where none existed before,
    and a 0-byte, damaged, rewritten or stale one is refused with the restore command.

    Parameters
    ----------
    location : pathlib.Path or str
        The SQLite database file (it and its directory are created on first use), or a
        ``postgresql://`` URL of an existing database (tables created on first use).
    signing_key : bytes, optional
        The model signing key (kept outside the data directory). With a key, every
        registered version is signed (HMAC-SHA256 over version, artifact SHA-256 and path) and
        ``get_model`` refuses a version whose signature is missing or does not verify.

    Raises
    ------
    ControlPlaneDamaged
        When the control plane is missing where one existed, empty, damaged or behind its
        last committed change, or its audit chain was rewritten.
    ControlPlaneUnavailable
        When a PostgreSQL control plane cannot be reached.
    """

    def __init__(self, location: Path | str, signing_key: bytes | None = None):
        self.backend = open_backend(location)
        self.path = self.backend.path  # the SQLite file; None on PostgreSQL
        self._key = signing_key
        self._key_id = hashlib.sha256(signing_key).hexdigest()[:16] if signing_key else None
        existed = self.backend.check()
        self.backend.apply_schema(render(self.backend), MIGRATIONS)
        keeps_head = self.backend.head_file is not None
        with self.backend.read() as con:
            self._head = integrity.verify_chain(con, self.backend.label, compare_head=keeps_head)
        if keeps_head:
            if not existed or integrity.read_head(self.path) is None:
                integrity.write_head(self.path, *self._head)
            self.backend.on_commit = self._record_head

    @property
    def audit_head(self) -> int:
        """Id of the newest audit entry (0 for an empty log)."""
        with self.backend.read() as con:
            return con.execute("SELECT COALESCE(MAX(id), 0) FROM audit").fetchone()[0]

    def _record_head(self, con) -> None:
        """After a commit: move the head file to the newest audit entry (if it moved)."""
        row = con.execute("SELECT id, row_hash FROM audit ORDER BY id DESC LIMIT 1").fetchone()
        if row and row[1] and row[0] > self._head[0]:
            self._head = (row[0], row[1])
            integrity.write_head(self.path, *self._head)

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

    # -- models ---------------------------------------------------------------------------
    def register_model(self, model_name: str, card: dict, actor: str) -> tuple[str, bool]:
        """Register a trained model; the first version of a model becomes champion, later ones
        challenger. The same artifact registers once.

        Parameters
        ----------
        model_name : str
            The model (versions are ``<model_name>-v<seq>``).
        card : dict
            The model card; needs ``artifact_sha256``, ``artifact_path``, ``dataset_sha256``.
        actor : str
            Who registers (audited).

        Returns
        -------
        version : str
            The new version, or the existing one for an already registered artifact.
        created : bool
            False when the artifact was registered before.

        Raises
        ------
        RegistryError
            When ``actor`` is empty.
        """
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
            self._audit(con, actor, "register", version, "trained",
                        {"seq": seq, "artifact_sha256": card["artifact_sha256"],
                         "artifact_path": card["artifact_path"]})
            self._sign(con, version, card["artifact_sha256"], card["artifact_path"], actor)
            alias = "challenger" if self._alias(con, model_name, "champion") else "champion"
            self._set_alias(con, model_name, alias, version)
            self._audit(con, actor, f"alias:{alias}", version, "registered by training", {})
            return version, True

    def get_model(self, version: str) -> dict:
        """The model card of ``version`` with its ``registered_at`` time, checked against its
        audited registration and (with a signing key) its signature: the card every loader
        uses, so a row rewritten outside the code never reaches an unpickler.

        Parameters
        ----------
        version : str
            ``<model_name>-v<n>``, e.g. ``"fraud-v3"``.

        Raises
        ------
        RegistryError
            When no such version is registered, or its row does not verify.
        """
        with self.backend.read() as con:
            row = con.execute("SELECT * FROM models WHERE version=?", (version,)).fetchone()
            if row:
                self._verify(con, row)
        if not row:
            raise RegistryError(f"no model version {version!r}; `ml-assets models` lists them")
        return {**json.loads(row["card"]), "registered_at": row["created_at"]}

    def list_models(self, model_name: str | None = None) -> list[dict]:
        """Model cards (of ``model_name``, or of every model), oldest version first.

        Parameters
        ----------
        model_name : str, optional
            None lists every model (unverified rows: this is a listing, not a loader).
        """
        with self.backend.read() as con:
            rows = con.execute(
                "SELECT card, created_at FROM models WHERE ? IS NULL OR model_name=? "
                "ORDER BY model_name, seq", (model_name, model_name)).fetchall()
        return [{**json.loads(r["card"]), "registered_at": r["created_at"]} for r in rows]

    # -- aliases --------------------------------------------------------------------------
    @staticmethod
    def _alias(con, model_name: str, alias: str) -> str | None:
        """The version ``alias`` points to, read inside the caller's transaction."""
        row = con.execute("SELECT version FROM aliases WHERE model_name=? AND alias=?",
                          (model_name, alias)).fetchone()
        return row["version"] if row else None

    @staticmethod
    def _set_alias(con, model_name: str, alias: str, version: str | None) -> None:
        """Point ``alias`` at ``version`` (None removes it) inside the caller's transaction."""
        if version is None:
            con.execute("DELETE FROM aliases WHERE model_name=? AND alias=?", (model_name, alias))
        else:
            con.execute("INSERT INTO aliases (model_name, alias, version, updated_at) VALUES "
                        "(?, ?, ?, ?) ON CONFLICT (model_name, alias) DO UPDATE SET "
                        "version=excluded.version, updated_at=excluded.updated_at",
                        (model_name, alias, version, now()))

    def aliases(self, model_name: str) -> dict[str, str | None]:
        """``{alias: version or None}`` for every alias in ``ALIASES``.

        Parameters
        ----------
        model_name : str
        """
        with self.backend.read() as con:
            rows = con.execute("SELECT alias, version FROM aliases WHERE model_name=?",
                               (model_name,)).fetchall()
        found = {r["alias"]: r["version"] for r in rows}
        return {a: found.get(a) for a in ALIASES}

    def move_aliases(self, model_name: str, changes: dict[str, str | None], actor: str,
                     action: str, reason: str, settings: dict[str, str] | None = None,
                     expect: dict[str, str | None] | None = None,
                     detail: dict | None = None) -> dict[str, str | None]:
        """Set several aliases (and settings) in one audited transaction.

        Parameters
        ----------
        model_name : str
            The model whose aliases move.
        changes : dict
            ``{alias: version or None}``.
        actor, action, reason : str
            Audited as who, what (e.g. ``"promote"``) and why.
        settings : dict, optional
            Settings written in the same transaction (e.g. the kill switch).
        expect : dict, optional
            ``{alias: version}`` the aliases must still have; guards a concurrent change.
        detail : dict, optional
            Further JSON-serializable facts for the audit entry (e.g. a rollout stage's
            ``data_period``), beside ``before``, ``changes`` and ``settings``.

        Returns
        -------
        dict
            The aliases after the move, as ``aliases()`` returns them.

        Raises
        ------
        RegistryError
            When an ``expect`` value no longer holds (nothing is changed) or ``actor`` is empty.
        """
        with self.backend.transaction() as con:
            for alias, version in (expect or {}).items():
                if self._alias(con, model_name, alias) != version:
                    raise RegistryError(f"{action} aborted: {alias} changed concurrently "
                                        f"(expected {version}); re-check and retry")
            before = {a: self._alias(con, model_name, a) for a in ALIASES}
            for alias, version in changes.items():
                self._set_alias(con, model_name, alias, version)
            for key, value in (settings or {}).items():
                self._put_setting(con, key, value)
            target = changes.get("champion") or next((v for v in changes.values() if v), "-")
            self._audit(con, actor, action, target, reason,
                        {**(detail or {}), "before": before, "changes": changes,
                         "settings": settings or {}})
            return {a: self._alias(con, model_name, a) for a in ALIASES}

    # -- settings (kill switch, rollout stage) --------------------------------------------
    @staticmethod
    def _put_setting(con, key: str, value: str) -> None:
        """Insert or overwrite one setting inside the caller's transaction."""
        con.execute("INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?) "
                    "ON CONFLICT (key) DO UPDATE SET value=excluded.value, "
                    "updated_at=excluded.updated_at", (key, value, now()))

    def get_setting(self, key: str, default: str | None = None) -> str | None:
        """The value of setting ``key`` (e.g. ``kill_switch``), or ``default`` when unset.

        Parameters
        ----------
        key : str
        default : str, optional
        """
        with self.backend.read() as con:
            row = con.execute("SELECT value FROM settings WHERE key=?", (key,)).fetchone()
        return row["value"] if row else default

    def set_setting(self, key: str, value: str, actor: str, reason: str) -> None:
        """Set one setting in an audited transaction.

        Parameters
        ----------
        key, value : str
            E.g. ``"kill_switch"``, ``"on"``; audited as ``set:<key>``.
        actor, reason : str
            Who and why.

        Raises
        ------
        RegistryError
            When ``actor`` is empty (nothing is changed).
        """
        with self.backend.transaction() as con:
            self._put_setting(con, key, value)
            self._audit(con, actor, f"set:{key}", value, reason, {})

    # -- frozen reference set ------------------------------------------------------------
    def reference_set(self, model_name: str) -> dict | None:
        """The frozen reference set of ``model_name`` (``sha256``, ``path``, ``rows``,
        ``created_at``), or None before the first training run.

        Parameters
        ----------
        model_name : str
        """
        with self.backend.read() as con:
            row = con.execute("SELECT * FROM reference_sets WHERE model_name=?",
                              (model_name,)).fetchone()
        return dict(row) if row else None

    def freeze_reference_set(self, model_name: str, sha256: str, path: str, rows: int,
                             actor: str) -> dict:
        """Record the frozen reference set once; later calls return the first one.

        Parameters
        ----------
        model_name : str
            The model it belongs to.
        sha256 : str
            SHA-256 (hex) of the stored Parquet file.
        path : str
            The file, relative to the data directory.
        rows : int
            Its row count.
        actor : str
            Who froze it (audited).

        Returns
        -------
        dict
            The recorded reference set (the first one ever recorded for ``model_name``).
        """
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
