"""Promotion with the rollback-readiness rule, rollback, the audit trail, and the rollback
drill through the real HTTP path (library, CLI and Dagster job + checks), with the control plane
on SQLite and on PostgreSQL (``ML_ASSETS_CONTROL_URL``, so the CLI, the server and the Dagster
job open it too)."""

import dataclasses
import json
import threading
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from ml_assets.cli import main as cli
from ml_assets.definitions import build_definitions
from ml_assets.lib.core.registry import Registry, RegistryError, integrity
from ml_assets.lib.core.workspace import CONTROL_URL_ENV
from ml_assets.lib.release import rollback
from ml_assets.serving.app import running_server
from ml_assets_tests.fixtures.control_plane import copy_control_plane
from ml_assets_tests.fixtures.serving_world import SPEC, world_copy


@pytest.fixture
def world(tmp_path, control_plane, monkeypatch):
    paths = world_copy(tmp_path / "w")
    if control_plane.backend == "sqlite":
        return paths, Registry(paths.control_db)
    registry = Registry(control_plane.location)
    copy_control_plane(Registry(paths.control_db), registry, SPEC.model_name)
    for stale in (paths.control_db, integrity.head_path(paths.control_db)):
        stale.unlink()  # nothing may fall back to the world's SQLite file
    monkeypatch.setenv(CONTROL_URL_ENV, control_plane.location)
    return paths, registry


@pytest.fixture
def world_control(world, control_plane):
    """The world's control plane for raw statements (around the registry)."""
    if control_plane.backend == "sqlite":
        return dataclasses.replace(control_plane, location=world[0].control_db)
    return control_plane


def _artifact(paths, registry, version):
    return paths.root / registry.get_model(version)["artifact_path"]


def test_promote_moves_champion_to_previous_in_one_audited_change(world):
    paths, registry = world
    aliases = rollback.promote(registry, paths, SPEC, "fraud-v3", "alice", "shadow signed off")
    assert aliases == {"champion": "fraud-v3", "challenger": None, "previous": "fraud-v2"}
    entry = registry.audit_log(limit=1)[0]
    assert (entry["actor"], entry["action"], entry["target"], entry["reason"]) == (
        "alice", "promote", "fraud-v3", "shadow signed off")
    assert entry["detail"]["before"]["champion"] == "fraud-v2" and entry["ts"]


def test_deleted_artifact_of_the_model_to_be_replaced_makes_promotion_refuse(world):
    paths, registry = world
    _artifact(paths, registry, "fraud-v2").unlink()  # the champion, i.e. the next previous
    with pytest.raises(rollback.RollbackRefused, match="fraud-v2.*not rollback-ready.*missing"):
        rollback.promote(registry, paths, SPEC, "fraud-v3", "alice", "ship it")
    assert registry.aliases(SPEC.model_name)["champion"] == "fraud-v2"  # nothing changed


def test_deleted_previous_artifact_fails_readiness_check_rollback_and_kill_switch(world):
    paths, registry = world
    assert rollback.rollback_readiness(registry, paths, SPEC).ok
    _artifact(paths, registry, "fraud-v1").unlink()
    ready = rollback.rollback_readiness(registry, paths, SPEC)
    assert not ready.ok and "missing" in ready.reasons[0]
    with pytest.raises(rollback.RollbackRefused, match="fraud-v1.*not servable"):
        rollback.rollback(registry, paths, SPEC, "bob", "incident", "fraud-v2")
    with pytest.raises(rollback.RollbackRefused, match="kill switch refused"):
        rollback.set_kill_switch(registry, paths, SPEC, True, "bob", "incident")
    with pytest.raises(rollback.RollbackRefused, match="candidate fraud-v1.*missing"):
        rollback.promote(registry, paths, SPEC, "fraud-v1", "bob", "go back")
    # ... and the Dagster readiness check fails with the reason.
    result = _run_checks(paths, ["rollback_readiness"])
    evaluation = result.get_asset_check_evaluations()[0]
    assert not evaluation.passed and "missing" in evaluation.description


def test_features_no_longer_computable_make_a_model_not_ready(world):
    paths, registry = world
    changed = dataclasses.replace(SPEC, features=tuple(
        dataclasses.replace(f, window="2h") if f.name == "card_tx_count_1h" else f
        for f in SPEC.features))
    ready = rollback.readiness(registry, paths, changed, "fraud-v1")
    assert not ready.ok and "card_tx_count_1h" in ready.reasons[0]


def test_rollback_swaps_champion_and_previous_and_resets_the_switch(world):
    paths, registry = world
    rollback.set_kill_switch(registry, paths, SPEC, True, "carol", "bad scores")
    aliases = rollback.rollback(registry, paths, SPEC, "carol", "fraud-v2 regressed", "fraud-v2")
    assert (aliases["champion"], aliases["previous"]) == ("fraud-v1", "fraud-v2")
    assert registry.get_setting("kill_switch") == "off"
    actions = [e["action"] for e in registry.audit_log(limit=2)]
    assert actions == ["rollback", "set:kill_switch"]


def test_concurrent_rollbacks_of_the_same_champion_roll_back_once(world, world_control):
    """Two on-call engineers roll back the bad fraud-v2 at the same moment: one rollback wins,
    the other is refused. Reading the champion at call time let the later one swap fraud-v2
    back in; each caller now names the champion it decided to roll back."""
    paths, registry = world
    start = threading.Barrier(4)
    outcomes = []

    def on_call(actor):
        own = Registry(world_control.location)  # each operator's own connection
        start.wait()
        try:
            outcomes.append(rollback.rollback(own, paths, SPEC, actor, "v2 bad", "fraud-v2"))
        except RegistryError as exc:  # refused, or aborted by the compare-and-swap
            outcomes.append(exc)

    threads = [threading.Thread(target=on_call, args=(actor,))
               for actor in ("bob", "carol", "dave", "erin")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    won = [o for o in outcomes if isinstance(o, dict)]
    assert len(outcomes) == 4 and len(won) == 1, outcomes
    assert all("changed" in str(o) for o in outcomes if not isinstance(o, dict))
    assert registry.aliases(SPEC.model_name)["champion"] == "fraud-v1"
    assert [e["action"] for e in registry.audit_log(limit=10)].count("rollback") == 1
    with registry.backend.read() as con:
        assert integrity.verify_chain(con, registry.backend.label, compare_head=False)[0] > 0


def test_a_rollback_from_a_champion_that_is_gone_is_refused_and_names_the_champion(world, capsys):
    paths, registry = world
    base = ["--data-dir", str(paths.root), "rollback", "--actor", "oncall-bob"]
    assert cli.main([*base, "--from", "fraud-v2", "--reason", "INC-1"]) == 0
    assert cli.main([*base, "--from", "fraud-v2", "--reason", "INC-1 again"]) == 1
    assert "champion is now fraud-v1" in capsys.readouterr().err
    assert registry.aliases(SPEC.model_name)["champion"] == "fraud-v1"


def test_every_change_needs_an_actor_and_a_reason_and_the_audit_log_is_append_only(
        world, world_control):
    paths, registry = world
    with pytest.raises(rollback.RollbackRefused, match="reason"):
        rollback.set_kill_switch(registry, paths, SPEC, True, "dave", "")
    with pytest.raises(Exception, match="identity"):
        rollback.set_kill_switch(registry, paths, SPEC, False, "", "no actor")
    with pytest.raises(world_control.error, match="append-only"):
        world_control.execute("UPDATE audit SET actor = 'mallory'")
    with pytest.raises(world_control.error, match="append-only"):
        world_control.execute("DELETE FROM audit")


def test_drill_through_http_is_recorded_and_meets_the_time_to_effect(world):
    paths, registry = world
    assert not rollback.drill_status(registry, SPEC)["ok"]  # never drilled
    with running_server(paths, SPEC, log_predictions=False) as url:
        result = rollback.run_rollback_drill(registry, paths, SPEC, url, "erin")
    assert result["ok"], result["errors"]
    assert result["time_to_effect_ms"] < 1000
    assert (result["champion_version"], result["previous_version"]) == ("fraud-v2", "fraud-v1")
    assert registry.get_setting("kill_switch") == "off"  # flipped back
    drill = registry.drills(SPEC.model_name, limit=1)[0]
    assert drill["ok"] and drill["actor"] == "erin" and drill["time_to_effect_ms"] > 0
    assert rollback.drill_status(registry, SPEC)["ok"]
    later = datetime.now(UTC) + timedelta(days=91)
    stale = rollback.drill_status(registry, SPEC, now=later)
    assert not stale["ok"] and "days old" in stale["reason"]


def test_a_drill_against_a_dead_server_fails_is_recorded_and_restores_the_switch(world):
    paths, registry = world
    with running_server(paths, SPEC, log_predictions=False) as url:
        pass  # the server is gone now
    result = rollback.run_rollback_drill(registry, paths, SPEC, url, "erin", timeout_s=1)
    assert not result["ok"] and result["errors"]
    assert registry.get_setting("kill_switch", "off") == "off"
    assert not registry.drills(SPEC.model_name, limit=1)[0]["ok"]
    assert not rollback.drill_status(registry, SPEC)["ok"]


def test_cli_drill_rollback_json(world, capsys):
    paths, _ = world
    code = cli.main(["--data-dir", str(paths.root), "drill", "rollback", "--json",
                     "--actor", "frank"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["ok"] is True
    assert out["time_to_effect_ms"] < 1000
    assert (out["champion_version"], out["previous_version"]) == ("fraud-v2", "fraud-v1")


def test_cli_refusals_explain_why_and_exit_1(world, capsys):
    paths, registry = world
    _artifact(paths, registry, "fraud-v2").unlink()
    code = cli.main(["--data-dir", str(paths.root), "promote", "fraud-v3", "--json",
                     "--actor", "alice"])
    out = json.loads(capsys.readouterr().out)
    assert code == 1 and out["ok"] is False and "missing" in out["error"]


def _run_checks(paths, names: list[str]) -> dg.ExecuteInProcessResult:
    defs = build_definitions(SPEC, str(paths.root))
    keys = [dg.AssetCheckKey(dg.AssetKey("rollback_drills"), n) for n in names]
    return dg.materialize([*defs.assets, *defs.asset_checks], resources=defs.resources,
                          selection=dg.AssetSelection.checks(*keys), raise_on_error=False,
                          instance=dg.DagsterInstance.ephemeral())


def test_dagster_drill_job_records_a_drill_and_recency_check_passes(world):
    paths, registry = world
    defs = build_definitions(SPEC, str(paths.root))
    result = defs.resolve_job_def("rollback_drill_job").execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)
    assert result.success
    assert registry.drills(SPEC.model_name, limit=1)[0]["ok"]
    checks = _run_checks(paths, ["drill_recency", "rollback_readiness"])
    assert all(e.passed for e in checks.get_asset_check_evaluations())
    assert len(checks.get_asset_check_evaluations()) == 2
