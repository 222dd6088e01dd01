"""Integrity and safety (docs/reliability.md, rows X*): artifacts are verified before load,
identifiers are validated before SQL, landing paths cannot leave the data directory, servers
bind 127.0.0.1 by default, and control-plane actions need an identity in the audit log."""

import pathlib
import re
import subprocess
import sys
import time

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ml_assets.cli.main import build_parser
from ml_assets.lib.core.artifacts import ArtifactIntegrityError, dataset_sha256, load_model
from ml_assets.lib.core.catalog import BATCH_SCORES, Catalog
from ml_assets.lib.core.identifiers import SpecError
from ml_assets.lib.core.lake import read_parquet_files
from ml_assets.lib.core.paths import DataPaths
from ml_assets.lib.core.registry import Registry, RegistryError
from ml_assets.lib.core.registry.audit import check_identity
from ml_assets.lib.docs.interface_contract import load_contract
from ml_assets.lib.ingest.contracts import ContractError
from ml_assets.lib.ingest.landing import ingest_events
from ml_assets.lib.release import rollout
from ml_assets.lib.release.authority import NotAuthorized
from ml_assets.lib.release.rollback import (
    RollbackRefused,
    promote,
    readiness,
    rollback,
    run_rollback_drill,
    set_kill_switch,
)
from ml_assets.lib.scoring.batch import load_live_model
from ml_assets.lib.training.splits import assign_splits
from ml_assets.serving import app as serving_app
from ml_assets.specs.fraud import FRAUD_SPEC
from ml_assets_tests.fixtures.reliability_world import (
    HOUR,
    NOW,
    REPO,
    child_env,
    copy_world,
    good_events,
    spec_with,
)

SPEC = FRAUD_SPEC


# -- artifacts ----------------------------------------------------------------------------------
def test_X01_tampered_artifact_is_refused_for_scoring_promotion_and_kill_switch(fraud_world,
                                                                               tmp_path):
    paths = copy_world(fraud_world, tmp_path / "world")
    registry = Registry(paths.control_db)
    previous = registry.get_model(registry.aliases("fraud")["previous"])
    path = paths.root / previous["artifact_path"]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped bit
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactIntegrityError, match="fails verification.*refusing to load"):
        load_live_model(paths, previous)
    assert not readiness(registry, paths, SPEC, previous["version"]).ok
    with pytest.raises(RollbackRefused, match="does not match its registered sha256"):
        set_kill_switch(registry, paths, SPEC, True, actor="alice", reason="incident")
    with pytest.raises(RollbackRefused, match="does not match its registered sha256"):
        promote(registry, paths, SPEC, previous["version"], actor="alice", reason="x")
    path.unlink()
    with pytest.raises(ArtifactIntegrityError, match="is missing"):
        load_model(path, previous["artifact_sha256"])


def test_X02_dataset_sha_is_stable_across_copies_and_changes_with_any_value():
    """Found by this catalogue: tz-aware timestamps were hashed by object address, so the same
    training table got a different SHA in every process (no reproducible dataset SHA)."""
    df = good_events(n=50).assign(label_ts=lambda d: d["event_ts"] + pd.Timedelta(days=9))
    sha = dataset_sha256(df)
    assert dataset_sha256(df.copy(deep=True)) == sha
    assert dataset_sha256(pd.read_parquet(_roundtrip(df))) == sha
    changed = df.copy()
    changed.loc[7, "label_ts"] += pd.Timedelta(microseconds=1)
    assert dataset_sha256(changed) != sha


def _roundtrip(df):
    import io
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    buf.seek(0)
    return buf


# -- identifiers and SQL ------------------------------------------------------------------------
@pytest.mark.parametrize("field", ["event_id", "event_ts", "label", "label_ts", "name",
                                   "model_name"])
def test_X03_identifiers_from_specs_are_validated_before_any_sql(field):
    with pytest.raises(SpecError, match="is not a valid identifier"):
        spec_with(**{field: 'x" FROM t; DROP TABLE models; --'})


def test_X04_values_that_reach_sql_as_literals_are_escaped(tmp_path):
    """Salts and file paths are SQL string literals: a quote in them is data, not SQL."""
    ids = pd.Series(range(100))
    splits = assign_splits(ids, "salt'; DROP TABLE x; --", (0.7, 0.15))
    assert splits.isin(["train", "valid", "test"]).all() and splits.nunique() == 3
    odd = tmp_path / "it's a dir"
    odd.mkdir()
    good_events().to_parquet(odd / "part.parquet", index=False)
    assert len(read_parquet_files([odd / "part.parquet"])) == 5


# -- paths --------------------------------------------------------------------------------------
def test_X05_landing_files_cannot_escape_the_data_directory(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    good_events().to_parquet(outside / "secret.parquet", index=False)
    paths = DataPaths(tmp_path / "data").ensure()
    paths.landing_events_file(HOUR).symlink_to(outside / "secret.parquet")
    with pytest.raises(ContractError, match="resolves outside the data directory; refusing"):
        ingest_events(paths, SPEC, [HOUR], NOW)
    # a whole landing directory linked elsewhere is refused too
    other = DataPaths(tmp_path / "data2").ensure()
    (other.landing / "events").rmdir()
    (other.landing / "events").symlink_to(outside, target_is_directory=True)
    (outside / f"{HOUR:%Y-%m-%dT%H}.parquet").write_bytes((outside / "secret.parquet").read_bytes())
    with pytest.raises(ContractError, match="resolves outside the data directory"):
        ingest_events(other, SPEC, [HOUR], NOW)


# -- network ------------------------------------------------------------------------------------
def _listening(port: int) -> set[str]:
    """Local addresses listening on ``port`` (from /proc/net/tcp and tcp6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = pathlib.Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            addr, p = local.split(":")
            if state == "0A" and int(p, 16) == port:  # 0A = LISTEN
                found.add(addr)
    return found


def test_X06_servers_bind_localhost_unless_told_otherwise(tmp_path):
    assert build_parser().parse_args(["serve"]).host == "127.0.0.1"
    assert serving_app.DEFAULT_HOST == "127.0.0.1"
    import inspect
    assert inspect.signature(serving_app.serve).parameters["host"].default == "127.0.0.1"
    assert inspect.signature(serving_app.running_server).parameters["host"].default == "127.0.0.1"
    # the Dagster UI: `make ui` runs `dagster dev` bound explicitly to 127.0.0.1
    ui = re.search(r"^ui:.*?\n((?:\t.*\n)+)", (REPO / "Makefile").read_text(), re.M).group(1)
    assert "dagster dev" in ui and "-h 127.0.0.1" in ui and "0.0.0.0" not in ui  # noqa: S104
    # and a real `ml-assets serve` with no --host listens on 127.0.0.1 only (Linux /proc/net/tcp)
    port = serving_app.free_port()
    proc = subprocess.Popen([sys.executable, "-m", "ml_assets.cli.main", "--data-dir", str(tmp_path),
                             "serve", "--port", str(port)], env=child_env(), cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not _listening(port) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        assert _listening(port) == {"0100007F"}, (proc.poll(), proc.stderr.read1(2000)
                                                 if proc.poll() is not None else "")
    finally:
        proc.kill()
        proc.wait(timeout=30)


# -- identity and authority ---------------------------------------------------------------------
def test_X07_kill_switch_and_promotion_need_an_identity_which_the_audit_log_keeps(fraud_world,
                                                                                tmp_path):
    paths = copy_world(fraud_world, tmp_path / "world")
    registry = Registry(paths.control_db)
    aliases, audit = registry.aliases("fraud"), registry.audit_log(10_000)
    for actor in ("", None):
        with pytest.raises(RegistryError, match="needs an identity"):
            set_kill_switch(registry, paths, SPEC, True, actor=actor, reason="incident")
        with pytest.raises(RegistryError, match="needs an identity"):
            promote(registry, paths, SPEC, aliases["previous"], actor=actor, reason="x")
    assert registry.aliases("fraud") == aliases and registry.audit_log(10_000) == audit
    assert registry.get_setting("kill_switch", "off") == "off"
    # the CLI refuses an empty identity too (exit 1) and records a given one
    cli = [sys.executable, "-m", "ml_assets.cli.main", "--data-dir", str(paths.root), "kill-switch"]
    refused = subprocess.run([*cli, "on", "--reason", "incident", "--actor", ""], env=child_env(),
                             capture_output=True, text=True, cwd=REPO)
    assert refused.returncode == 1 and "needs an identity" in refused.stderr
    done = subprocess.run([*cli, "on", "--reason", "incident 42", "--actor", "oncall-bob"],
                          env=child_env(), capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    entry = registry.audit_log(1)[0]
    assert (entry["actor"], entry["action"], entry["reason"]) == ("oncall-bob", "set:kill_switch",
                                                                  "incident 42")


def _drill_refused_before_serving_starts(paths: DataPaths, registry: Registry, actor: str):
    """A drill without a server starts one (minutes on a large lake) only after its checks:
    with a score file that would stop serving from starting, the refusal is still the
    authority's."""
    scores = Catalog(paths.lake).table(BATCH_SCORES).files()[-1]
    kept = scores.read_bytes()
    scores.write_bytes(b"not parquet")
    try:
        serving_app.rollback_drill(registry, paths, SPEC, actor)
    finally:
        scores.write_bytes(kept)


def test_X08_only_printable_identities_listed_in_the_rollback_authority_may_act(fraud_world,
                                                                              tmp_path):
    """An identity is a non-blank printable name ('   ' and a newline were accepted before);
    the contract's [rollback_authority] may_act lists who may change what serves; anyone else
    is refused - library and CLI, kill switch, rollback, promote, rollout, drill - and the
    refusal is audited while nothing else changes."""
    paths = copy_world(fraud_world, tmp_path / "world")
    registry = Registry(paths.control_db)
    aliases = registry.aliases("fraud")
    for actor in ("   ", "\n", "\t", "bob\n", " bob", "bob\x00", "a\u200bb", "x" * 65):
        audit = registry.audit_log(10_000)
        with pytest.raises(RegistryError, match="needs an identity|not a printable name"):
            set_kill_switch(registry, paths, SPEC, True, actor=actor, reason="incident")
        with pytest.raises(RegistryError, match="needs an identity|not a printable name"):
            registry.set_setting("kill_switch", "on", actor, "straight to the registry")
        assert registry.audit_log(10_000) == audit  # nothing recorded for a non-name
    calls = {"kill_switch": lambda a: set_kill_switch(registry, paths, SPEC, True, a, "x"),
             "promote": lambda a: promote(registry, paths, SPEC, aliases["challenger"], a, "x"),
             "rollback": lambda a: rollback(registry, paths, SPEC, a, "x", aliases["champion"]),
             "rollout": lambda a: rollout.step(registry, paths, SPEC, "pause", a, NOW, NOW),
             "drill": lambda a: run_rollback_drill(registry, paths, SPEC, "http://127.0.0.1:9", a),
             "drill ": lambda a: _drill_refused_before_serving_starts(paths, registry, a)}
    for action, call in calls.items():
        with pytest.raises(NotAuthorized, match="'mallory' may not .*may_act"):
            call("mallory")
        entry = registry.audit_log(1)[0]
        assert (entry["actor"], entry["action"]) == ("mallory", f"refused:{action.strip()}")
    assert registry.aliases("fraud") == aliases
    assert registry.get_setting("kill_switch", "off") == "off"
    # the CLI: a blank or unprintable identity and an unlisted one exit 1 saying why
    cli = [sys.executable, "-m", "ml_assets.cli.main", "--data-dir", str(paths.root), "kill-switch",
           "on", "--reason", "incident"]
    for actor, why in (("   ", "needs an identity"), ("bob\n", "not a printable name"),
                       ("mallory", "not listed in [rollback_authority] may_act")):
        refused = subprocess.run([*cli, "--actor", actor], env=child_env(), capture_output=True,
                                 text=True, cwd=REPO)
        assert refused.returncode == 1 and why in refused.stderr, refused.stderr
    assert registry.get_setting("kill_switch", "off") == "off"
    # listed identities act; "dagster:*" admits Dagster runs of any user, not a bare prefix
    contract = load_contract(SPEC)
    assert contract.may_act("oncall-bob") and contract.may_act("dagster:alice")
    assert not contract.may_act("dagster:") and not contract.may_act("dagster")
    set_kill_switch(registry, paths, SPEC, True, "oncall-bob", "incident 7")
    assert registry.get_setting("kill_switch") == "on"


@settings(max_examples=300, deadline=None, derandomize=True)
@given(actor=st.text(max_size=70))
def test_X08b_an_identity_is_exactly_a_non_blank_printable_name(actor):
    """Property over actor strings: the registry's identity rule accepts exactly the names a
    person can read back from the audit log."""
    readable = (actor.strip() == actor != "" and actor.isprintable() and len(actor) <= 64)
    try:
        check_identity(actor)
        accepted = True
    except RegistryError:
        accepted = False
    assert accepted == readable
