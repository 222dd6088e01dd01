"""Change tokens from file times in the read path: the reloader's ``listing_token`` changes
when a watched table gains or atomically replaces a file (nested ones too for tables without
a grain) and is withheld (None: list the lake) while a directory's mtime is too fresh to be
trusted; the ``ControlReader`` answers from its last query only while the control plane is
unchanged (its files on SQLite, its change counter on PostgreSQL), so a kill switch flip shows
on the next read."""

import os
import time

from ml_assets.lib.core import file_times
from ml_assets.lib.core.catalog import BATCH_SCORES, MICROBATCH_SCORES, Catalog
from ml_assets.lib.core.registry import Registry
from ml_assets.lib.release.rollback import KILL_SWITCH
from ml_assets.lib.serving.read_path import ControlReader, listing_token


def test_listing_token_follows_the_listing(tmp_path, monkeypatch):
    catalog = Catalog(tmp_path)
    scores, nested = catalog.table(BATCH_SCORES).dir, catalog.table(MICROBATCH_SCORES).dir
    scores.mkdir()
    (nested / "batch-1").mkdir(parents=True)
    old = time.time() - 10
    for d, _, _ in os.walk(tmp_path):
        os.utime(d, (old, old))
    token = listing_token(catalog)
    assert token is not None and token == listing_token(catalog)  # nothing changed
    (scores / "2026-01-01T00.parquet").write_bytes(b"x")
    assert listing_token(catalog) is None  # changed within the last second: not trusted
    monkeypatch.setattr(file_times, "RACY_NS", 0)  # from here, trust fresh mtimes
    added = listing_token(catalog)
    assert added not in (None, token)
    os.utime(scores, (old, old))
    before = listing_token(catalog)
    (scores / ".tmp").write_bytes(b"y")
    os.replace(scores / ".tmp", scores / "2026-01-01T00.parquet")  # an atomic rewrite
    assert listing_token(catalog) != before
    before = listing_token(catalog)
    (nested / "batch-1" / "role.parquet").write_bytes(b"z")  # nested one level down
    assert listing_token(catalog) != before


def test_control_reader_sees_a_flip_on_the_next_read(control_plane, monkeypatch):
    registry = Registry(control_plane.location)
    reader = ControlReader(registry, "fraud")
    queries = []
    snapshot = reader._snapshot.read
    monkeypatch.setattr(reader._snapshot, "read", lambda: queries.append(1) or snapshot())
    if control_plane.backend == "sqlite":
        monkeypatch.setattr(file_times, "RACY_NS", 10**18)  # every mtime too fresh to trust
        assert reader.read()[1] is False and reader.read()[1] is False
        assert len(queries) == 2  # queried every time
        monkeypatch.setattr(file_times, "RACY_NS", 0)  # from here, trust fresh mtimes
    queries.clear()
    reader.read()
    assert reader.read()[1] is False and len(queries) == 1  # unchanged: no query
    registry.set_setting(KILL_SWITCH, "on", "tests", "flip")
    assert reader.read()[1] is True and len(queries) == 2  # the commit moved the token
    registry.set_setting(KILL_SWITCH, "off", "tests", "flip back")
    assert reader.read()[1] is False
