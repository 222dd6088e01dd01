"""The control plane on PostgreSQL: the same SQL and invariants as SQLite, for a control plane
shared by several machines (issue 19).

- Writers are serialized like SQLite's ``BEGIN IMMEDIATE``: every write transaction first takes
  one transaction-level advisory lock, so a check-then-write (``expect`` of ``move_aliases``,
  the next audit id and hash) never interleaves with another writer; READ COMMITTED then shows
  it everything committed before the lock was granted.
- Append-only tables refuse UPDATE, DELETE and TRUNCATE in a plpgsql trigger.
- Every write transaction bumps the one row of ``control_changes``: serving reads that counter
  (one primary-key lookup) to decide whether its last snapshot still stands.
- Connections are kept per thread (and per process: a forked child opens its own), with a
  connect and statement timeout; a lost connection is dropped and the call fails with
  ``ControlPlaneUnavailable``, so serving answers 503 rather than a stale kill switch.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from urllib.parse import urlsplit, urlunsplit

import psycopg2
import psycopg2.extras

from ml_assets.lib.core.registry.backend import BUSY_TIMEOUT_SECONDS, READ_ONLY_TIMEOUT_SECONDS
from ml_assets.lib.core.registry.integrity import ControlPlaneUnavailable

CONNECT_TIMEOUT_SECONDS = 5
#: ``pg_advisory_xact_lock`` key every control-plane writer takes ("ml_ctl" in ASCII).
WRITE_LOCK_KEY = 0x6D6C5F63746C
_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")

CHANGES_DDL = """
CREATE TABLE IF NOT EXISTS control_changes (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n BIGINT NOT NULL
);
INSERT INTO control_changes VALUES (1, 0) ON CONFLICT DO NOTHING;
CREATE OR REPLACE FUNCTION ml_assets_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% append-only', TG_ARGV[0] USING ERRCODE = 'integrity_constraint_violation';
END $$;
"""


@lru_cache(maxsize=256)
def to_pyformat(sql: str) -> str:
    """The registry's ``?``/``:name`` SQL in psycopg2's ``%s``/``%(name)s`` (``%`` escaped).

    The shared SQL never holds ``?`` or ``:word`` inside a string literal (values are always
    parameters), so a textual rewrite is exact.
    """
    return _NAMED.sub(r"%(\1)s", sql.replace("%", "%%")).replace("?", "%s")


def redact(url: str) -> str:
    """``url`` without its password (for messages and logs)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def unavailable(label: str, exc: Exception) -> ControlPlaneUnavailable:
    """The error for a control plane at ``label`` (a redacted URL) that cannot be reached,
    with libpq's reason on one line."""
    return ControlPlaneUnavailable(f"control plane {label} is unreachable "
                                   f"({' '.join(str(exc).split())})")


class PgConnection:
    """sqlite3's ``execute`` surface over one psycopg2 connection: ``?``/``:name`` placeholders,
    rows addressable by index and by column name (``dict(row)`` works).

    Parameters
    ----------
    connect : callable
        Opens the psycopg2 connection (again, after a server restart).
    label : str
        The redacted URL, for messages.
    on_lost : callable
        Called when the connection turns out broken and is given up (the owner drops it).
    """

    def __init__(self, connect, label: str, on_lost):
        self._connect, self.label, self._on_lost = connect, label, on_lost
        self.raw = connect()

    def execute(self, sql: str, params=()):
        """Run one statement; returns the cursor (``fetchone``, ``fetchall``, iteration). In
        autocommit mode (reads) a connection lost since its last use is reopened once.

        Raises
        ------
        ControlPlaneUnavailable
            The server is gone or the connection broke (it is dropped; the next call reconnects).
        psycopg2.Error
            Any other database error (e.g. an append-only trigger), unchanged.
        """
        for retry in (self.raw.autocommit, False):
            cur = self.raw.cursor(cursor_factory=psycopg2.extras.DictCursor)
            try:
                cur.execute(to_pyformat(sql), params)
                return cur
            except (psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
                if isinstance(exc, psycopg2.errors.QueryCanceled):
                    raise
                if not retry:
                    self._on_lost()
                    raise unavailable(self.label, exc) from exc
                self.raw.close()
                try:
                    self.raw = self._connect()
                except ControlPlaneUnavailable:
                    self._on_lost()
                    raise

    def executemany(self, sql: str, rows) -> None:
        """Run one statement per parameter row (no result)."""
        with self.raw.cursor() as cur:
            cur.executemany(to_pyformat(sql), rows)


class PostgresBackend:
    """PostgreSQL: per-thread connections, writers serialized by one advisory lock.

    Parameters
    ----------
    url : str
        ``postgresql://user:password@host:port/dbname`` (``postgres://`` and SQLAlchemy's
        ``postgresql+psycopg2://`` are accepted too); the database must exist.
    """

    #: DDL for schema.py's column placeholders (64-bit ints: sizes in bytes, row counts).
    types = {"id": "BIGSERIAL PRIMARY KEY", "int": "BIGINT", "real": "DOUBLE PRECISION"}
    head_file = None  # PostgreSQL's own WAL never silently drops committed transactions
    path = None

    def __init__(self, url: str):
        self.url = re.sub(r"^postgres(ql\+psycopg2)?://", "postgresql://", url)
        self.label = redact(self.url)
        self._local = threading.local()
        self.on_commit = None  # called with the connection after each committed transaction

    # -- connections ---------------------------------------------------------------------
    def _connection(self, kind: str) -> PgConnection:
        """This thread's ``"read"`` (autocommit, read-only) or ``"write"`` connection."""
        held = getattr(self._local, kind, None)
        if held is not None and held[0] == os.getpid() and not held[1].raw.closed:
            return held[1]
        # A forked child opens its own; the inherited one is only forgotten, never closed here
        # (closing would end the parent's session; psycopg2 frees it without a Terminate).
        con = PgConnection(lambda: self._open(kind == "read"), self.label,
                           lambda: self._drop(kind))
        setattr(self._local, kind, (os.getpid(), con))
        return con

    def _open(self, read: bool):
        """A new psycopg2 connection: read-only autocommit, or read-write in transactions."""
        timeout_ms = (READ_ONLY_TIMEOUT_SECONDS if read else BUSY_TIMEOUT_SECONDS) * 1000
        try:
            raw = psycopg2.connect(
                self.url, connect_timeout=CONNECT_TIMEOUT_SECONDS, application_name="ml_assets",
                options=f"-c statement_timeout={timeout_ms} "
                        f"-c default_transaction_read_only={'on' if read else 'off'}")
        except psycopg2.OperationalError as exc:
            raise unavailable(self.label, exc) from exc
        raw.autocommit = read
        return raw

    def _drop(self, kind: str) -> None:
        held = getattr(self._local, kind, None)
        setattr(self._local, kind, None)
        if held is not None and held[0] == os.getpid():
            held[1].raw.close()

    def check(self) -> bool:
        """Connect once (the URL and the server are fine).

        Returns
        -------
        bool
            Whether the control plane's tables existed before.

        Raises
        ------
        ControlPlaneUnavailable
            When the server cannot be reached or refuses the login.
        """
        with self.read() as con:
            return con.execute("SELECT to_regclass('audit') IS NOT NULL").fetchone()[0]

    @contextmanager
    def read(self) -> Iterator[PgConnection]:
        """This thread's read-only autocommit connection (each statement sees a committed
        state)."""
        yield self._connection("read")

    def read_only(self) -> PgConnection:
        """This thread's read-only connection, kept open (the serving hot path)."""
        return self._connection("read")

    @contextmanager
    def transaction(self) -> Iterator[PgConnection]:
        """One write transaction, serialized against every other writer by the advisory lock;
        it bumps ``control_changes`` before it commits.

        Raises
        ------
        BaseException
            Whatever the body raised, after the transaction was rolled back.
        """
        con = self._connection("write")
        try:
            con.execute("SELECT pg_advisory_xact_lock(?)", (WRITE_LOCK_KEY,))
        except ControlPlaneUnavailable:  # lost since its last use (a server restart): reopen once
            con = self._connection("write")
            con.execute("SELECT pg_advisory_xact_lock(?)", (WRITE_LOCK_KEY,))
        try:
            yield con
            con.execute("UPDATE control_changes SET n = n + 1 WHERE id = 1")
            con.raw.commit()
        except BaseException:
            if not con.raw.closed:
                try:
                    con.raw.rollback()
                except psycopg2.Error:
                    self._drop("write")
            raise
        if self.on_commit is not None:
            try:
                self.on_commit(con)
            finally:
                con.raw.rollback()  # end the implicit transaction the hook's reads opened

    def apply_schema(self, ddl: str, migrations: tuple[tuple[str, str, str], ...] = ()) -> None:
        """Create missing tables, triggers and the change counter, then add the
        ``(table, column, type)`` columns an older database lacks; under the write lock, so
        servers starting together do not race on ``CREATE``.

        Parameters
        ----------
        ddl : str
            The schema (``schema.render``), run as one script.
        migrations : tuple of (table, column, type)
            Trusted constants from the code, interpolated into SQL.
        """
        raw = self._open(read=False)  # its own connection: once per Registry
        try:
            with raw.cursor() as cur:
                cur.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK_KEY,))
                cur.execute(CHANGES_DDL + ddl)
                for table, column, kind in migrations:
                    if column not in self.columns(cur, table):
                        cur.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
            raw.commit()
        finally:
            raw.close()  # without a commit, closing rolls back

    @staticmethod
    def columns(cur, table: str) -> set[str]:
        """The column names of ``table`` in the current schema."""
        cur.execute("SELECT column_name FROM information_schema.columns WHERE table_name = %s "
                    "AND table_schema = current_schema()", (table,))
        return {r[0] for r in cur.fetchall()}

    # -- dialect -------------------------------------------------------------------------
    @staticmethod
    def append_only_trigger(table: str, what: str, op: str) -> str:
        """DDL refusing ``op`` (UPDATE or DELETE; DELETE also refuses TRUNCATE) on ``table``
        with "<what> append-only", created only when missing."""
        triggers = [(f"{table}_no_{op.lower()}", f"BEFORE {op} ON {table} FOR EACH ROW")]
        if op == "DELETE":
            triggers.append((f"{table}_no_truncate",
                             f"BEFORE TRUNCATE ON {table} FOR EACH STATEMENT"))
        return "".join(
            f"DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = '{name}' AND "
            f"tgrelid = '{table}'::regclass) THEN CREATE TRIGGER {name} {when} EXECUTE FUNCTION "
            f"ml_assets_append_only('{what}'); END IF; END $$;\n"
            for name, when in triggers)

    @staticmethod
    def next_id(con, table: str) -> int:
        """The next value of ``table``'s id sequence (consumed: ids never repeat)."""
        return con.execute("SELECT nextval(pg_get_serial_sequence(?, 'id'))",
                           (table,)).fetchone()[0]

    def change_token(self) -> tuple:
        """The change counter, bumped by every committed write (one primary-key read).

        Raises
        ------
        ControlPlaneUnavailable
            When the server cannot be reached.
        """
        return ("changes", self.read_only().execute(
            "SELECT n FROM control_changes WHERE id = 1").fetchone()[0])
