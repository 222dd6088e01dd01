"""Crash safety with real processes (docs/reliability.md, rows K*): a child process runs a
real Dagster materialization (or a control-plane change), stops at a chosen point - half-way
through writing a Parquet file, after the temp file is complete but before the rename, between
two partitions of a range, inside an open SQLite transaction - and is killed with SIGKILL.
Readers then see the old or the new state, never a partial file or a half-registered model,
and a rerun completes."""

import sqlite3
from datetime import timedelta

import dagster as dg
import pandas as pd
import pytest

from ml_assets.definitions import build_definitions
from ml_assets.defs.partitions import hour_key, range_tags
from ml_assets.lib.core.artifacts import sha256_file
from ml_assets.lib.core.lake import read_parquet_files
from ml_assets.lib.core.registry import Registry
from ml_assets.lib.scoring.batch import score_contract_problems
from ml_assets_tests.fixtures.reliability_world import (
    Child,
    child_env,
    copy_world,
    tree_digest,
    write_script,
)

pytestmark = pytest.mark.slow

MATERIALIZE_CHILD = """
import os, sys, time, warnings
warnings.filterwarnings("ignore")
import pyarrow.parquet as pq
import dagster as dg
from ml_assets.definitions import build_definitions
from ml_assets.defs.partitions import range_tags
from ml_assets.specs.fraud import FRAUD_SPEC

data_dir, asset, first, last, point, nth = sys.argv[1:7]
nth = int(nth)
target = os.sep + os.path.join("lake", asset) + os.sep
calls = {"n": 0}

def pause(what):
    print(f"CRASHPOINT {what}", flush=True)
    time.sleep(600)  # the parent kills us here

real_write_table, real_replace = pq.write_table, os.replace

def write_table(table, path, *args, **kwargs):
    real_write_table(table, path, *args, **kwargs)
    if point == "mid_write" and target in str(path):
        calls["n"] += 1
        if calls["n"] == nth:
            size = os.path.getsize(path)
            with open(path, "r+b") as fh:  # the bytes a killed writer leaves: half a file
                fh.truncate(size // 2)
            pause(f"{path} {size // 2}/{size}")

def replace(src, dst, *args, **kwargs):
    if point in ("before_replace", "between_partitions") and target in str(dst):
        calls["n"] += 1
        if calls["n"] == nth:
            pause(f"{src} -> {dst}")
    return real_replace(src, dst, *args, **kwargs)

pq.write_table, os.replace = write_table, replace
defs = build_definitions(FRAUD_SPEC, data_dir)
print("READY", flush=True)
result = dg.materialize(defs.assets, selection=[asset],  # checks are not the point here
                        instance=dg.DagsterInstance.ephemeral(), resources=defs.resources,
                        tags=range_tags(first, last), raise_on_error=False)
print("FINISHED", result.success, flush=True)
"""


def _frames(files) -> dict[str, pd.DataFrame]:
    return {f.name: pd.read_parquet(f) for f in files}


def _same_content(new: pd.DataFrame, old: pd.DataFrame, spec) -> None:
    """Scores are compared per (event, model version): roles and scored_at change when the
    champion changed since the first run (the demo promoted the later model)."""
    if "model_version" in old:
        cols = [spec.event_id, "model_version", "score", "decision", "feature_schema_version"]
        new, old = (df[cols].sort_values(cols[:2]).reset_index(drop=True) for df in (new, old))
    pd.testing.assert_frame_equal(new, old)


def _materialize(root, spec, asset: str, first: str, last: str) -> None:
    defs = build_definitions(spec, str(root))
    result = dg.materialize(defs.assets, selection=[asset],  # checks are not the point here
                            instance=dg.DagsterInstance.ephemeral(), resources=defs.resources,
                            tags=range_tags(first, last), raise_on_error=False)
    assert result.success


@pytest.mark.parametrize("asset,point,nth,expect_new", [
    # a range run writes every temp file, fsyncs them, then renames: a kill while writing
    # leaves every partition old, a kill between renames some old and some new
    ("batch_scores", "mid_write", 3, 0),            # K01: half-written temp file
    ("batch_scores", "before_replace", 3, 2),       # K02: complete temp file, not yet renamed
    ("batch_scores", "between_partitions", 7, 6),   # K03: range run, 6 of 12 partitions done
    ("event_features", "mid_write", 2, 0),          # K04: features, half-written temp file
])
def test_K01_K04_kill9_mid_write_leaves_old_or_new_partitions_and_a_rerun_completes(
        fraud_world, tmp_path, asset, point, nth, expect_new):
    paths = copy_world(fraud_world, tmp_path / "world")
    spec, end = fraud_world["spec"], fraud_world["end"]
    first, last = hour_key(end - timedelta(hours=12)), hour_key(end - timedelta(hours=1))
    asset_dir = paths.lake / asset
    before = tree_digest(asset_dir)
    inodes = {p.name: p.stat().st_ino for p in asset_dir.glob("*.parquet")}
    old = _frames(sorted(asset_dir.glob("*.parquet")))

    child = Child(write_script(tmp_path, "child.py", MATERIALIZE_CHILD), str(paths.root), asset,
                  first, last, point, str(nth), env=child_env(paths.root))
    where = child.wait_for("CRASHPOINT", timeout=120)
    child.kill9()

    # the crash really happened mid-write: a temp file is left behind, invisible to readers
    leftovers = [p for p in asset_dir.iterdir() if p.name.endswith(".tmp")]
    assert leftovers, where
    after = tree_digest(asset_dir)
    # replaced files are new inodes (features are deterministic: their bytes may not change)
    changed = {p.name for p in asset_dir.glob("*.parquet") if p.stat().st_ino != inodes[p.name]}
    assert len(changed) == expect_new
    assert set(after) - set(before) == {p.name for p in leftovers}  # nothing else appeared
    assert all(after[k] == before[k] for k in before if k not in changed)
    files = sorted(asset_dir.glob("*.parquet"))
    for f in files:  # every file a reader can see is a whole Parquet file
        df = pd.read_parquet(f)
        if f.name in changed:  # a completed new partition: the same content, every row valid
            _same_content(df, old[f.name], spec)
            if asset == "batch_scores":
                assert score_contract_problems(df, spec) == []
        else:
            pd.testing.assert_frame_equal(df, old[f.name])
    assert len(read_parquet_files(files)) == sum(len(df) for df in old.values())  # DuckDB reader

    _materialize(paths.root, spec, asset, first, last)  # the rerun completes
    rerun = _frames(sorted(asset_dir.glob("*.parquet")))
    assert set(rerun) == set(old)
    for name, df in rerun.items():
        _same_content(df, old[name], spec)


REGISTRY_CHILD = """
import sys, time
from ml_assets.lib.core import registry as reg
from ml_assets.lib.core.paths import DataPaths
from ml_assets.lib.release.rollback import promote
from ml_assets.specs.fraud import FRAUD_SPEC

root, action = sys.argv[1:3]
paths = DataPaths(__import__("pathlib").Path(root))
registry = reg.Registry(paths.control_db)

def pause(*_a, **_k):
    print("CRASHPOINT inside the transaction", flush=True)
    time.sleep(600)

if action == "register":
    real = reg.Registry._audit
    reg.Registry._audit = staticmethod(pause)  # after INSERT INTO models, before COMMIT
    card = {**registry.get_model("fraud-v1"), "artifact_sha256": "f" * 64}
    registry.register_model("fraud", card, actor="crash-test")
elif action == "promote":
    real = reg.Registry._set_alias
    state = {"n": 0}
    def set_alias(con, *args):
        real(con, *args)
        state["n"] += 1
        if state["n"] == 1:  # champion already moved, previous not yet
            pause()
    reg.Registry._set_alias = staticmethod(set_alias)
    promote(registry, paths, FRAUD_SPEC, "fraud-v1", actor="crash-test", reason="crash test")
print("FINISHED", flush=True)
"""


def _control_state(db) -> dict:
    con = sqlite3.connect(db)
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return {t: con.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall()  # noqa: S608
                for t in ("models", "aliases", "settings", "audit")}
    finally:
        con.close()


@pytest.mark.parametrize("action", ["register", "promote"])
def test_K05_K06_kill9_inside_a_control_plane_transaction_changes_nothing(fraud_world, tmp_path,
                                                                          action):
    """K05: a model registration killed after its row was inserted; K06: a promotion killed
    after the champion alias moved but before `previous` did. Neither is visible afterwards:
    no half-registered model, no champion without its rollback target, no audit entry."""
    paths = copy_world(fraud_world, tmp_path / "world")
    spec = fraud_world["spec"]
    before = _control_state(paths.control_db)
    child = Child(write_script(tmp_path, "reg_child.py", REGISTRY_CHILD), str(paths.root), action)
    child.wait_for("CRASHPOINT", timeout=60)
    reader = Registry(paths.control_db)  # a concurrent reader sees the old state, no lock error
    assert reader.aliases("fraud") == {"champion": "fraud-v2", "challenger": None,
                                       "previous": "fraud-v1"}
    child.kill9()
    assert _control_state(paths.control_db) == before
    registry = Registry(paths.control_db)
    assert [m["version"] for m in registry.list_models("fraud")] == ["fraud-v1", "fraud-v2"]
    # the rerun completes
    if action == "register":
        card = {**registry.get_model("fraud-v1"), "artifact_sha256": "f" * 64}
        assert registry.register_model("fraud", card, actor="rerun") == ("fraud-v3", True)
        assert registry.aliases("fraud")["challenger"] == "fraud-v3"
    else:
        from ml_assets.lib.release.rollback import promote
        promote(registry, paths, spec, "fraud-v1", actor="rerun", reason="rerun")
        assert registry.aliases("fraud") == {"champion": "fraud-v1", "challenger": None,
                                             "previous": "fraud-v2"}
    assert registry.audit_log(1)[0]["actor"] == "rerun"


TRAIN_CHILD = """
import sys, time, warnings
warnings.filterwarnings("ignore")
import dagster as dg
from ml_assets.definitions import build_definitions
from ml_assets.defs.training.definitions import TRAINING_ASSETS
from ml_assets.lib.core import registry as reg
from ml_assets.specs.fraud import FRAUD_SPEC

root, as_of = sys.argv[1:3]

def pause(*_a, **_k):
    print("CRASHPOINT artifact stored, model not registered", flush=True)
    time.sleep(600)

reg.Registry.register_model = pause
defs = build_definitions(FRAUD_SPEC, root)
cfg = {"ops": {"training_set": {"config": {"as_of": as_of, "window_days": 14}}}}
dg.materialize([*defs.assets, *defs.asset_checks], selection=list(TRAINING_ASSETS),
               instance=dg.DagsterInstance.ephemeral(), resources=defs.resources, run_config=cfg)
"""


def test_K07_kill9_between_storing_a_model_and_registering_it(fraud_world, tmp_path):
    """The candidate's artifact is written (content-addressed, whole) but the process dies before
    the registry transaction: no version appears, the orphan artifact is complete and verified,
    and rerunning the training registers it once."""
    paths = copy_world(fraud_world, tmp_path / "world")
    spec, end = fraud_world["spec"], fraud_world["end"]
    as_of = (end - timedelta(days=3)).isoformat()
    artifacts_before = {p.name for p in paths.artifacts.iterdir()}
    before = _control_state(paths.control_db)
    child = Child(write_script(tmp_path, "train_child.py", TRAIN_CHILD), str(paths.root), as_of,
                  env=child_env(paths.root))
    child.wait_for("CRASHPOINT", timeout=180)
    child.kill9()
    assert _control_state(paths.control_db) == before
    new = [paths.artifacts / n for n in {p.name for p in paths.artifacts.iterdir()} - artifacts_before]
    pkl = [p for p in new if p.suffix == ".pkl"]
    assert len(pkl) == 1 and sha256_file(pkl[0]) == pkl[0].stem  # whole, verifiable bytes

    defs = build_definitions(spec, str(paths.root))
    cfg = {"ops": {"training_set": {"config": {"as_of": as_of, "window_days": 14}}}}
    from ml_assets.defs.training.definitions import TRAINING_ASSETS
    assert dg.materialize([*defs.assets, *defs.asset_checks], selection=list(TRAINING_ASSETS),
                          instance=dg.DagsterInstance.ephemeral(), resources=defs.resources,
                          run_config=cfg).success
    registry = Registry(paths.control_db)
    assert [m["version"] for m in registry.list_models("fraud")] == ["fraud-v1", "fraud-v2", "fraud-v3"]
    v3 = registry.get_model("fraud-v3")
    assert sha256_file(paths.root / v3["artifact_path"]) == v3["artifact_sha256"]
