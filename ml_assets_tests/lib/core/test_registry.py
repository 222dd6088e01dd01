"""Control plane basics: versions, first-model-is-champion, idempotent registration, and an
audit log that cannot be rewritten."""

import sqlite3

import pytest

from ml_assets.lib.core.registry import Registry, RegistryError


def card(sha: str) -> dict:
    return {"artifact_sha256": sha, "artifact_path": f"artifacts/{sha}.pkl", "dataset_sha256": "d" * 64}


def test_versions_aliases_and_idempotent_registration(tmp_path):
    reg = Registry(tmp_path / "control.sqlite")
    assert reg.register_model("m", card("a" * 64), actor="alice") == ("m-v1", True)
    assert reg.aliases("m")["champion"] == "m-v1"
    assert reg.register_model("m", card("b" * 64), actor="alice") == ("m-v2", True)
    assert reg.aliases("m") == {"champion": "m-v1", "challenger": "m-v2", "previous": None}
    # the same artifact registers once
    assert reg.register_model("m", card("a" * 64), actor="alice") == ("m-v1", False)
    assert [m["version"] for m in reg.list_models("m")] == ["m-v1", "m-v2"]
    assert reg.get_model("m-v2")["artifact_sha256"] == "b" * 64


def test_unknown_version_and_missing_identity_are_refused(tmp_path):
    reg = Registry(tmp_path / "control.sqlite")
    with pytest.raises(RegistryError, match="no model version"):
        reg.get_model("m-v9")
    with pytest.raises(RegistryError, match="needs an identity"):
        reg.set_setting("kill_switch", "on", actor="", reason="test")
    assert reg.get_setting("kill_switch", "off") == "off"  # the refused change left no trace


def test_audit_log_is_append_only(tmp_path):
    reg = Registry(tmp_path / "control.sqlite")
    reg.set_setting("kill_switch", "on", actor="bob", reason="drill")
    entry = reg.audit_log()[0]
    assert (entry["actor"], entry["action"], entry["reason"]) == ("bob", "set:kill_switch", "drill")
    con = sqlite3.connect(tmp_path / "control.sqlite")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        con.execute("UPDATE audit SET actor = 'mallory'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        con.execute("DELETE FROM audit")
