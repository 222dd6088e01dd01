"""Concurrency with real processes (docs/reliability.md, rows P*): the hourly job, a backfill
over a range that overlaps it, a label ingestion run, a control-plane writer flipping the kill
switch, a lake reader and the HTTP serving app all run at once against one data directory and
one persistent Dagster instance. No process may see a lock error, a partial file or a wrong
answer, and the results equal those of the sequential build."""

import json
from datetime import timedelta

import dagster as dg
import pandas as pd
import pytest

from ml_assets.defs.partitions import day_key, hour_key
from ml_assets.lib.core.lake import read_parquet_files
from ml_assets.lib.core.registry import Registry
from ml_assets.scenarios.runner import dagster_instance
from ml_assets_tests.fixtures.reliability_world import (
    Child,
    child_env,
    copy_world,
    tree_digest,
    write_script,
)

pytestmark = pytest.mark.slow

CHILD = """
import json, os, sys, time, traceback, warnings
warnings.filterwarnings("ignore")
from pathlib import Path

root, role, arg1, arg2 = sys.argv[1:5]
root = Path(root)
go, stop = root / "_go", root / "_stop"
errors, done = [], 0

def wait_go():
    print("READY", flush=True)
    while not go.exists():
        time.sleep(0.01)

if role in ("hourly", "backfill", "labels"):
    import dagster as dg
    from ml_assets.definitions import build_definitions
    from ml_assets.defs.partitions import range_tags
    from ml_assets.scenarios.runner import dagster_instance
    from ml_assets.lib.core.paths import DataPaths
    from ml_assets.specs.fraud import FRAUD_SPEC
    defs = build_definitions(FRAUD_SPEC, str(root))
    instance = dagster_instance(DataPaths(root))  # the persistent instance `dagster dev` uses
    wait_go()
    try:
        if role == "hourly":
            result = defs.resolve_job_def("hourly_scoring_job").execute_in_process(
                partition_key=arg1, instance=instance, raise_on_error=False)
        else:
            selection = (["event_features", "batch_scores"] if role == "backfill"
                         else ["raw_labels", "quarantine"])
            result = dg.materialize([*defs.assets, *defs.asset_checks], selection=selection,
                                    instance=instance, resources=defs.resources,
                                    tags={**range_tags(arg1, arg2), "role": role},
                                    raise_on_error=False)
        done = int(result.success)
        if not result.success:
            errors += [str(e.event_specific_data.error) for e in result.all_events
                       if e.is_step_failure]
    except Exception:
        errors.append(traceback.format_exc())
elif role == "control":
    from ml_assets.lib.core.paths import DataPaths
    from ml_assets.lib.core.registry import Registry
    from ml_assets.lib.release.rollback import set_kill_switch
    from ml_assets.specs.fraud import FRAUD_SPEC
    paths = DataPaths(root)
    registry = Registry(paths.control_db)
    wait_go()
    for i in range(int(arg1)):
        try:
            set_kill_switch(registry, paths, FRAUD_SPEC, i % 2 == 0, "concurrency-test",
                            f"flip {i}")
            done += 1
        except Exception:
            errors.append(traceback.format_exc())
        time.sleep(0.05)
elif role == "reader":
    from ml_assets.lib.core.lake import read_parquet_files
    wait_go()
    while not stop.exists():
        for asset in ("batch_scores", "event_features", "raw_labels"):
            try:
                files = sorted((root / "lake" / asset).glob("*.parquet"))
                n = len(read_parquet_files(files))
                if n != int(json.loads(arg1)[asset]):
                    errors.append(f"{asset}: read {n} rows")
                done += 1
            except Exception:
                errors.append(traceback.format_exc())
elif role == "serving":
    import httpx
    from ml_assets.lib.core.paths import DataPaths
    from ml_assets.serving.app import running_server
    from ml_assets.specs.fraud import FRAUD_SPEC
    ids = json.loads(arg1)
    with running_server(DataPaths(root), FRAUD_SPEC, log_predictions=False,
                        reload_seconds=0.2) as url, httpx.Client(base_url=url, timeout=10) as c:
        wait_go()
        while not stop.exists():
            for eid in ids:
                try:
                    r = c.get(f"/scores/{eid}")
                    body = r.json()
                    if r.status_code != 200 or body["model_version"] not in arg2.split(","):
                        errors.append(f"{r.status_code} {body}")
                    done += 1
                except Exception:
                    errors.append(traceback.format_exc())
print("RESULT " + json.dumps({"role": role, "done": done, "errors": errors[:5],
                              "n_errors": len(errors)}), flush=True)
"""


def _score_key(df: pd.DataFrame) -> pd.DataFrame:
    cols = ["event_id", "model_version", "score", "decision"]
    return df[cols].sort_values(cols[:2]).reset_index(drop=True)


def test_P01_writers_readers_and_serving_at_once_without_lock_errors(fraud_world, tmp_path,
                                                                     monkeypatch):
    paths = copy_world(fraud_world, tmp_path / "world")
    end = fraud_world["end"]
    last_hour = end - timedelta(hours=1)
    lake = paths.lake
    backfill = [end - timedelta(hours=h) for h in (3, 2, 1)]  # overlaps the hourly run
    label_days = [end - timedelta(days=d) for d in (2, 1)]
    touched = {"batch_scores": {f"{h:%Y-%m-%dT%H}.parquet" for h in backfill},
               "event_features": {f"{h:%Y-%m-%dT%H}.parquet" for h in backfill},
               "raw_events": {f"{last_hour:%Y-%m-%dT%H}.parquet"},
               "raw_labels": {f"{d:%Y-%m-%d}.parquet" for d in label_days}}
    snapshot = {a: {n: pd.read_parquet(lake / a / n) for n in names} for a, names in touched.items()}
    digest = tree_digest(lake)
    rows = {a: len(read_parquet_files(sorted((lake / a).glob("*.parquet"))))
            for a in ("batch_scores", "event_features", "raw_labels")}
    ids = sorted(set(snapshot["batch_scores"][f"{last_hour:%Y-%m-%dT%H}.parquet"]["event_id"]))[:5]
    registry = Registry(paths.control_db)
    aliases = registry.aliases("fraud")
    audit_before = len(registry.audit_log(10_000))
    # The instance's storage is created once, as `make demo` / `dagster dev` do: Dagster's
    # SQLite schema creation itself is not safe to race from several fresh processes.
    monkeypatch.setenv("DAGSTER_HOME", str(paths.dagster_home))  # restored after the test
    dagster_instance(paths).get_runs()

    script = write_script(tmp_path, "child.py", CHILD)
    env = child_env(paths.root)
    flips = 20
    root = str(paths.root)
    children = {
        "hourly": Child(script, root, "hourly", hour_key(last_hour), "-", env=env),
        "backfill": Child(script, root, "backfill", hour_key(backfill[0]), hour_key(backfill[-1]),
                          env=env),
        "labels": Child(script, root, "labels", day_key(label_days[0]), day_key(label_days[-1]),
                        env=env),
        "control": Child(script, root, "control", str(flips), "-", env=env),
        "reader": Child(script, root, "reader", json.dumps(rows), "-", env=env),
        "serving": Child(script, root, "serving", json.dumps([int(i) for i in ids]),
                         f"{aliases['champion']},{aliases['previous']}", env=env),
    }
    results = {}
    try:
        for child in children.values():
            child.wait_for("READY", timeout=180)
        (paths.root / "_go").touch()
        for name in ("hourly", "backfill", "labels", "control"):
            results[name] = json.loads(children[name].wait_for("RESULT", timeout=240)[7:])
        (paths.root / "_stop").touch()
        for name in ("reader", "serving"):
            results[name] = json.loads(children[name].wait_for("RESULT", timeout=60)[7:])
    finally:
        for child in children.values():
            child.stop()

    for name, res in results.items():
        assert res["n_errors"] == 0, (name, res)
    assert [results[n]["done"] for n in ("hourly", "backfill", "labels")] == [1, 1, 1]
    assert results["control"]["done"] == flips
    assert results["reader"]["done"] > 0 and results["serving"]["done"] > 0

    # correct results: rewritten partitions equal the sequential build (per event and version
    # for scores: the champion changed since), every other lake file is byte-identical
    after = tree_digest(lake)
    for asset, frames in snapshot.items():
        for name, df in frames.items():
            now = pd.read_parquet(lake / asset / name)
            if asset == "batch_scores":
                pd.testing.assert_frame_equal(_score_key(now), _score_key(df))
            else:
                pd.testing.assert_frame_equal(now, df)
    rewritten = {f"{a}/{n}" for a, names in touched.items() for n in names}
    changed = {k for k in digest if after.get(k) != digest[k]}
    assert changed <= rewritten | {k for k in digest if k.startswith("_quarantine/")}
    assert set(after) - set(digest) <= {"quarantine.parquet"}
    assert not list(lake.rglob("*.tmp"))  # no writer left a temp file behind
    # the control plane recorded every flip, in order, and ended where the last flip left it
    audit = registry.audit_log(10_000)
    assert len(audit) - audit_before == flips
    assert registry.get_setting("kill_switch") == ("on" if (flips - 1) % 2 == 0 else "off")
    # the Dagster instance recorded all three runs as successful
    runs = dagster_instance(paths).get_runs()
    assert len(runs) == 3 and all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)
    print(json.dumps({n: r["done"] for n, r in results.items()}))
