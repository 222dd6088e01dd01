"""Append-only records of the control plane: rollback drills, measured drill results and the
landing checksum ledger.

They share the registry's backend and schema; ``Registry`` inherits these methods, so callers
see one object. Drill results used to live in ``lib/release/criteria.py`` and the ledger in
``lib/ingest/integrity.py``, each with its own connection and DDL.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from ml_assets.lib.core.registry.backend import SqliteBackend

#: The settings key holding an open drill flip's lease (JSON), absent when none is open.
DRILL_LEASE = "drill_lease"


def now(timespec: str = "milliseconds") -> str:
    """The current UTC time as ISO 8601 text (how every control-plane row is stamped).

    Parameters
    ----------
    timespec : str
        As for ``datetime.isoformat``: ``"milliseconds"`` or ``"seconds"``.
    """
    return datetime.now(UTC).isoformat(timespec=timespec)


class Records:
    """Drills, drill results and the landing ledger; mixed into ``Registry``."""

    backend: SqliteBackend  # or PostgresBackend; set by Registry, which provides ``_audit``

    # -- rollback drills -------------------------------------------------------------------
    def record_drill(self, model_name: str, kind: str, actor: str, ok: bool,
                     time_to_effect_ms: float | None, champion: str | None,
                     previous: str | None, detail: dict) -> int:
        """Record one rollback drill and audit it, in one transaction.

        Parameters
        ----------
        model_name : str
            The drilled model.
        kind : str
            The drill kind (e.g. ``"rollback"``).
        actor : str
            Who ran it (audited).
        ok : bool
            Whether the drill passed.
        time_to_effect_ms : float or None
            Milliseconds from the flip until serving answered with the rollback target.
        champion, previous : str or None
            The versions the drill flipped between.
        detail : dict
            JSON-serialisable facts of the drill.

        Returns
        -------
        int
            The drill's id.

        Raises
        ------
        RegistryError
            When ``actor`` is empty.
        """
        with self.backend.transaction() as con:
            drill_id = con.execute(
                "INSERT INTO drills (ts, model_name, kind, actor, ok, time_to_effect_ms, "
                "champion_version, previous_version, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "RETURNING id",
                (now(), model_name, kind, actor, int(ok), time_to_effect_ms, champion, previous,
                 json.dumps(detail, sort_keys=True, default=str))).fetchone()[0]
            self._audit(con, actor, f"drill:{kind}", previous or "-",
                        "passed" if ok else "FAILED", {"drill_id": drill_id,
                                                       "time_to_effect_ms": time_to_effect_ms})
            return int(drill_id)

    def drills(self, model_name: str, limit: int = 20, only_ok: bool = False) -> list[dict]:
        """The latest ``limit`` drills of ``model_name`` (only passed ones if ``only_ok``),
        newest first, with ``ok`` as bool and ``detail`` decoded.

        Parameters
        ----------
        model_name : str
        limit : int
            Maximum number of rows.
        only_ok : bool
        """
        with self.backend.read() as con:
            rows = con.execute("SELECT * FROM drills WHERE model_name=? AND (ok=1 OR ?=0) "
                               "ORDER BY id DESC LIMIT ?",
                               (model_name, int(only_ok), limit)).fetchall()
        return [{**dict(r), "ok": bool(r["ok"]), "detail": json.loads(r["detail"])} for r in rows]

    # -- drill leases: a drill's temporary setting flip, undone or flagged if the drill dies --
    def open_drill_flip(self, lease: dict, settings: dict[str, str], actor: str,
                        reason: str) -> bool:
        """Write ``settings`` (e.g. the kill switch on) together with the drill's lease, in one
        audited transaction: no flip without its lease, no lease without its flip.

        Parameters
        ----------
        lease : dict
            JSON facts of the open flip; needs ``expires_at`` (ISO UTC) and ``restore`` (the
            settings to write back when it closes or expires).
        settings : dict
            The settings the drill flips now.
        actor, reason : str
            Audited as who and why.

        Returns
        -------
        bool
            False, with nothing written, when a drill flip is already open (one at a time).
        """
        with self.backend.transaction() as con:
            if self._setting(con, DRILL_LEASE):
                return False
            for key, value in settings.items():
                self._put_setting(con, key, value)
            self._put_setting(con, DRILL_LEASE, json.dumps(lease, sort_keys=True))
            self._audit(con, actor, "drill:flip-open", ",".join(settings), reason,
                        {"settings": settings, "lease": lease})
            return True

    def close_drill_flip(self, actor: str, reason: str, only_if: dict[str, str] | None = None,
                         restore: bool = True) -> dict | None:
        """Close the open drill flip: write back its ``restore`` settings and clear the lease,
        in one audited transaction.

        Parameters
        ----------
        actor, reason : str
            Audited as who and why (``"lease-expiry"`` when a reader reverts an expired one).
        only_if : dict, optional
            Restore a setting only while it still holds this value (the drill's flip): a
            setting someone changed since is theirs and is left alone.
        restore : bool, default True
            False clears the lease without writing anything back (a person changed the
            flipped setting on purpose and now owns it).

        Returns
        -------
        dict or None
            The closed lease with ``restored`` (the settings written back), or None when no
            drill flip was open.
        """
        with self.backend.transaction() as con:
            raw = self._setting(con, DRILL_LEASE)
            if not raw:
                return None
            lease = json.loads(raw)
            restored = {k: v for k, v in lease["restore"].items() if restore and (
                only_if is None or self._setting(con, k) == only_if.get(k))}
            for key, value in restored.items():
                self._put_setting(con, key, value)
            con.execute("DELETE FROM settings WHERE key=?", (DRILL_LEASE,))
            self._audit(con, actor, "drill:flip-close", ",".join(lease["restore"]) or "-",
                        reason, {"lease": lease, "restored": restored})
            return {**lease, "restored": restored}

    def drill_lease(self) -> dict | None:
        """The open drill flip's lease, or None."""
        with self.backend.read() as con:
            raw = self._setting(con, DRILL_LEASE)
        return json.loads(raw) if raw else None

    @staticmethod
    def _setting(con, key: str) -> str | None:
        row = con.execute("SELECT value FROM settings WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    # -- measured drill results (reproduce, incident drill) -----------------------------------
    def record_drill_result(self, kind: str, subject: str, ok: bool, payload: dict) -> None:
        """Append one measured outcome (``drill_results``, append-only) for the scorecard.

        Parameters
        ----------
        kind : str
            What was measured: ``"reproduce"``, ``"incident_drill"``.
        subject : str
            What it was measured on (a model version, a model name).
        ok : bool
            Whether the measurement met its bar.
        payload : dict
            The measured facts (JSON; non-JSON values are stored as text).
        """
        with self.backend.transaction() as con:
            con.execute("INSERT INTO drill_results (ts, kind, subject, ok, payload) VALUES "
                        "(?, ?, ?, ?, ?)", (now("seconds"), kind, subject, int(ok),
                                            json.dumps(payload, default=str)))

    def latest_drill_result(self, kind: str, subject: str | None = None) -> dict | None:
        """The newest result of ``kind`` (for ``subject``, or any).

        Parameters
        ----------
        kind : str
            What was measured (as given to ``record_drill_result``).
        subject : str, optional
            A model version or name; None matches any.

        Returns
        -------
        dict or None
            ``{"ts", "subject", "ok", **payload}``; None when never measured.
        """
        with self.backend.read() as con:
            row = con.execute("SELECT ts, subject, ok, payload FROM drill_results WHERE kind=? "
                              "AND (? IS NULL OR subject=?) ORDER BY id DESC LIMIT 1",
                              (kind, subject, subject)).fetchone()
        if row is None:
            return None
        return {"ts": row[0], "subject": row[1], "ok": bool(row[2]), **json.loads(row[3])}

    # -- landing checksum ledger -------------------------------------------------------------
    def landing_checksums(self, rel_paths: list[str] | None = None) -> dict[str, dict]:
        """The checksum each landing file must have: its latest accepted re-delivery
        (``accept_landing_file``), else its first-seen one (all files, or only ``rel_paths``).

        Parameters
        ----------
        rel_paths : list of str, optional
            Paths relative to the data directory; None means every recorded file.

        Returns
        -------
        dict
            ``{path: {"sha256", "size" (bytes), "recorded_at", "accepted_by"}}``;
            ``accepted_by`` is None for a first-seen checksum.
        """
        with self.backend.read() as con:
            rows = con.execute(
                "SELECT path, sha256, size, recorded_at, NULL FROM landing_checksums UNION ALL "
                "SELECT path, sha256, size, accepted_at, accepted_by FROM landing_acceptances "
                "WHERE id IN (SELECT max(id) FROM landing_acceptances GROUP BY path)").fetchall()
        wanted = None if rel_paths is None else set(rel_paths)
        out: dict[str, dict] = {}
        for p, s, n, t, by in rows:  # acceptances come second and override the first-seen row
            if wanted is None or p in wanted:
                out[p] = {"sha256": s, "size": n, "recorded_at": t, "accepted_by": by}
        return out

    def accept_landing_file(self, rel_path: str, sha256: str, size: int, actor: str,
                            reason: str) -> dict:
        """Accept a corrected re-delivery of a landing file: from now on ``sha256`` is the
        checksum it must have. Appended and audited in one transaction; nothing is updated.

        Parameters
        ----------
        rel_path : str
            The landing file, relative to the data directory; it must be in the ledger.
        sha256 : str
            The new file's SHA-256 (hex).
        size : int
            The new file's size in bytes.
        actor : str
            Who accepts it (audited; must not be blank).
        reason : str
            Why (audited; must not be blank).

        Returns
        -------
        dict
            ``{"path", "old_sha256", "sha256", "size", "accepted_at", "accepted_by", "reason"}``.

        Raises
        ------
        RegistryError
            Blank actor or reason, a file never ingested (nothing to accept), or a file whose
            bytes already are the expected ones.
        """
        from ml_assets.lib.core.registry.control import RegistryError  # control imports us

        if not (reason or "").strip() or not (actor or "").strip():
            raise RegistryError(f"accepting {rel_path} needs a non-blank --reason and --actor "
                                "(both go to the audit log)")
        with self.backend.transaction() as con:
            row = con.execute(
                "SELECT sha256 FROM (SELECT sha256, 1 AS o, id FROM landing_acceptances WHERE "
                "path=? UNION ALL SELECT sha256, 0, 0 FROM landing_checksums WHERE path=?) AS r "
                "ORDER BY o DESC, id DESC LIMIT 1", (rel_path, rel_path)).fetchone()
            if row is None:
                raise RegistryError(f"{rel_path} was never ingested (not in the landing ledger): "
                                    "there is nothing to accept, just run its partition")
            if row[0] == sha256:
                raise RegistryError(f"{rel_path} already has the expected checksum "
                                    f"{sha256[:12]}...: nothing to accept")
            record = {"path": rel_path, "old_sha256": row[0], "sha256": sha256, "size": size,
                      "accepted_at": now("seconds"), "accepted_by": actor, "reason": reason}
            con.execute("INSERT INTO landing_acceptances (path, old_sha256, sha256, size, "
                        "accepted_at, accepted_by, reason) VALUES (:path, :old_sha256, "
                        ":sha256, :size, :accepted_at, :accepted_by, :reason)", record)
            self._audit(con, actor, "landing:accept", rel_path, reason,
                        {"old_sha256": row[0], "sha256": sha256, "size": size})
        return record

    def landing_acceptances(self, rel_path: str | None = None) -> list[dict]:
        """Every accepted re-delivery (of ``rel_path``, or of all files), oldest first.

        Parameters
        ----------
        rel_path : str, optional
            A landing file relative to the data directory.

        Returns
        -------
        list of dict
            ``path``, ``old_sha256``, ``sha256``, ``size`` (bytes), ``accepted_at`` (UTC),
            ``accepted_by``, ``reason``.
        """
        with self.backend.read() as con:
            rows = con.execute("SELECT path, old_sha256, sha256, size, accepted_at, accepted_by, "
                               "reason FROM landing_acceptances WHERE ? IS NULL OR path=? "
                               "ORDER BY id", (rel_path, rel_path)).fetchall()
        return [dict(r) for r in rows]

    def record_landing_checksums(self, files: list[tuple[str, str, int]], actor: str) -> None:
        """Record first-seen checksums; a path already in the ledger keeps its first checksum.

        Parameters
        ----------
        files : list of (str, str, int)
            ``(path relative to the data directory, sha256 hex, size in bytes)``.
        actor : str
            Who ingested the files (``recorded_by``).
        """
        stamp = now("seconds")
        with self.backend.transaction() as con:
            # A concurrent ingest of the same file recorded it first: first one wins.
            con.executemany("INSERT INTO landing_checksums VALUES (?, ?, ?, ?, ?) "
                            "ON CONFLICT DO NOTHING",
                            [(rel, sha, size, stamp, actor) for rel, sha, size in files])
