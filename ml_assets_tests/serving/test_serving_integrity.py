"""Tampered artifacts: a changed byte refuses to load with a clear error; serving keeps the
last good model, says so in every response and in /health."""

from pathlib import Path

import httpx
import pandas as pd
import pytest

from ml_assets.lib.core.artifacts import ArtifactIntegrityError, load_model
from ml_assets.lib.core.registry import Registry
from ml_assets.lib.core.workspace import Workspace
from ml_assets.lib.release import rollback
from ml_assets.lib.serving.read_path import ScoringService
from ml_assets.serving.app import running_server
from ml_assets_tests.fixtures.serving_world import SPEC, world_copy


def _tamper(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit of one byte
    path.write_bytes(bytes(data))


@pytest.fixture
def world(tmp_path):
    paths = world_copy(tmp_path / "w")
    registry = Registry(paths.control_db)
    card = registry.get_model("fraud-v1")  # the previous model
    return paths, registry, card, paths.root / card["artifact_path"]


def test_a_tampered_artifact_refuses_to_load_with_a_clear_error(world):
    _, _, card, artifact = world
    _tamper(artifact)
    with pytest.raises(ArtifactIntegrityError, match="fails verification.*refusing to load"):
        load_model(artifact, card["artifact_sha256"])


def test_kill_switch_refuses_to_point_at_a_tampered_previous_model(world):
    paths, registry, _, artifact = world
    _tamper(artifact)
    with pytest.raises(rollback.RollbackRefused, match="does not match its registered sha256"):
        rollback.set_kill_switch(registry, paths, SPEC, True, "tests", "incident")
    assert registry.get_setting("kill_switch", "off") == "off"


def test_serving_keeps_the_last_good_model_and_reports_it(world):
    """The switch was flipped while fraud-v1 was fine; then its artifact was corrupted and a
    fresh server process started: it must not load fraud-v1, and must keep answering."""
    paths, registry, _, artifact = world
    rollback.set_kill_switch(registry, paths, SPEC, True, "tests", "incident")
    _tamper(artifact)
    with running_server(paths, SPEC, log_predictions=False) as url, httpx.Client(
            base_url=url) as client:
        health = client.get("/health").json()
        assert health["status"] == "degraded"
        assert health["model_version"] == "fraud-v2"
        assert "fails verification" in health["integrity_problems"]["fraud-v1"]
        event_id = _any_scored_event(paths)
        r = client.get(f"/scores/{event_id}")
        assert r.status_code == 200
        body = r.json()
        assert body["model_version"] == "fraud-v2" and body["role"] == "last_good"
        assert "fraud-v1" in body["degraded"] and "last good fraud-v2" in body["degraded"]


def test_a_running_server_keeps_its_verified_copy_when_the_file_changes_underneath(world):
    paths, registry, _, artifact = world
    service = ScoringService(Workspace(paths, SPEC)).start()
    try:
        _tamper(artifact)
        assert "fraud-v1" in service.models.verify_on_disk()
        registry.set_setting("kill_switch", "on", "tests", "incident")
        resolved = service.resolve()
        # Verified bytes were loaded before the change; the in-memory model stays trustworthy.
        assert resolved.version == "fraud-v1" and resolved.degraded is None
    finally:
        service.close()


def _any_scored_event(paths) -> int:
    df = pd.read_parquet(sorted((paths.lake / "batch_scores").glob("*.parquet"))[-2])
    return int(df["event_id"].iloc[0])
