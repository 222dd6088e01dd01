"""Landing data is append-only: the first checksum seen for a landing file is kept forever.

Ingest records the SHA-256 of every landing file it reads in a ledger table of the control
plane (``control.sqlite``, its own table, guarded against UPDATE and DELETE). A file whose bytes
later differ from the ledger - or from the generator's ``landing/_manifest.json`` when the
ledger never saw it - was rewritten, and every consumer that cares (reproduce, status) can say
which file and since when.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from ml_assets.lib.core.artifacts import sha256_file
from ml_assets.lib.core.paths import DataPaths

MANIFEST = "_manifest.json"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS landing_checksums (
    path TEXT PRIMARY KEY,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    recorded_at TEXT NOT NULL,
    recorded_by TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS landing_checksums_no_update BEFORE UPDATE ON landing_checksums
BEGIN SELECT RAISE(ABORT, 'landing checksums are append-only'); END;
CREATE TRIGGER IF NOT EXISTS landing_checksums_no_delete BEFORE DELETE ON landing_checksums
BEGIN SELECT RAISE(ABORT, 'landing checksums are append-only'); END;
"""


@dataclass(frozen=True)
class FileProblem:
    path: str  # relative to the data directory
    problem: str  # "rewritten" | "missing" | "unrecorded"
    expected_sha256: str | None
    actual_sha256: str | None
    source: str  # where the expected checksum came from: "ledger" | "manifest" | "-"
    recorded_at: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        if self.problem == "rewritten":
            return (f"{self.path} was rewritten after it landed: sha256 {self.actual_sha256[:12]}"
                    f"... != {self.expected_sha256[:12]}... recorded in the {self.source}"
                    + (f" at {self.recorded_at}" if self.recorded_at else ""))
        if self.problem == "missing":
            return f"{self.path} is missing (recorded in the {self.source})"
        return f"{self.path} has no recorded checksum (neither ledger nor manifest)"


def _connect(db: Path) -> sqlite3.Connection:
    db.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(db, timeout=30, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA busy_timeout=30000")
    con.executescript(_SCHEMA)
    return con


def ledger(paths: DataPaths, rel_paths: list[str] | None = None) -> dict[str, dict]:
    """Recorded checksums (all, or only for ``rel_paths``) as ``{path: row}``."""
    con = _connect(paths.control_db)
    try:
        rows = con.execute("SELECT path, sha256, size, recorded_at FROM landing_checksums").fetchall()
    finally:
        con.close()
    wanted = None if rel_paths is None else set(rel_paths)
    return {p: {"sha256": s, "size": n, "recorded_at": t} for p, s, n, t in rows
            if wanted is None or p in wanted}


def manifest_checksums(paths: DataPaths) -> dict[str, str]:
    """Checksums the generator (or a delivery process) wrote next to the landing files."""
    path = paths.landing / MANIFEST
    return json.loads(path.read_bytes()).get("files", {}) if path.exists() else {}


def record(paths: DataPaths, files: list[Path], actor: str) -> list[FileProblem]:
    """Record first-seen checksums of existing landing files; return the ones that were
    rewritten since they were first recorded (their recorded checksum is kept)."""
    rels = {str(Path(f).resolve().relative_to(paths.root.resolve())): Path(f)
            for f in files if Path(f).exists()}
    digests = {rel: (sha256_file(f), f.stat().st_size) for rel, f in rels.items()}
    known = ledger(paths, list(rels))
    now = datetime.now(UTC).isoformat(timespec="seconds")
    new = [(rel, sha, size, now, actor) for rel, (sha, size) in digests.items() if rel not in known]
    if new:
        con = _connect(paths.control_db)
        try:
            # OR IGNORE: a concurrent ingest of the same file recorded it first; first one wins.
            con.executemany("INSERT OR IGNORE INTO landing_checksums VALUES (?, ?, ?, ?, ?)", new)
        finally:
            con.close()
    return [FileProblem(rel, "rewritten", known[rel]["sha256"], sha, "ledger",
                        known[rel]["recorded_at"])
            for rel, (sha, _) in digests.items()
            if rel in known and known[rel]["sha256"] != sha]


def expected_checksums(paths: DataPaths, rel_paths: list[str]) -> dict[str, tuple[str, str, str | None]]:
    """``{path: (sha256, source, recorded_at)}``: the ledger's first-seen checksum, else the
    manifest's; paths known to neither are left out."""
    recorded = ledger(paths, rel_paths)
    manifest = manifest_checksums(paths)
    out = {}
    for rel in rel_paths:
        if rel in recorded:
            out[rel] = (recorded[rel]["sha256"], "ledger", recorded[rel]["recorded_at"])
        elif rel in manifest:
            out[rel] = (manifest[rel], "manifest", None)
    return out


def compare(rel: str, expected: tuple[str, str, str | None] | None,
            actual: str | None) -> FileProblem | None:
    """The problem with one file given its expected and actual checksum (None: no problem)."""
    if expected is None:
        return None if actual is None else FileProblem(rel, "unrecorded", None, actual, "-")
    sha, source, at = expected
    if actual is None:
        return FileProblem(rel, "missing", sha, None, source, at)
    return None if actual == sha else FileProblem(rel, "rewritten", sha, actual, source, at)


def verify(paths: DataPaths, rel_paths: list[str]) -> list[FileProblem]:
    """Compare landing files with the ledger (first) or the manifest; every deviation."""
    expected = expected_checksums(paths, rel_paths)
    problems = []
    for rel in rel_paths:
        path = paths.root / rel
        problem = compare(rel, expected.get(rel), sha256_file(path) if path.exists() else None)
        if problem:
            problems.append(problem)
    return problems
