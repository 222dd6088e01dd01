"""What only the PostgreSQL control plane needs proving: the database refuses TRUNCATE too, a
superuser's rewrite around the triggers is caught by the audit chain, servers opening a new
database together do not race on its schema, and serving fails closed (503) while the database
is unreachable, then recovers without a restart."""

import json
import multiprocessing
import threading

import psycopg2
import pytest

from ml_assets.cli.main import main
from ml_assets.lib.core.registry import (
    ControlPlaneDamaged,
    ControlPlaneUnavailable,
    Registry,
    RegistryError,
)
from ml_assets.lib.core.workspace import CONTROL_URL_ENV, control_url_from_env
from ml_assets.lib.release.rollback import KILL_SWITCH
from ml_assets.lib.serving.read_path import ControlReader, NoServableModel
from ml_assets_tests.fixtures.control_plane import ControlPlaneUnderTest


def _admin(server, sql: str) -> None:
    """One statement as the superuser on the server's maintenance database."""
    ControlPlaneUnderTest("postgres", server.url(), psycopg2.Error).execute(sql)


def test_truncate_is_refused_and_a_rewrite_around_the_triggers_is_caught(postgres_database):
    url = postgres_database.url
    reg = Registry(url)
    reg.set_setting(KILL_SWITCH, "on", "alice", "incident")
    reg.set_setting(KILL_SWITCH, "off", "alice", "resolved")
    con = psycopg2.connect(url)
    con.autocommit = True
    with con.cursor() as cur:
        with pytest.raises(psycopg2.Error, match="audit log is append-only"):
            cur.execute("TRUNCATE audit")
        # the owner can switch triggers off; the hash chain still shows the rewrite
        cur.execute("ALTER TABLE audit DISABLE TRIGGER audit_no_update")
        cur.execute("UPDATE audit SET actor = 'mallory' WHERE action = 'set:kill_switch'")
    con.close()
    with pytest.raises(ControlPlaneDamaged, match="does not match the audit chain"):
        Registry(url)


def test_servers_opening_a_new_database_together_share_one_schema(postgres_database):
    barrier, errors = threading.Barrier(4), []

    def open_one() -> None:
        barrier.wait()
        try:
            Registry(postgres_database.url).set_setting("k", "v", "alice", "first open")
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert [e["action"] for e in Registry(postgres_database.url).audit_log()] == ["set:k"] * 4


def test_serving_fails_closed_while_the_database_is_unreachable(postgres_server,
                                                               postgres_database):
    name = postgres_database.name
    reg = Registry(postgres_database.url)
    reader = ControlReader(reg, "fraud")
    reg.set_setting(KILL_SWITCH, "on", "alice", "incident")
    assert reader.read()[1] is True
    _admin(postgres_server, f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
    _admin(postgres_server, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            f"WHERE datname = '{name}'")
    try:
        for _ in range(2):  # the broken connection, then a refused reconnect
            with pytest.raises(NoServableModel, match="unreachable.*refusing to serve"):
                reader.read()
    finally:
        _admin(postgres_server, f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
    reg.set_setting(KILL_SWITCH, "off", "alice", "resolved")  # the writer reconnects too
    assert reader.read()[1] is False


def test_an_unreachable_url_is_named_without_its_password(postgres_server):
    url = postgres_server.url().replace(f":{postgres_server.port}/", ":1/")
    with pytest.raises(ControlPlaneUnavailable, match=r"unreachable") as caught:
        Registry(url)
    assert postgres_server.password not in str(caught.value)
    assert ":***@127.0.0.1:1/" in str(caught.value)


def test_the_control_url_must_be_postgresql(monkeypatch):
    monkeypatch.setenv(CONTROL_URL_ENV, "mysql://u:p@host/db")
    with pytest.raises(RegistryError, match="must be a postgresql:// URL"):
        control_url_from_env()
    monkeypatch.setenv(CONTROL_URL_ENV, "postgresql+psycopg2://u:p@127.0.0.1/db")
    assert control_url_from_env() == "postgresql+psycopg2://u:p@127.0.0.1/db"


def test_cli_verify_reads_postgres_and_file_backups_are_refused(postgres_database, tmp_path,
                                                                monkeypatch, capsys):
    monkeypatch.setenv(CONTROL_URL_ENV, postgres_database.url)
    Registry(postgres_database.url).set_setting(KILL_SWITCH, "on", "alice", "incident")
    assert main(["--data-dir", str(tmp_path), "control", "verify", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["audit_head"] == 1 and postgres_database.name in out["control_plane"]
    assert "***" in out["control_plane"] and not (tmp_path / "control.sqlite").exists()
    assert main(["--data-dir", str(tmp_path), "control", "backup", str(tmp_path / "b")]) == 1
    assert "use pg_dump" in capsys.readouterr().err


def _child_flips(registry) -> None:
    registry.set_setting(KILL_SWITCH, "on", "alice", "from a forked worker")
    assert registry.get_setting(KILL_SWITCH) == "on"


def test_a_forked_worker_opens_its_own_sessions_and_leaves_the_parents(postgres_database):
    """Run workers fork from a process that already holds the registry's connections."""
    reg = Registry(postgres_database.url)
    reg.set_setting(KILL_SWITCH, "off", "alice", "start")

    def session() -> int:
        with reg.backend.read() as con:
            return con.execute("SELECT pg_backend_pid()").fetchone()[0]

    before = session()
    child = multiprocessing.get_context("fork").Process(target=_child_flips, args=(reg,))
    child.start()
    child.join(60)
    assert child.exitcode == 0
    assert session() == before  # the parent's session survived the child
    assert reg.get_setting(KILL_SWITCH) == "on"
