"""The control plane: model versions and their cards, aliases, kill switch, rollout stage and
an append-only audit log, in SQLite (WAL). Every change is one transaction."""

from __future__ import annotations

import json
import sqlite3
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

ALIASES = ("champion", "challenger", "previous")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS models (
    version TEXT PRIMARY KEY,
    model_name TEXT NOT NULL,
    seq INTEGER NOT NULL,
    artifact_sha256 TEXT NOT NULL,
    artifact_path TEXT NOT NULL,
    dataset_sha256 TEXT NOT NULL,
    card TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (model_name, seq)
);
CREATE TABLE IF NOT EXISTS aliases (
    model_name TEXT NOT NULL,
    alias TEXT NOT NULL,
    version TEXT NOT NULL REFERENCES models(version),
    updated_at TEXT NOT NULL,
    PRIMARY KEY (model_name, alias)
);
CREATE TABLE IF NOT EXISTS settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS reference_sets (
    model_name TEXT PRIMARY KEY,
    sha256 TEXT NOT NULL,
    path TEXT NOT NULL,
    rows INTEGER NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS drills (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts TEXT NOT NULL,
    model_name TEXT NOT NULL,
    kind TEXT NOT NULL,
    actor TEXT NOT NULL,
    ok INTEGER NOT NULL,
    time_to_effect_ms REAL,
    champion_version TEXT,
    previous_version TEXT,
    detail TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
"""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class RegistryError(RuntimeError):
    """A control-plane request cannot be honoured; the message says why and what to do."""


class Registry:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._read() as con:
            con.executescript(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA busy_timeout=30000")
        con.execute("PRAGMA foreign_keys=ON")
        con.row_factory = sqlite3.Row
        return con

    @contextmanager
    def _read(self):
        con = self._connect()
        try:
            yield con
        finally:
            con.close()

    @contextmanager
    def _tx(self):
        """One IMMEDIATE transaction: concurrent writers queue instead of failing."""
        con = self._connect()
        try:
            con.execute("BEGIN IMMEDIATE")
            yield con
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        finally:
            con.close()

    @staticmethod
    def _audit(con, actor: str, action: str, target: str, reason: str, detail: dict) -> None:
        if not actor:
            raise RegistryError(f"{action} needs an identity (--actor or $USER) for the audit log")
        con.execute("INSERT INTO audit (ts, actor, action, target, reason, detail) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (_now(), actor, action, target, reason, json.dumps(detail, sort_keys=True)))

    # -- models ---------------------------------------------------------------------------
    def register_model(self, model_name: str, card: dict, actor: str) -> tuple[str, bool]:
        """Register a trained model; return (version, created). The same artifact registers
        once. The first version of a model becomes champion; later ones become challenger."""
        with self._tx() as con:
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
                 card["dataset_sha256"], json.dumps(card, sort_keys=True), _now()))
            self._audit(con, actor, "register", version, "trained", {"seq": seq})
            alias = "challenger" if self._alias(con, model_name, "champion") else "champion"
            self._set_alias(con, model_name, alias, version)
            self._audit(con, actor, f"alias:{alias}", version, "registered by training", {})
            return version, True

    def get_model(self, version: str) -> dict:
        with self._read() as con:
            row = con.execute("SELECT card, created_at FROM models WHERE version=?",
                              (version,)).fetchone()
        if not row:
            raise RegistryError(f"no model version {version!r}; `ml-assets models` lists them")
        return {**json.loads(row["card"]), "registered_at": row["created_at"]}

    def list_models(self, model_name: str | None = None) -> list[dict]:
        with self._read() as con:
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
                        (model_name, alias, version, _now()))

    def aliases(self, model_name: str) -> dict[str, str | None]:
        with self._read() as con:
            rows = con.execute("SELECT alias, version FROM aliases WHERE model_name=?",
                               (model_name,)).fetchall()
        found = {r["alias"]: r["version"] for r in rows}
        return {a: found.get(a) for a in ALIASES}

    def move_aliases(self, model_name: str, changes: dict[str, str | None], actor: str,
                     action: str, reason: str, settings: dict[str, str] | None = None,
                     expect: dict[str, str | None] | None = None) -> dict[str, str | None]:
        """Set several aliases (and settings) in one audited transaction. ``expect`` guards
        against a concurrent change: the move aborts if an alias no longer has that value."""
        with self._tx() as con:
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
                            "updated_at=excluded.updated_at", (key, value, _now()))
            target = changes.get("champion") or next((v for v in changes.values() if v), "-")
            self._audit(con, actor, action, target, reason,
                        {"before": before, "changes": changes, "settings": settings or {}})
            return {a: self._alias(con, model_name, a) for a in ALIASES}

    # -- settings (kill switch, rollout stage) --------------------------------------------
    def get_setting(self, key: str, default: str | None = None) -> str | None:
        with self._read() as con:
            row = con.execute("SELECT value FROM settings WHERE key=?", (key,)).fetchone()
        return row["value"] if row else default

    def set_setting(self, key: str, value: str, actor: str, reason: str) -> None:
        with self._tx() as con:
            con.execute("INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?) "
                        "ON CONFLICT (key) DO UPDATE SET value=excluded.value, "
                        "updated_at=excluded.updated_at", (key, value, _now()))
            self._audit(con, actor, f"set:{key}", value, reason, {})

    # -- frozen reference set ------------------------------------------------------------
    def reference_set(self, model_name: str) -> dict | None:
        with self._read() as con:
            row = con.execute("SELECT * FROM reference_sets WHERE model_name=?",
                              (model_name,)).fetchone()
        return dict(row) if row else None

    def freeze_reference_set(self, model_name: str, sha256: str, path: str, rows: int,
                             actor: str) -> dict:
        """Record the frozen reference set once; later calls return the first one."""
        with self._tx() as con:
            row = con.execute("SELECT * FROM reference_sets WHERE model_name=?",
                              (model_name,)).fetchone()
            if row:
                return dict(row)
            con.execute("INSERT INTO reference_sets VALUES (?, ?, ?, ?, ?)",
                        (model_name, sha256, path, rows, _now()))
            self._audit(con, actor, "freeze_reference_set", sha256, "first training run",
                        {"rows": rows})
        return self.reference_set(model_name)

    # -- rollback drills -------------------------------------------------------------------
    def record_drill(self, model_name: str, kind: str, actor: str, ok: bool,
                     time_to_effect_ms: float | None, champion: str | None,
                     previous: str | None, detail: dict) -> int:
        with self._tx() as con:
            cur = con.execute(
                "INSERT INTO drills (ts, model_name, kind, actor, ok, time_to_effect_ms, "
                "champion_version, previous_version, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (_now(), model_name, kind, actor, int(ok), time_to_effect_ms, champion, previous,
                 json.dumps(detail, sort_keys=True, default=str)))
            self._audit(con, actor, f"drill:{kind}", previous or "-",
                        "passed" if ok else "FAILED", {"drill_id": cur.lastrowid,
                                                       "time_to_effect_ms": time_to_effect_ms})
            return int(cur.lastrowid)

    def drills(self, model_name: str, limit: int = 20, only_ok: bool = False) -> list[dict]:
        with self._read() as con:
            rows = con.execute("SELECT * FROM drills WHERE model_name=? AND (ok=1 OR ?=0) "
                               "ORDER BY id DESC LIMIT ?",
                               (model_name, int(only_ok), limit)).fetchall()
        return [{**dict(r), "ok": bool(r["ok"]), "detail": json.loads(r["detail"])} for r in rows]

    # -- audit -----------------------------------------------------------------------------
    def audit_log(self, limit: int = 50) -> list[dict]:
        with self._read() as con:
            rows = con.execute("SELECT * FROM audit ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [{**dict(r), "detail": json.loads(r["detail"])} for r in rows]
