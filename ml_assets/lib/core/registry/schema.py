"""The control plane's one schema, applied once per ``Registry`` object: the same tables on
SQLite and PostgreSQL; ``{id}``, ``{int}`` and ``{real}`` are the backend's column types and
the append-only triggers its own (``render``).

Model versions, their signatures, the audit log, drill results and the landing ledger are
append-only (triggers refuse UPDATE and DELETE); the audit log is also hash-chained
(``integrity.py``), which catches edits made around the triggers.

Table names and columns are those earlier releases wrote, so existing ``control.sqlite`` files
open unchanged: ``drill_results`` and ``landing_checksums`` used to be created by
``lib/release/criteria.py`` and ``lib/ingest/integrity.py`` and now live here beside the rest.
"""

_TABLES = """
CREATE TABLE IF NOT EXISTS models (
    version TEXT PRIMARY KEY,
    model_name TEXT NOT NULL,
    seq {int} NOT NULL,
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
    rows {int} NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
    id {id},
    ts TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL,
    prev_hash TEXT,
    row_hash TEXT
);
CREATE TABLE IF NOT EXISTS model_signatures (
    version TEXT NOT NULL REFERENCES models(version),
    key_id TEXT NOT NULL,
    signature TEXT NOT NULL,
    signed_at TEXT NOT NULL,
    signed_by TEXT NOT NULL,
    PRIMARY KEY (version, key_id)
);
CREATE TABLE IF NOT EXISTS drills (
    id {id},
    ts TEXT NOT NULL,
    model_name TEXT NOT NULL,
    kind TEXT NOT NULL,
    actor TEXT NOT NULL,
    ok {int} NOT NULL,
    time_to_effect_ms {real},
    champion_version TEXT,
    previous_version TEXT,
    detail TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS drill_results (
    id {id},
    ts TEXT NOT NULL,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    ok {int} NOT NULL,
    payload TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS landing_checksums (
    path TEXT PRIMARY KEY,
    sha256 TEXT NOT NULL,
    size {int} NOT NULL,
    recorded_at TEXT NOT NULL,
    recorded_by TEXT NOT NULL
);
-- A corrected re-delivery of a landing file, accepted by a person: the newest row of a path is
-- the checksum it must have from then on (the first-seen row above is never changed).
CREATE TABLE IF NOT EXISTS landing_acceptances (
    id {id},
    path TEXT NOT NULL,
    old_sha256 TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size {int} NOT NULL,
    accepted_at TEXT NOT NULL,
    accepted_by TEXT NOT NULL,
    reason TEXT NOT NULL
);
"""

# Append-only tables: the database refuses UPDATE (and DELETE, where listed) of their rows.
_APPEND_ONLY = (
    ("audit", "audit log is", ("UPDATE", "DELETE")),
    ("models", "model versions are", ("UPDATE", "DELETE")),
    ("model_signatures", "model signatures are", ("UPDATE", "DELETE")),
    ("drill_results", "drill results are", ("UPDATE",)),
    ("landing_checksums", "landing checksums are", ("UPDATE", "DELETE")),
    ("landing_acceptances", "landing acceptances are", ("UPDATE", "DELETE")),
)


def render(backend) -> str:
    """The schema script in ``backend``'s dialect.

    Parameters
    ----------
    backend : SqliteBackend or PostgresBackend
        Supplies ``types`` (``{"id", "int", "real"}`` DDL) and ``append_only_trigger``.

    Returns
    -------
    str
        Idempotent DDL (``CREATE ... IF NOT EXISTS``; triggers only when missing).
    """
    return _TABLES.format(**backend.types) + "".join(
        backend.append_only_trigger(table, what, op)
        for table, what, ops in _APPEND_ONLY for op in ops)

# Columns added after files were first written: (table, column, DDL type), added when missing.
MIGRATIONS = (
    ("audit", "prev_hash", "TEXT"),
    ("audit", "row_hash", "TEXT"),
)
