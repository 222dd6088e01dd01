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
from ml_assets.lib.serving.read_path import NoServableModel, ScoringService
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


def test_X10_kill_switch_on_and_previous_unverifiable_answers_503_never_the_killed_champion(
        world):
    """Issue 15 item 6. The switch was flipped while fraud-v1 was fine; then its artifact was
    corrupted and a fresh server process started: it must not load fraud-v1, and the
    switched-off champion fraud-v2 must not answer either (it did, as role ``last_good``):
    every route answers 503 ``no_servable_model`` so callers fall back."""
    paths, registry, _, artifact = world
    rollback.set_kill_switch(registry, paths, SPEC, True, "tests", "incident")
    _tamper(artifact)
    event_id = _any_scored_event(paths)
    with running_server(paths, SPEC, log_predictions=False) as url, httpx.Client(
            base_url=url) as client:
        row = pd.read_parquet(sorted((paths.lake / "raw_events").glob("*.parquet"))[-2]).iloc[0]
        event = {k: v.isoformat() if isinstance(v, pd.Timestamp) else
                 v.item() if hasattr(v, "item") else v for k, v in row.items()}
        meta = client.get(f"/v2/models/{SPEC.model_name}").json()
        tensors = [{"name": t["name"], "datatype": t["datatype"], "shape": [1],
                    "data": [event[t["name"]]]} for t in meta["inputs"]]
        responses = {
            "health": client.get("/health"),
            "score": client.get(f"/scores/{event_id}"),
            "entity": client.get(f"/entities/card_id/{_any_card(paths)}"),
            "predict": client.post("/predict", json=event),
            "oip": client.post(f"/v2/models/{SPEC.model_name}/infer",
                               json={"inputs": tensors}),
            "ready": client.get("/v2/health/ready"),
        }
        for route, r in responses.items():
            assert r.status_code == 503, (route, r.status_code, r.text)
            assert "fraud-v2" not in r.headers.get("x-model-version", ""), route
        for route in ("health", "score", "entity", "predict"):
            body = responses[route].json()
            assert body["error"] == "no_servable_model", route
            assert "kill switch is on" in body["detail"] and "fraud-v1" in body["detail"]
        assert responses["oip"].json()["error"].startswith("no_servable_model")


def test_a_failing_champion_falls_back_only_to_the_designated_previous(world):
    """Without the kill switch, a champion that fails verification in a fresh process is
    replaced by ``previous`` (the rollback target, verified), marked degraded; a version the
    control plane no longer designates never answers."""
    paths, registry, _, _ = world
    champion = registry.get_model("fraud-v2")
    _tamper(paths.root / champion["artifact_path"])
    service = ScoringService(Workspace(paths, SPEC)).start()
    try:
        r = service.resolve()
        assert (r.version, r.role) == ("fraud-v1", "last_good") and "fraud-v2" in r.degraded
        _tamper(paths.root / registry.get_model("fraud-v1")["artifact_path"])
        fresh = ScoringService(Workspace(paths, SPEC)).start()
        try:
            with pytest.raises(NoServableModel, match="fraud-v2"):
                fresh.resolve()
        finally:
            fresh.close()
    finally:
        service.close()


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


def _any_card(paths) -> int:
    df = pd.read_parquet(sorted((paths.lake / "batch_scores").glob("*.parquet"))[-2])
    return int(df["card_id"].iloc[0])
