"""The control plane's integrity (docs/reliability.md, rows Z*): a damaged, emptied or stale
``control.sqlite`` is refused with the restore command, never silently started afresh or read
stale; model rows and the audit log cannot be rewritten unnoticed, and a model file an attacker
wrote is never unpickled into running code."""

import hashlib
import json
import os
import pickle
import random
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from ml_assets.cli.main import main
from ml_assets.lib.core import artifacts
from ml_assets.lib.core.artifacts import ArtifactIntegrityError
from ml_assets.lib.core.paths import DataPaths
from ml_assets.lib.core.registry import ControlPlaneDamaged, Registry, RegistryError, integrity
from ml_assets.lib.core.workspace import Workspace
from ml_assets.lib.serving.models import ModelCache
from ml_assets.specs.fraud import FRAUD_SPEC


def _cli(data_dir: Path, *argv: str) -> int:
    return main(["--data-dir", str(data_dir), *argv])


def _holder(db: Path) -> subprocess.Popen:
    """A process keeping a connection open (a running server), so commits stay in the WAL."""
    code = (f"import sqlite3, time; c = sqlite3.connect({str(db)!r}); "
            "c.execute('SELECT count(*) FROM sqlite_master').fetchall(); "
            "print('ready', flush=True); time.sleep(120)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    return proc


# -- item 8: damaged or missing control plane -----------------------------------------------
@pytest.mark.parametrize("damage", ["truncated_to_0_bytes", "deleted", "overwritten"])
def test_Z01_empty_or_missing_control_plane_is_refused_not_started_afresh(tmp_path, capsys,
                                                                          damage):
    data = tmp_path / "data"
    registry = Registry(data / "control.sqlite")  # a first run creates it (and its head file)
    registry.set_setting("kill_switch", "on", "oncall-bob", "incident 42")
    db = registry.path
    db.with_name("control.sqlite-wal").unlink(missing_ok=True)
    if damage == "truncated_to_0_bytes":
        db.write_bytes(b"")
    elif damage == "deleted":
        db.unlink()
    else:
        db.write_bytes(b"not a database at all " * 200)
    before = db.read_bytes() if db.exists() else None
    with pytest.raises(ControlPlaneDamaged) as exc:
        Registry(db)
    assert str(db) in str(exc.value) and "ml-assets control restore" in str(exc.value)
    assert _cli(data, "kill-switch", "off", "--reason", "x", "--actor", "oncall-bob") == 1
    assert _cli(data, "control", "verify") == 1
    err = capsys.readouterr().err
    assert str(db) in err and "ml-assets control restore" in err, err
    # nothing was created in its place: the file is exactly as damaged as before
    assert (db.read_bytes() if db.exists() else None) == before


@pytest.mark.parametrize("damage", ["whole_wal", "frames", "commit_frame_tail"])
def test_Z02_garbage_over_the_wal_after_a_committed_kill_switch_is_refused(tmp_path, damage):
    db = tmp_path / "data" / "control.sqlite"
    registry = Registry(db)
    registry.set_setting("kill_switch", "off", "oncall-bob", "normal operation")
    holder = _holder(db)
    registry.set_setting("kill_switch", "on", "oncall-bob", "incident 42")  # committed
    os.kill(holder.pid, signal.SIGKILL)  # the server dies: nobody checkpoints the WAL
    holder.wait()
    wal = db.with_name("control.sqlite-wal")
    data = bytearray(wal.read_bytes())
    rnd = random.Random(7)
    start = {"whole_wal": 0, "frames": 32, "commit_frame_tail": len(data) - 200}[damage]
    data[start:] = bytes(rnd.randrange(256) for _ in range(len(data) - start))
    wal.write_bytes(bytes(data))

    for attempt in ("first open", "second open"):  # refused for good, not only once
        try:
            state = Registry(db).get_setting("kill_switch")
        except ControlPlaneDamaged as exc:
            assert "ml-assets control restore" in str(exc), attempt
        else:
            assert state == "on", f"{attempt}: the kill switch silently reads {state!r}"


def test_Z03_backup_damage_restore_round_trip_through_the_cli(tmp_path, capsys):
    data = tmp_path / "data"
    registry = Registry(data / "control.sqlite")
    registry.set_setting("kill_switch", "on", "oncall-bob", "incident 42")
    backup = tmp_path / "backups" / "control-1.sqlite"
    assert _cli(data, "control", "backup", str(backup), "--json") == 0
    made = json.loads(capsys.readouterr().out)
    assert made["ok"] and made["audit_id"] == 1 and Path(made["file"]) == backup.resolve()
    # a healthy control plane is not overwritten by accident
    assert _cli(data, "control", "restore", str(backup), "--actor", "ops") == 1
    assert "--force" in capsys.readouterr().err
    # a bad backup restores nothing
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"\0" * 4096)
    registry.path.write_bytes(b"")
    assert _cli(data, "control", "restore", str(junk), "--actor", "ops") == 1
    assert registry.path.stat().st_size == 0
    assert _cli(data, "control", "verify") == 1
    capsys.readouterr()

    assert _cli(data, "control", "restore", str(backup), "--actor", "ops",
                "--reason", "control.sqlite truncated", "--json") == 0
    restored = json.loads(capsys.readouterr().out)
    assert restored["ok"] and restored["audit_id"] == 1
    assert _cli(data, "control", "verify") == 0
    after = Registry(registry.path)
    assert after.get_setting("kill_switch") == "on"
    entry = after.audit_log(1)[0]
    assert (entry["actor"], entry["action"], entry["reason"]) == (
        "ops", "control:restore", "control.sqlite truncated")
    assert entry["detail"]["sha256"] == restored["sha256"]
    assert "0 bytes" in entry["detail"]["replaced"]


# -- item 7: rows and artifacts rewritten by someone with write access to the data dir ------
class _Exploit:
    """What an attacker pickles: unpickling it runs a shell command creating a canary file."""

    def __init__(self, canary: Path):
        self.canary = canary

    def __reduce__(self):
        return os.system, (f"touch {self.canary}",)


def _small_world(tmp_path: Path, key_file: Path | None) -> tuple[Workspace, str]:
    paths = DataPaths(tmp_path / "data")
    ws = Workspace(paths, FRAUD_SPEC, signing_key_file=key_file)
    x = np.arange(20, dtype=float).reshape(-1, 1)
    model = LogisticRegression().fit(x, (x[:, 0] > 9).astype(int))
    sha, path = artifacts.store_model(paths.artifacts, {"model": model, "feature_names": ["x"]})
    version, _ = ws.registry.register_model(
        "fraud", {"artifact_sha256": sha, "artifact_path": str(path.relative_to(paths.root)),
                  "dataset_sha256": "d" * 64}, "trainer")
    return ws, version


def _plant(ws: Workspace, version: str, canary: Path, rechain: bool) -> None:
    """Replace the artifact and rewrite its models row with sqlite3, as an attacker would."""
    evil = pickle.dumps({"model": _Exploit(canary)})
    sha = hashlib.sha256(evil).hexdigest()
    rel = f"artifacts/{sha}.pkl"
    (ws.paths.root / rel).write_bytes(evil)
    con = sqlite3.connect(ws.paths.control_db)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        con.execute("UPDATE models SET artifact_sha256=? WHERE version=?", (sha, version))
    row = con.execute("SELECT card FROM models WHERE version=?", (version,)).fetchone()
    card = {**json.loads(row[0]), "artifact_sha256": sha, "artifact_path": rel}
    con.executescript("DROP TRIGGER models_no_update; DROP TRIGGER audit_no_update;")
    con.execute("UPDATE models SET artifact_sha256=?, artifact_path=?, card=? WHERE version=?",
                (sha, rel, json.dumps(card, sort_keys=True), version))
    if rechain:  # rewrite the audited registration too and recompute the whole chain + head
        rows = con.execute("SELECT id, ts, actor, action, target, reason, detail FROM audit "
                           "ORDER BY id").fetchall()
        prev = integrity.GENESIS
        for r in rows:
            detail = json.loads(r[6])
            if r[3] == "register" and r[4] == version:
                detail.update(artifact_sha256=sha, artifact_path=rel)
            r = (*r[:6], json.dumps(detail, sort_keys=True))
            h = integrity.row_hash(prev, r)
            con.execute("UPDATE audit SET detail=?, prev_hash=?, row_hash=? WHERE id=?",
                        (r[6], prev, h, r[0]))
            prev = h
        integrity.write_head(ws.paths.control_db, rows[-1][0], prev)
    con.commit()
    con.close()


@pytest.mark.parametrize("attack", ["row_only", "row_audit_and_chain"])
@pytest.mark.parametrize("keyed", [False, True], ids=["no_key", "signing_key"])
def test_Z04_replaced_artifact_and_rewritten_row_is_never_unpickled(tmp_path, attack, keyed):
    key_file = None
    if keyed:
        key_file = tmp_path / "secrets" / "signing.key"
        key_file.parent.mkdir()
        key_file.write_bytes(os.urandom(32).hex().encode())
    ws, version = _small_world(tmp_path, key_file)
    assert ws.registry.get_model(version)["version"] == version  # the honest model loads
    canary = tmp_path / "PWNED"
    _plant(ws, version, canary, rechain=attack == "row_audit_and_chain")

    fresh = Workspace(ws.paths, FRAUD_SPEC, signing_key_file=key_file)
    try:
        registry = fresh.registry
        card = registry.get_model(version)
    except RegistryError as exc:  # rewritten row, broken chain or bad signature
        assert version in str(exc) or "audit" in str(exc), str(exc)
        registry = None
    else:
        # only without a key can an attacker who recomputed the chain get this far; the
        # loader still refuses the pickle's os.system before calling it
        assert not keyed and attack == "row_audit_and_chain"
        with pytest.raises(ArtifactIntegrityError, match="posix.system|os.system"):
            artifacts.load_model(ws.paths.root / card["artifact_path"], card["artifact_sha256"])
    if registry is not None:
        bundle, why = ModelCache(ws.paths, registry).get(version)  # the serving path
        assert bundle is None and why
    assert not canary.exists(), "the attacker's pickle ran"


def test_Z05_signing_key_is_required_to_verify_once_configured(tmp_path, capsys):
    ws, version = _small_world(tmp_path, None)  # registered before a key existed
    inside = ws.paths.root / "signing.key"
    inside.write_bytes(b"k" * 40)
    with pytest.raises(RegistryError, match="inside the data directory"):
        Workspace(ws.paths, FRAUD_SPEC, signing_key_file=inside).registry  # noqa: B018
    key_file = tmp_path / "signing.key"
    key_file.write_bytes(b"k" * 40)
    keyed = Workspace(ws.paths, FRAUD_SPEC, signing_key_file=key_file)
    with pytest.raises(RegistryError, match="not signed"):
        keyed.registry.get_model(version)
    os.environ["ML_ASSETS_SIGNING_KEY"] = str(key_file)
    try:
        assert _cli(ws.paths.root, "control", "sign", "--actor", "sec-team") == 0
    finally:
        del os.environ["ML_ASSETS_SIGNING_KEY"]
    capsys.readouterr()
    assert Workspace(ws.paths, FRAUD_SPEC, signing_key_file=key_file).registry.get_model(
        version)["version"] == version
    audit = keyed.registry.audit_log(1)[0]
    assert (audit["actor"], audit["action"], audit["detail"]["versions"]) == (
        "sec-team", "sign", [version])
