"""How the control plane talks to its database: the connection policy and the dialect, kept
apart from the SQL.

``Registry`` only ever asks its backend for a short read, a serialized write transaction, the
schema to be applied, a per-thread read-only connection for the serving hot path and a cheap
change token. SQLite in WAL mode (this module) is the embedded default; PostgreSQL
(``postgres.py``) is chosen by a ``postgresql://`` URL (``open_backend``). The SQL text is
shared: both take ``?``/``:name`` placeholders and ``ON CONFLICT``; what differs (column types,
append-only triggers, the audit id sequence, column listing) is a method or attribute here.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ml_assets.lib.core.file_times import settled
from ml_assets.lib.core.registry import integrity

BUSY_TIMEOUT_SECONDS = 30  # concurrent writers queue this long before failing
READ_ONLY_TIMEOUT_SECONDS = 5  # the serving read path fails fast instead
POSTGRES_SCHEMES = ("postgresql://", "postgres://", "postgresql+psycopg2://")


def open_backend(location: Path | str):
    """The backend for a control-plane location.

    Parameters
    ----------
    location : pathlib.Path or str
        A SQLite file path, or a ``postgresql://`` (also ``postgres://``,
        ``postgresql+psycopg2://``) URL.

    Returns
    -------
    SqliteBackend or PostgresBackend
    """
    if isinstance(location, str) and location.startswith(POSTGRES_SCHEMES):
        from ml_assets.lib.core.registry.postgres import PostgresBackend  # psycopg2 on demand

        return PostgresBackend(location)
    return SqliteBackend(Path(location))


class SqliteBackend:
    """SQLite in WAL mode: one connection per call, writers serialized by ``BEGIN IMMEDIATE``.

    Parameters
    ----------
    path : pathlib.Path
        The database file (``<data_dir>/control.sqlite``); its directory is created.
    """

    #: DDL for schema.py's column placeholders.
    types = {"id": "INTEGER PRIMARY KEY AUTOINCREMENT", "int": "INTEGER", "real": "REAL"}

    def __init__(self, path: Path):
        self.path = Path(path)
        self.label = str(self.path)
        self.head_file = integrity.head_path(self.path)  # the evidence a later open compares
        self._local = threading.local()
        self.on_commit = None  # called with the connection after each committed transaction

    def check(self) -> bool:
        """The open-time file checks (``integrity.check_file``, ``quick_check``); creates the
        directory.

        Returns
        -------
        bool
            Whether the control plane existed before.

        Raises
        ------
        ControlPlaneDamaged
            As ``integrity.check_file`` and ``integrity.quick_check``.
        """
        integrity.check_file(self.path)
        existed = self.path.exists()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if existed:
            with self.read() as con:
                integrity.quick_check(con, self.path)
        return existed

    @staticmethod
    def append_only_trigger(table: str, what: str, op: str) -> str:
        """DDL refusing ``op`` (UPDATE or DELETE) on ``table`` with "<what> append-only"."""
        return (f"CREATE TRIGGER IF NOT EXISTS {table}_no_{op.lower()} BEFORE {op} ON {table}\n"
                f"BEGIN SELECT RAISE(ABORT, '{what} append-only'); END;\n")

    @staticmethod
    def next_id(con, table: str) -> int:
        """The id the next row of AUTOINCREMENT ``table`` gets (inside a write transaction)."""
        row = con.execute("SELECT seq FROM sqlite_sequence WHERE name=?", (table,)).fetchone()
        return (row[0] if row else 0) + 1

    def change_token(self) -> tuple | None:
        """(inode, size, mtime) of the database and its WAL (~2 us): every commit writes the
        WAL, so an unchanged token means an unchanged control plane.

        Returns
        -------
        tuple or None
            None while an mtime is under a second old (not yet trusted: query instead).
        """
        now, out = time.time_ns(), []
        for f in (self.path, self.path.with_name(f"{self.path.name}-wal")):
            try:
                st = os.stat(f)
            except FileNotFoundError:
                out.append(None)
                continue
            if not settled(st.st_mtime_ns, now):
                return None
            out.append((st.st_ino, st.st_size, st.st_mtime_ns))
        return tuple(out)

    def connect(self) -> sqlite3.Connection:
        """A new read-write connection in autocommit mode with WAL, a busy timeout and foreign
        keys on; rows come back as ``sqlite3.Row``.

        Returns
        -------
        sqlite3.Connection
            The caller closes it (``read``/``transaction`` do).
        """
        con = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_SECONDS * 1000}")
        con.execute("PRAGMA foreign_keys=ON")
        con.row_factory = sqlite3.Row
        return con

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A connection for reads (each statement sees a committed state), closed afterwards."""
        con = self.connect()
        try:
            yield con
        finally:
            con.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One IMMEDIATE transaction: concurrent writers queue instead of failing.

        Raises
        ------
        BaseException
            Whatever the body raised, after the transaction was rolled back.
        """
        con = self.connect()
        try:
            con.execute("BEGIN IMMEDIATE")
            yield con
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            con.close()
            raise
        try:
            if self.on_commit is not None:
                self.on_commit(con)
        finally:
            con.close()

    def apply_schema(self, ddl: str, migrations: tuple[tuple[str, str, str], ...] = ()) -> None:
        """Create missing tables and triggers (idempotent ``CREATE ... IF NOT EXISTS`` script),
        then add the ``(table, column, type)`` columns an older file lacks.

        Parameters
        ----------
        ddl : str
            The schema script (``schema.py``); run with ``executescript``.
        migrations : tuple of (table, column, type)
            Columns added by ``ALTER TABLE ... ADD COLUMN`` when missing; trusted constants
            from the code, interpolated into SQL.
        """
        with self.read() as con:
            con.executescript(ddl)
            for table, column, kind in migrations:
                if column not in {r["name"] for r in con.execute(f"PRAGMA table_info({table})")}:
                    con.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")

    def read_only(self) -> sqlite3.Connection:
        """This thread's read-only connection, opened once and kept (the serving hot path: a
        per-request read then costs tens of microseconds, not a connect).

        Returns
        -------
        sqlite3.Connection
            Shared by every call from the same thread; never closed by the caller. Rows are
            plain tuples.
        """
        con = getattr(self._local, "con", None)
        if con is None:
            con = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True,
                                  timeout=READ_ONLY_TIMEOUT_SECONDS, check_same_thread=False)
            self._local.con = con
        return con
