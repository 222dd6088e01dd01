"""Issue 15 item 5: ``kill -9`` of ``ml-assets drill rollback`` after it flipped the kill switch.
The flip carries a lease; past it every reader flags it (``/health`` degraded, ``drill_recency``
and ``rollback_readiness`` fail) and ``drill_lease_sensor`` reverts it, audited as
``lease-expiry``, recording the drill as failed."""

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime

import dagster as dg
import httpx

from ml_assets.definitions import build_definitions
from ml_assets.lib.core.registry import Registry
from ml_assets.lib.release import rollback
from ml_assets.serving.app import running_server
from ml_assets_tests.fixtures.reliability_world import child_env
from ml_assets_tests.fixtures.serving_world import SPEC, world_copy


def _wait(predicate, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_K08_kill9_of_a_drill_after_its_flip_is_flagged_then_reverted(tmp_path):
    paths = world_copy(tmp_path / "w")
    # The drill talks to a server over a copy of the world: it never sees the flip, so the
    # drill sits in its wait for `previous` after flipping - a deterministic point to kill it.
    decoy = world_copy(tmp_path / "decoy")
    registry = Registry(paths.control_db)
    with running_server(decoy, SPEC, log_predictions=False) as decoy_url:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ml_assets.cli.main", "--data-dir", str(paths.root), "drill",
             "rollback", "--url", decoy_url, "--actor", "drill-bot", "--lease-seconds", "2"],
            env=child_env(paths.root), start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            lease = _wait(registry.drill_lease, 120, "the drill's flip")
            os.killpg(proc.pid, signal.SIGKILL)
        finally:
            proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert registry.get_setting("kill_switch") == "on"  # the flip outlived its drill
    opened = datetime.fromisoformat(lease["opened_at"])
    assert not rollback.drill_flip(registry, now=opened)["expired"]  # inside its lease
    with running_server(paths, SPEC, log_predictions=False) as url, httpx.Client(
            base_url=url, timeout=10) as client:
        _wait(lambda: rollback.drill_flip(registry)["expired"], 10, "the lease to expire")
        health = client.get("/health").json()
        assert health["status"] == "degraded" and health["kill_switch"] is True
        assert health["drill_flip"]["expired"] and health["drill_flip"]["actor"] == "drill-bot"
        assert health["model_version"] == "fraud-v1"  # still on previous, but not silently

        status = rollback.drill_status(registry, SPEC)
        assert not status["ok"] and "EXPIRED" in status["reason"]
        defs = build_definitions(SPEC, str(paths.root))
        keys = [dg.AssetCheckKey(dg.AssetKey("rollback_drills"), n)
                for n in ("drill_recency", "rollback_readiness")]
        checks = dg.materialize([*defs.assets, *defs.asset_checks], resources=defs.resources,
                                selection=dg.AssetSelection.checks(*keys), raise_on_error=False,
                                instance=dg.DagsterInstance.ephemeral())
        evaluations = checks.get_asset_check_evaluations()
        assert len(evaluations) == 2 and not any(e.passed for e in evaluations)
        assert all("drill-bot" in e.description for e in evaluations)

        sensor = defs.resolve_sensor_def("drill_lease_sensor")
        with dg.build_sensor_context(resources=defs.resources) as ctx:
            assert "reverted" in sensor(ctx).skip_message
        assert registry.get_setting("kill_switch") == "off" and registry.drill_lease() is None
        close = next(a for a in registry.audit_log(limit=5) if a["action"] == "drill:flip-close")
        assert close["actor"] == "lease-expiry"
        drill = registry.drills(SPEC.model_name, limit=1)[0]
        assert not drill["ok"] and drill["actor"] == "drill-bot"
        assert "EXPIRED" in drill["detail"]["errors"][0]
        health = _wait(lambda: (h := client.get("/health").json())["model_version"] == "fraud-v2"
                       and h, 10, "the champion to answer again")
        assert health["status"] == "ok" and health["drill_flip"] is None
    with running_server(paths, SPEC, log_predictions=False) as url:  # drills work again
        assert rollback.run_rollback_drill(registry, paths, SPEC, url, "drill-bot")["ok"]


def test_a_person_flipping_the_switch_during_a_drill_owns_it(tmp_path):
    """The lease never reverts a person's decision: a manual kill-switch change clears it."""
    paths = world_copy(tmp_path / "w")
    registry = Registry(paths.control_db)
    lease = {"kind": "rollback", "model_name": SPEC.model_name, "actor": "drill-bot", "pid": 1,
             "host": "h", "opened_at": "2026-01-01T00:00:00+00:00",
             "expires_at": "2026-01-01T00:05:00+00:00", "champion": "fraud-v2",
             "previous": "fraud-v1", "restore": {"kill_switch": "off"}}
    assert registry.open_drill_flip(lease, {"kill_switch": "on"}, "drill-bot", "rollback drill")
    assert not registry.open_drill_flip(lease, {"kill_switch": "on"}, "x", "second drill")
    rollback.set_kill_switch(registry, paths, SPEC, True, "oncall", "real incident")
    assert registry.drill_lease() is None
    assert rollback.expire_drill_flip(registry, now=datetime.now(UTC)) is None
    assert registry.get_setting("kill_switch") == "on"
