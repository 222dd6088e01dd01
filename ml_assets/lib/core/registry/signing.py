"""Model signing: with a signing key, a models row must carry an HMAC-SHA256 signature of its
version, artifact SHA-256 and path, and must agree with its audited registration; a row written
outside the code is refused before anything is unpickled. Mixed into ``Registry``.
"""

from __future__ import annotations

import hashlib
import hmac
import json

from ml_assets.lib.core.registry.backend import SqliteBackend
from ml_assets.lib.core.registry.integrity import RegistryError
from ml_assets.lib.core.registry.records import now


class Signing:
    """Signature and registration checks of model rows; mixed into ``Registry``."""

    # set by Registry, which also provides ``_audit``
    backend: SqliteBackend
    _key: bytes | None
    _key_id: str | None

    def _signature(self, version: str, artifact_sha256: str, artifact_path: str) -> str:
        """HMAC-SHA256 of a version's identity under the signing key."""
        message = f"{version}\n{artifact_sha256}\n{artifact_path}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def _sign(self, con, version: str, artifact_sha256: str, artifact_path: str,
              actor: str) -> None:
        """Store the version's signature under the configured key (no key: nothing)."""
        if self._key:
            con.execute("INSERT INTO model_signatures VALUES (?, ?, ?, ?, ?) "
                        "ON CONFLICT DO NOTHING",
                        (version, self._key_id, self._signature(version, artifact_sha256,
                                                                artifact_path), now(), actor))

    def _verify(self, con, row, signature: bool = True) -> None:
        """Refuse a models row that disagrees with its audited registration or, with a
        signing key, with its signature: it was written outside the code."""
        reg = con.execute("SELECT detail FROM audit WHERE action='register' AND target=? "
                          "ORDER BY id LIMIT 1", (row["version"],)).fetchone()
        recorded = json.loads(reg[0]) if reg else {}
        card = json.loads(row["card"])
        for field in ("artifact_sha256", "artifact_path"):
            if (field in recorded and recorded[field] != row[field]) or card.get(field) != row[field]:
                raise RegistryError(
                    f"model {row['version']}: {field} in control.sqlite does not match its audited "
                    f"registration (the row was rewritten outside the code); refusing to load it")
        if not (self._key and signature):
            return
        sig = con.execute("SELECT signature FROM model_signatures WHERE version=? AND key_id=?",
                          (row["version"], self._key_id)).fetchone()
        if sig is None:
            raise RegistryError(
                f"model {row['version']} is not signed with the configured signing key "
                f"(key id {self._key_id}); refusing to load it. Sign verified versions with "
                f"`ml-assets control sign`")
        expected = self._signature(row["version"], row["artifact_sha256"], row["artifact_path"])
        if not hmac.compare_digest(sig[0], expected):
            raise RegistryError(
                f"model {row['version']}: signature does not verify (artifact sha256 or path "
                f"changed after signing); refusing to load it")

    def sign_models(self, actor: str, artifact_sha256_of) -> list[str]:
        """Sign every version not yet signed with the configured key, after checking it.

        Parameters
        ----------
        actor : str
            Who signs (audited).
        artifact_sha256_of : callable
            ``artifact_path -> sha256 hex`` of the file on disk (or None when missing).

        Returns
        -------
        list of str
            The versions signed now.

        Raises
        ------
        RegistryError
            Without a signing key, or when a version's artifact or row does not verify
            (nothing is signed then).
        """
        if not self._key:
            raise RegistryError("no signing key configured (set ML_ASSETS_SIGNING_KEY to a key "
                                "file outside the data directory)")
        with self.backend.transaction() as con:
            rows = con.execute(
                "SELECT * FROM models WHERE version NOT IN (SELECT version FROM "
                "model_signatures WHERE key_id=?) ORDER BY model_name, seq",
                (self._key_id,)).fetchall()
            for row in rows:
                self._verify(con, row, signature=False)
                if artifact_sha256_of(row["artifact_path"]) != row["artifact_sha256"]:
                    raise RegistryError(f"model {row['version']}: artifact "
                                        f"{row['artifact_path']} does not match its sha256; "
                                        "not signing anything")
                self._sign(con, row["version"], row["artifact_sha256"], row["artifact_path"],
                           actor)
            versions = [r["version"] for r in rows]
            if versions:
                self._audit(con, actor, "sign", self._key_id, "signed verified versions",
                            {"versions": versions})
        return versions
