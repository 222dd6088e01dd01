"""The reloader's change token (``read_path.listing_token``): it changes when a watched table
gains or atomically replaces a file (nested ones too for tables without a grain), and is
withheld (None: list the lake) while a directory's mtime is too fresh to be trusted."""

import os
import time

from ml_assets.lib.core.catalog import BATCH_SCORES, MICROBATCH_SCORES, Catalog
from ml_assets.lib.serving import read_path
from ml_assets.lib.serving.read_path import listing_token


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
    monkeypatch.setattr(read_path, "_RACY_NS", 0)  # from here, trust fresh mtimes
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
