"""Control plane basics, on SQLite and PostgreSQL: versions, first-model-is-champion,
idempotent registration, and an audit log that cannot be rewritten."""

import re
from pathlib import Path

import pytest

import ml_assets
from ml_assets.lib.core.registry import Registry, RegistryError


def card(sha: str) -> dict:
    return {"artifact_sha256": sha, "artifact_path": f"artifacts/{sha}.pkl", "dataset_sha256": "d" * 64}


def test_versions_aliases_and_idempotent_registration(control_plane):
    reg = Registry(control_plane.location)
    assert reg.register_model("m", card("a" * 64), actor="alice") == ("m-v1", True)
    assert reg.aliases("m")["champion"] == "m-v1"
    assert reg.register_model("m", card("b" * 64), actor="alice") == ("m-v2", True)
    assert reg.aliases("m") == {"champion": "m-v1", "challenger": "m-v2", "previous": None}
    # the same artifact registers once
    assert reg.register_model("m", card("a" * 64), actor="alice") == ("m-v1", False)
    assert [m["version"] for m in reg.list_models("m")] == ["m-v1", "m-v2"]
    assert reg.get_model("m-v2")["artifact_sha256"] == "b" * 64


def test_unknown_version_and_missing_identity_are_refused(control_plane):
    reg = Registry(control_plane.location)
    with pytest.raises(RegistryError, match="no model version"):
        reg.get_model("m-v9")
    with pytest.raises(RegistryError, match="needs an identity"):
        reg.set_setting("kill_switch", "on", actor="", reason="test")
    assert reg.get_setting("kill_switch", "off") == "off"  # the refused change left no trace


def test_audit_log_is_append_only(control_plane):
    reg = Registry(control_plane.location)
    reg.set_setting("kill_switch", "on", actor="bob", reason="drill")
    entry = reg.audit_log()[0]
    assert (entry["actor"], entry["action"], entry["reason"]) == ("bob", "set:kill_switch", "drill")
    with pytest.raises(control_plane.error, match="append-only"):
        control_plane.execute("UPDATE audit SET actor = 'mallory'")
    with pytest.raises(control_plane.error, match="append-only"):
        control_plane.execute("DELETE FROM audit")


def test_drill_results_are_registry_records_and_append_only(control_plane):
    reg = Registry(control_plane.location)
    assert reg.latest_drill_result("reproduce") is None
    reg.record_drill_result("reproduce", "m-v1", False, {"seconds": 3.0})
    reg.record_drill_result("reproduce", "m-v2", True, {"seconds": 2.0})
    latest = reg.latest_drill_result("reproduce")
    assert (latest["subject"], latest["ok"], latest["seconds"]) == ("m-v2", True, 2.0)
    assert reg.latest_drill_result("reproduce", "m-v1")["ok"] is False
    with pytest.raises(control_plane.error, match="append-only"):
        control_plane.execute("UPDATE drill_results SET ok = 1")


def test_landing_ledger_keeps_the_first_checksum(control_plane):
    reg = Registry(control_plane.location)
    reg.record_landing_checksums([("landing/a.parquet", "1" * 64, 10)], actor="ingest")
    reg.record_landing_checksums([("landing/a.parquet", "2" * 64, 11),
                                  ("landing/b.parquet", "3" * 64, 12)], actor="ingest")
    ledger = reg.landing_checksums()
    assert {p: r["sha256"][0] for p, r in ledger.items()} == {"landing/a.parquet": "1",
                                                              "landing/b.parquet": "3"}
    assert list(reg.landing_checksums(["landing/b.parquet"])) == ["landing/b.parquet"]


def test_serving_snapshot_sees_a_flip_on_the_next_read(control_plane):
    reg = Registry(control_plane.location)
    reg.register_model("m", card("a" * 64), actor="alice")
    reader = reg.snapshot_reader("m", ("kill_switch", "rollout"))
    assert reader.read() == ({"champion": "m-v1"}, {})
    reg.set_setting("kill_switch", "on", actor="bob", reason="incident")
    reg.set_setting("other", "x", actor="bob", reason="not asked for")
    assert reader.read() == ({"champion": "m-v1"}, {"kill_switch": "on"})


def test_the_control_plane_has_one_door():
    """Only lib/core/registry/ talks to SQLite or PostgreSQL; a fifth door to the control
    plane cannot reappear."""
    package = Path(ml_assets.__file__).parent
    door = package / "lib" / "core" / "registry"
    driver = re.compile(r"\bsqlite3\b|^\s*(import|from) psycopg2\b", re.M)
    offenders = [str(p.relative_to(package)) for p in package.rglob("*.py")
                 if door not in p.parents and driver.search(p.read_text())]
    assert offenders == [], f"only lib/core/registry/ may open the control plane: {offenders}"


def test_a_registry_is_built_only_by_the_workspace():
    """Entry points build one Workspace and pass its registry down (schema applied once)."""
    package = Path(ml_assets.__file__).parent
    allowed = {package / "lib" / "core" / "workspace.py"}
    offenders = [str(p.relative_to(package)) for p in package.rglob("*.py")
                 if p not in allowed and re.search(r"(?<!class )\bRegistry\(", p.read_text())]
    assert offenders == [], f"build the registry via Workspace.registry: {offenders}"
