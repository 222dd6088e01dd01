"""Is ``control.sqlite`` the control plane it was, whole? Checked before every open.

SQLite itself fails open on the damage that matters here: a 0-byte or missing file is silently
a new, empty database, and WAL frames whose checksums fail are silently skipped, so readers see
the state before the last commits (a kill switch that was switched on reads off). This module
refuses both, and keeps the evidence a later open compares against:

- the **head** file ``control.head.json`` beside the database: the id and chain hash of the
  newest audit entry, written when the control plane is created and after every audited
  commit. A database whose audit log lacks that entry has lost committed changes;
- the **audit chain**: every audit row carries ``prev_hash`` and ``row_hash`` (SHA-256 over the
  previous hash and its own fields), so a rewritten or deleted audit row breaks the chain;
- **backup and restore** through SQLite's online backup API, verified on both ends.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import struct
import time
from pathlib import Path

from ml_assets.lib.core.paths import atomic_write_bytes, new_temp_file

HEAD_FILE = "control.head.json"
SQLITE_HEADER = b"SQLite format 3\x00"
WAL_MAGIC = (0x377F0682, 0x377F0683)
RESTORE_HINT = "restore the last backup: `ml-assets control restore <backup file>`"
GENESIS = "0" * 64  # prev_hash of the first chained audit row


class RegistryError(RuntimeError):
    """A control-plane request cannot be honoured; the message says why and what to do."""


class ControlPlaneDamaged(RegistryError):
    """The control plane is missing, damaged or behind its last commit; never a fresh start."""


class ControlPlaneUnavailable(RegistryError):
    """The control plane's database server cannot be reached (a PostgreSQL control plane);
    serving fails closed on it."""


def head_path(db: Path) -> Path:
    """The head file of control plane ``db`` (``control.head.json`` in its directory)."""
    return Path(db).parent / HEAD_FILE


def read_head(db: Path) -> dict | None:
    """``{"audit_id", "row_hash"}`` last recorded for ``db``, or None when never recorded."""
    try:
        return json.loads(head_path(db).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ControlPlaneDamaged(f"{head_path(db)} is unreadable ({exc}); {RESTORE_HINT}") from exc


def write_head(db: Path, audit_id: int, row_hash: str) -> None:
    """Record the newest audit entry (atomic replace, so a reader never sees half a file)."""
    atomic_write_bytes(head_path(db),
                       json.dumps({"audit_id": audit_id, "row_hash": row_hash}).encode())


def row_hash(prev_hash: str, row: tuple) -> str:
    """The chain hash of one audit row: SHA-256 over ``prev_hash`` and its fields.

    Parameters
    ----------
    prev_hash : str
        ``row_hash`` of the previous audit row (``GENESIS`` for the first).
    row : tuple
        ``(id, ts, actor, action, target, reason, detail)``.

    Returns
    -------
    str
        64 hex digits.
    """
    text = "\x1f".join([prev_hash, *(str(v) for v in row)])
    return hashlib.sha256(text.encode()).hexdigest()


def check_file(db: Path) -> None:
    """Refuse a control-plane file SQLite would silently treat as empty or stale.

    A missing file is a new control plane only when no head file says one existed here.

    Raises
    ------
    ControlPlaneDamaged
        Missing while its head file exists, 0 bytes, not an SQLite header, or a WAL whose
        header or committed frames are damaged.
    """
    db = Path(db)
    if not db.exists():
        if head_path(db).exists():
            raise ControlPlaneDamaged(
                f"control plane {db} is missing, but {head_path(db).name} shows this data "
                f"directory had one (registry, aliases, kill switch, audit log); refusing to start "
                f"an empty one. {RESTORE_HINT}")
        return
    size = db.stat().st_size
    if size == 0:
        raise ControlPlaneDamaged(
            f"control plane {db} is empty (0 bytes): registry, aliases, kill switch and audit "
            f"log are gone; refusing to start an empty one. {RESTORE_HINT}")
    with open(db, "rb") as fh:
        header = fh.read(len(SQLITE_HEADER))
    if header != SQLITE_HEADER:
        raise ControlPlaneDamaged(f"control plane {db} is not an SQLite database (bad header, "
                                  f"{size} bytes); {RESTORE_HINT}")
    # A writer appending frames right now looks like a torn tail: damage must persist to count.
    for attempt in range(3):
        problem = wal_problem(db.with_name(db.name + "-wal"))
        if problem is None:
            return
        time.sleep(0.2 * (attempt + 1))
    raise ControlPlaneDamaged(f"control plane {db}: {problem}; SQLite would silently serve the "
                              f"state before it. {RESTORE_HINT}")


def _wal_checksum(data: bytes, s0: int, s1: int, big_endian: bool) -> tuple[int, int]:
    """SQLite's WAL checksum over ``data`` (a multiple of 8 bytes), continued from (s0, s1).
    Source: the SQLite file-format document, section "Checksum Algorithm" (WAL format)."""
    words = struct.unpack(f"{'>' if big_endian else '<'}{len(data) // 4}I", data)
    mask = 0xFFFFFFFF
    for i in range(0, len(words), 2):
        s0 = (s0 + words[i] + s1) & mask
        s1 = (s1 + words[i + 1] + s0) & mask
    return s0, s1


def wal_problem(wal: Path) -> str | None:
    """Why the write-ahead log ``wal`` would be (partly) ignored by SQLite, or None.

    SQLite replays frames while their salts match the header and their cumulative checksum
    holds, and drops the rest without an error. A torn frame at the very end (a crash or a
    writer mid-append) is normal; frames of an earlier WAL generation (other salts) after the
    valid ones are normal. Damage is: a bad header, a first frame not of the header's
    generation, or a frame of the current generation that fails its checksum followed by more
    frames.

    Parameters
    ----------
    wal : pathlib.Path
        ``<db>-wal``; header and frame layout as in the SQLite file-format document (WAL).

    Returns
    -------
    str or None
        The problem in words, or None for a missing, empty or sound WAL.
    """
    try:
        data = wal.read_bytes()
    except FileNotFoundError:
        return None
    if not data:
        return None
    if len(data) < 32:
        return f"write-ahead log {wal.name} is truncated ({len(data)} bytes)"
    magic, version, page_size, _, salt1, salt2, c0, c1 = struct.unpack(">8I", data[:32])
    if magic not in WAL_MAGIC or version != 3007000 or page_size < 512 \
            or page_size & (page_size - 1):
        return f"write-ahead log {wal.name} has a damaged header"
    big = magic & 1 == 1
    s0, s1 = _wal_checksum(data[:24], 0, 0, big)
    if (s0, s1) != (c0, c1):
        return f"write-ahead log {wal.name} has a damaged header (checksum)"
    frame = 24 + page_size
    offset, index = 32, 0
    while offset + frame <= len(data):
        head = data[offset:offset + 24]
        _, _, f_salt1, f_salt2, f0, f1 = struct.unpack(">6I", head)
        current = (f_salt1, f_salt2) == (salt1, salt2)
        if current:
            s0, s1 = _wal_checksum(head[:8], s0, s1, big)
            s0, s1 = _wal_checksum(data[offset + 24:offset + frame], s0, s1, big)
        if not current or (s0, s1) != (f0, f1):
            tail = offset + frame >= len(data)
            if index == 0 and not tail:
                return (f"write-ahead log {wal.name}: its first frame is not of the log's "
                        f"generation (overwritten?)")
            if current and not tail:
                return (f"write-ahead log {wal.name}: frame {index + 1} fails its checksum "
                        f"(committed changes after it would be lost)")
            return None
        offset += frame
        index += 1
    return None


def verify_chain(con, db: Path | str, compare_head: bool = True) -> tuple[int, str]:
    """Walk the audit chain and compare its end with the head file.

    Rows written before the chain existed (``row_hash`` NULL) may only precede chained ones.

    Parameters
    ----------
    con : sqlite3.Connection or postgres.PgConnection
        An open connection to the control plane.
    db : pathlib.Path or str
        Its file (for messages and to find the head file), or a redacted URL.
    compare_head : bool, default True
        False for a backup copy, which has no head file of its own, and for PostgreSQL.

    Returns
    -------
    (int, str)
        Id and hash of the newest audit row (``(0, GENESIS)`` for an empty log).

    Raises
    ------
    ControlPlaneDamaged
        A rewritten, deleted or inserted audit row, or a database behind its head file.
    """
    # The head first: a writer committing while the chain is walked only moves it forward.
    head = read_head(db) if compare_head else None
    prev, last_id, hashes = GENESIS, 0, {}
    chained = False
    for r in con.execute("SELECT id, ts, actor, action, target, reason, detail, prev_hash, "
                         "row_hash FROM audit ORDER BY id"):
        if r[8] is None:
            if chained:
                raise ControlPlaneDamaged(f"control plane {db}: audit entry {r[0]} lost its "
                                          f"chain hash (rewritten outside the code); {RESTORE_HINT}")
            prev, last_id = GENESIS, r[0]
            continue
        chained = True
        if r[7] != prev or row_hash(prev, tuple(r[:7])) != r[8]:
            raise ControlPlaneDamaged(
                f"control plane {db}: audit entry {r[0]} ({r[3]} by {r[2]}) does not match the "
                f"audit chain - the audit log or a row it records was rewritten outside the "
                f"code; {RESTORE_HINT}")
        prev, last_id = r[8], r[0]
        hashes[r[0]] = r[8]
    if head and head["audit_id"] and hashes.get(head["audit_id"]) != head["row_hash"]:
        raise ControlPlaneDamaged(
            f"control plane {db} is behind its last committed change (audit entry "
            f"{head['audit_id']} is missing or different): a damaged write-ahead log or an "
            f"older copy of the file would serve stale aliases and kill switch; {RESTORE_HINT}")
    return last_id, prev


def quick_check(con: sqlite3.Connection, db: Path) -> None:
    """``PRAGMA quick_check`` (page and index structure) or refuse.

    Raises
    ------
    ControlPlaneDamaged
        When SQLite reports anything but ``ok`` or cannot read the file.
    """
    try:
        result = [r[0] for r in con.execute("PRAGMA quick_check")]
    except sqlite3.DatabaseError as exc:
        raise ControlPlaneDamaged(f"control plane {db} is damaged ({exc}); {RESTORE_HINT}") from exc
    if result != ["ok"]:
        raise ControlPlaneDamaged(f"control plane {db} fails its integrity check "
                                  f"({'; '.join(result[:3])}); {RESTORE_HINT}")


def backup(db: Path, target: Path) -> dict:
    """Copy the live control plane to ``target`` with SQLite's online backup API.

    Writers may keep working: the copy is one consistent committed state. The copy is checked
    (``quick_check``, audit chain) before it is kept.

    Parameters
    ----------
    db, target : pathlib.Path
        The live control plane; the backup file (replaced atomically, parents created).

    Returns
    -------
    dict
        ``{"file", "bytes", "sha256", "audit_id"}`` of the backup.

    Raises
    ------
    ControlPlaneDamaged
        When the source or the copy fails its checks (no backup file is left behind).
    """
    target = Path(target).resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = new_temp_file(target)  # exclusive: a planted symlink is never written through
    src = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    dst = sqlite3.connect(tmp)
    try:
        src.backup(dst)
        dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
        quick_check(dst, tmp)
        audit_id, _ = verify_chain(dst, tmp, compare_head=False)
    except BaseException:
        dst.close()
        tmp.unlink(missing_ok=True)
        raise
    finally:
        src.close()
    dst.close()
    os.replace(tmp, target)
    return {"file": str(target), "bytes": target.stat().st_size,
            "sha256": _sha256_file(target), "audit_id": audit_id}


def restore(backup_file: Path, db: Path) -> dict:
    """Replace control plane ``db`` by a verified backup (its WAL and shared memory go too).

    Returns
    -------
    dict
        ``{"file", "sha256", "audit_id", "row_hash"}`` of the restored state; the head file
        now names its newest audit entry.

    Raises
    ------
    ControlPlaneDamaged
        When the backup is not a sound control plane (nothing is changed).
    """
    backup_file, db = Path(backup_file).resolve(), Path(db)
    if not backup_file.is_file() or backup_file.stat().st_size == 0:
        raise ControlPlaneDamaged(f"backup {backup_file} is missing or empty; nothing restored")
    tmp = new_temp_file(db)
    tmp.write_bytes(backup_file.read_bytes())
    try:
        con = sqlite3.connect(tmp)
        try:
            if con.execute("SELECT count(*) FROM sqlite_master WHERE name='audit'").fetchone()[0] != 1:
                raise ControlPlaneDamaged(f"backup {backup_file} is not a control plane")
            quick_check(con, backup_file)
            audit_id, last_hash = verify_chain(con, backup_file, compare_head=False)
        finally:
            con.close()
    except (sqlite3.DatabaseError, ControlPlaneDamaged) as exc:
        tmp.unlink(missing_ok=True)
        raise ControlPlaneDamaged(f"backup {backup_file} cannot be restored: {exc}") from exc
    for suffix in ("-wal", "-shm"):  # the damaged log must not be replayed onto the backup
        db.with_name(db.name + suffix).unlink(missing_ok=True)
    os.replace(tmp, db)
    write_head(db, audit_id, last_hash)
    return {"file": str(backup_file), "sha256": _sha256_file(db), "audit_id": audit_id,
            "row_hash": last_hash}


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
