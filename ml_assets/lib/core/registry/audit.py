"""The append-only, hash-chained audit log of the control plane, and the one rule for who may
appear in it. ``Registry`` inherits these methods; every change writes its entry inside its own
transaction through :meth:`Audit._audit`."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from ml_assets.lib.core.registry import integrity
from ml_assets.lib.core.registry.backend import SqliteBackend
from ml_assets.lib.core.registry.integrity import RegistryError
from ml_assets.lib.core.registry.records import now

if TYPE_CHECKING:
    from ml_assets.lib.core.registry.postgres import PostgresBackend

#: The longest identity the audit log accepts (a name, not a message).
MAX_IDENTITY = 64


def check_identity(actor, action: str = "this change") -> str:
    """The one rule for who may appear in the audit log: a non-blank printable name.

    Parameters
    ----------
    actor : str
        The identity (``--actor``, ``$USER``, ``dagster:<user>``).
    action : str
        What it is for, named in the error.

    Returns
    -------
    str
        ``actor`` unchanged.

    Raises
    ------
    RegistryError
        Empty or blank ("needs an identity"); control characters, newlines, tabs, invisible
        or surrounding whitespace, or longer than ``MAX_IDENTITY`` ("not a printable name").
    """
    if not isinstance(actor, str) or not actor.strip():
        raise RegistryError(f"{action} needs an identity (--actor or $USER) for the audit log")
    if not actor.isprintable() or actor != actor.strip() or len(actor) > MAX_IDENTITY:
        raise RegistryError(f"identity {actor!r} is not a printable name (no control characters,"
                            f" no surrounding spaces, at most {MAX_IDENTITY} characters)")
    return actor


class Audit:
    """Audit entries: written inside a change's transaction, read newest first."""

    backend: SqliteBackend | PostgresBackend  # set by Registry

    def _audit(self, con, actor: str, action: str, target: str, reason: str,
               detail: dict) -> None:
        """Append one chained audit entry inside the caller's transaction (refused without an
        actor). Its id is taken explicitly so its hash covers it; the write lock is held."""
        check_identity(actor, action)
        prev = con.execute("SELECT row_hash FROM audit ORDER BY id DESC LIMIT 1").fetchone()
        row = (self.backend.next_id(con, "audit"), now(), actor, action, target, reason,
               json.dumps(detail, sort_keys=True))
        prev_hash = prev[0] if prev and prev[0] else integrity.GENESIS
        con.execute("INSERT INTO audit (id, ts, actor, action, target, reason, detail, prev_hash, "
                    "row_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (*row, prev_hash, integrity.row_hash(prev_hash, row)))

    def audit_refusal(self, actor: str, action: str, target: str, reason: str) -> None:
        """Record a refused change (who tried what, and why it was refused); nothing else
        changes.

        Parameters
        ----------
        actor, action, target, reason : str
            Who tried, what (recorded as ``refused:<action>``), on what, and why it was refused.

        Raises
        ------
        RegistryError
            When ``actor`` is not a printable name (:func:`check_identity`): nothing is recorded.
        """
        with self.backend.transaction() as con:
            self._audit(con, actor, f"refused:{action}", target, reason, {})

    def record_event(self, actor: str, action: str, target: str, reason: str,
                     detail: dict) -> None:
        """Append one audit entry for an operation on the control plane itself (a restore).

        Parameters
        ----------
        actor, action, target, reason : str
            Who did what, on what, and why.
        detail : dict
            JSON-serializable; stored with sorted keys (it is covered by the row hash).

        Raises
        ------
        RegistryError
            When ``actor`` is empty.
        """
        with self.backend.transaction() as con:
            self._audit(con, actor, action, target, reason, detail)

    def audit_log(self, limit: int = 50) -> list[dict]:
        """The latest ``limit`` audit entries, newest first, with ``detail`` decoded.

        Parameters
        ----------
        limit : int
            Maximum number of rows.

        Returns
        -------
        list of dict
            ``id``, ``ts`` (ISO 8601, UTC), ``actor``, ``action``, ``target``, ``reason``,
            ``detail``, ``prev_hash``, ``row_hash``.
        """
        with self.backend.read() as con:
            rows = con.execute("SELECT * FROM audit ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [{**dict(r), "detail": json.loads(r["detail"])} for r in rows]
