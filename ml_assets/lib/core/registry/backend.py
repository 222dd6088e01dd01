"""How the control plane talks to its database: the connection policy, kept apart from the SQL.

``Registry`` only ever asks its backend for a short read, an IMMEDIATE write transaction, the
schema to be applied, or a per-thread read-only connection for the serving hot path. This is the
seam a PostgreSQL backend fills (issue 19); SQLite in WAL mode is the embedded default.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

BUSY_TIMEOUT_SECONDS = 30  # concurrent writers queue this long before failing
READ_ONLY_TIMEOUT_SECONDS = 5  # the serving read path fails fast instead


class SqliteBackend:
    """SQLite in WAL mode: one connection per call, writers serialized by ``BEGIN IMMEDIATE``.

    Parameters
    ----------
    path : pathlib.Path
        The database file (``<data_dir>/control.sqlite``); its directory is created.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self.on_commit = None  # called with the connection after each committed transaction

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
                have = {r["name"] for r in con.execute(f"PRAGMA table_info({table})")}
                if column not in have:
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
