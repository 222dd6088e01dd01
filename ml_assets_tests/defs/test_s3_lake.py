"""The lake on an S3 API (issue 19, item 2): the catalog with ``ML_ASSETS_LAKE_URL`` on a real
SeaweedFS server started by the test session - partitions written, listed, read by DuckDB,
quarantined and refused exactly as on a local lake - and the whole pipeline run with its lake
there."""

import dataclasses
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from ml_assets.definitions import build_definitions
from ml_assets.lib.core.catalog import (
    BATCH_SCORES,
    BUSINESS_METRIC,
    EVENT_FEATURES,
    QUARANTINE_FILES,
    RAW_EVENTS,
    SHADOW_SUMMARY,
    Catalog,
)
from ml_assets.lib.core.identifiers import UnsafePath
from ml_assets.lib.core.lake import connect, read_parquet_by_file
from ml_assets.lib.core.lake_store import LAKE_URL_ENV, remote_root
from ml_assets.lib.core.paths import DataPaths
from ml_assets.lib.core.registry import Registry
from ml_assets.lib.core.workspace import Workspace
from ml_assets.lib.ingest.quarantine import read_quarantine, write_quarantine
from ml_assets.scenarios.demo import run_pipeline
from ml_assets.specs.loading import load_spec
from ml_assets_tests.defs.test_end_to_end import with_nullable_agent, write_ticket_landing
from ml_assets_tests.fixtures.example_specs import SUPPORT_TICKETS
from ml_assets_tests.fixtures.s3_server import BUCKET, s3_server  # noqa: F401 - the fixture

H0 = datetime(2026, 7, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)


@pytest.fixture
def s3_paths(s3_server, tmp_path, monkeypatch, request):  # noqa: F811 - the fixture
    """A data directory whose lake is ``s3://<bucket>/<test name>``."""
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv(LAKE_URL_ENV, f"s3://{BUCKET}/{request.node.name}")
    return DataPaths(tmp_path).ensure()


def _hours(n: int) -> dict[datetime, pd.DataFrame]:
    return {H0 + i * HOUR: pd.DataFrame({"event_id": [f"e{i}a", f"e{i}b"], "amount": [i, 2.5 * i]})
            for i in range(n)}


def test_partitions_are_objects_on_the_server_and_read_back_equal(s3_paths, s3_server):  # noqa: F811
    table = Catalog(s3_paths.lake).table(RAW_EVENTS)
    parts = _hours(5)
    del parts[H0 + 2 * HOUR]  # a gap
    table.write_many(parts)
    objects = s3_server.filesystem().find(f"{BUCKET}/test_partitions_are_objects_on_the_server_"
                                          "and_read_back_equal/raw_events")
    assert [Path(o).name for o in objects] == [
        "2026-07-01T00.parquet", "2026-07-01T01.parquet", "2026-07-01T03.parquet",
        "2026-07-01T04.parquet"]
    assert not (s3_paths.root / "lake").exists()  # nothing fell back to local disk
    files, missing = table.coverage(H0, H0 + 5 * HOUR)
    assert missing == [H0 + 2 * HOUR] and len(files) == 4
    assert table.files(H0 + 3 * HOUR, H0 + 4 * HOUR) == [table.path(H0 + 3 * HOUR)]
    assert table.latest() == H0 + 4 * HOUR
    expected = pd.concat(parts.values(), ignore_index=True)
    pd.testing.assert_frame_equal(table.read(), expected)  # DuckDB through s3fs
    by_file = read_parquet_by_file(files)
    pd.testing.assert_frame_equal(by_file[files[-1]], parts[H0 + 4 * HOUR])
    total = connect().execute(f"SELECT sum(amount) FROM {table.relation()}").fetchone()[0]
    assert total == expected["amount"].sum()
    table.write(H0, parts[H0 + HOUR])  # a rewrite replaces the object whole
    assert list(table.read(H0, H0 + HOUR)["event_id"]) == ["e1a", "e1b"]


def test_quarantine_and_reports_live_on_the_server(s3_paths):
    rows = pd.DataFrame({"row": [15], "reason": ["amount < 0"], "partition": ["2026-07-01T07"]})
    write_quarantine(s3_paths, RAW_EVENTS, rows, ["2026-07-01T07", "2026-07-01T08"])
    got = read_quarantine(s3_paths)
    assert list(got["row"]) == [15] and list(got["asset"]) == [RAW_EVENTS]
    write_quarantine(s3_paths, RAW_EVENTS, rows.iloc[0:0], ["2026-07-01T07"])  # fixed: gone
    assert read_quarantine(s3_paths).empty
    assert not Catalog(s3_paths.lake).table(QUARANTINE_FILES).files()
    summary = Catalog(s3_paths.lake).table(SHADOW_SUMMARY)
    summary.write_bytes("fraud-v2", b'{"ok": true}')
    assert summary.path("fraud-v2").read_text() == '{"ok": true}'


def test_names_from_outside_stay_inside_the_remote_lake(s3_paths):
    catalog = Catalog(s3_paths.lake)
    for bad in ("../raw_events/x.parquet", "/etc/passwd", "raw_events/\x00.parquet"):
        with pytest.raises(UnsafePath, match="s3://"):
            catalog.path_of(bad)
    assert str(catalog.path_of("raw_events/2026-07-01T00.parquet")).startswith(f"s3://{BUCKET}/")


def test_a_malformed_lake_url_is_refused_naming_the_setting():
    for url in ("http://bucket/lake", "s3://key:secret@bucket/lake", "s3://bucket/../x", "s3:///x",
                "s3://bucket/lake?x=1"):
        with pytest.raises(ValueError, match=LAKE_URL_ENV):
            remote_root(url)
    assert os.environ.get(LAKE_URL_ENV) is None  # no test's setting leaked


def test_the_pipeline_runs_end_to_end_with_its_lake_on_the_server(s3_paths, s3_server):  # noqa: F811
    """Ingest, features, training, scoring, monitoring, shadow and rollout, the documents: the
    demo's whole sequence on a 12-day daily-grain world, every lake table an object."""
    spec = dataclasses.replace(with_nullable_agent(load_spec(SUPPORT_TICKETS)),
                               partition_grain="daily")
    start, days = spec.start_utc, 12
    write_ticket_landing(s3_paths, start, days)
    run_pipeline(Workspace(s3_paths, spec), build_definitions(spec, str(s3_paths.root)), start,
                 start + timedelta(days=days), first_model_at=0.6, log=lambda *_: None)
    assert Registry(s3_paths.control_db).aliases("escalation")["champion"] == "escalation-v1"
    assert not (s3_paths.root / "lake").exists()  # nothing fell back to local disk
    catalog = Catalog(s3_paths.lake, spec.partition_grain)
    for table in (RAW_EVENTS, EVENT_FEATURES, BATCH_SCORES):
        files = catalog.table(table).files()
        assert files and all(str(f).startswith(f"s3://{BUCKET}/") for f in files), table
    scores = catalog.table(BATCH_SCORES).read()
    assert scores["model_version"].str.startswith("escalation-v").all()
    assert len(catalog.table(BUSINESS_METRIC).files()) > 0  # monitoring read and wrote there
