"""What a SIGKILL leaves behind is cleaned up safely: the run it was executing is marked failed
(not STARTED for ever), its writer's temp file is swept; a live writer's temp file and run are
left alone; the instance the project writes has Dagster's run monitoring on."""

import json
import os
import subprocess
import sys
import time

import dagster as dg
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from ml_assets.lib.core import paths as paths_module
from ml_assets.lib.core.paths import (
    DataPaths,
    atomic_write_bytes,
    create_file_bytes,
    sweep_stale_temp_files,
    write_parquet_atomic,
    write_parquet_files_atomic,
)
from ml_assets.scenarios.runner import RUN_MONITORING, dagster_instance, fail_orphaned_runs
from ml_assets_tests.fixtures.reliability_world import REPO, Child, child_env, write_script

WRITER = """
import os, sys, time
import pandas as pd
from pathlib import Path
from ml_assets.lib.core import paths as P

def held_rename(src, dst):  # the writer is stopped between its write and its rename
    print("written", flush=True)
    time.sleep(120)

P.os.replace = held_rename
P.write_parquet_atomic(pd.DataFrame({"a": range(1000)}), Path(sys.argv[1]))
"""

SLOW_RUN = """
import sys, time
from pathlib import Path
import dagster as dg
from ml_assets.lib.core.paths import DataPaths
from ml_assets.scenarios.runner import dagster_instance, run

@dg.asset
def slow_asset():
    Path(sys.argv[2]).write_text("running")
    time.sleep(120)

run(dg.Definitions(assets=[slow_asset]), dagster_instance(DataPaths(Path(sys.argv[1]))),
    ["slow_asset"])
"""


def _temp_files(root):
    return sorted(p for p in root.rglob(".*.tmp"))


def test_a_killed_writers_temp_file_is_swept_and_a_live_writers_is_not(tmp_path):
    paths = DataPaths(tmp_path / "data").ensure()
    script = write_script(tmp_path, "writer.py", WRITER)
    killed = Child(script, str(paths.lake / "raw_events" / "2026-07-01T10.parquet"))
    live = Child(script, str(paths.artifacts / "fraud-v9.parquet"))
    outside = paths.root / ".control.sqlite.999999.tmp"  # not a lake/landing/artifacts file
    outside.write_text("x")
    try:
        killed.wait_for("written")
        live.wait_for("written")
        killed.kill9()
        killed_tmp, live_tmp = (f"{child.proc.pid}.tmp" for child in (killed, live))
        temps = _temp_files(paths.root)
        assert {".".join(p.name.split(".")[-2:]) for p in temps} >= {killed_tmp, live_tmp}
        assert sweep_stale_temp_files(paths) == []  # both younger than the default 5 minutes
        removed = sweep_stale_temp_files(paths, min_age_seconds=0)
        (gone,) = removed
        assert gone.name.startswith(".2026-07-01T10.parquet.") and gone.name.endswith(killed_tmp)
        assert not any(p.name.endswith(killed_tmp) for p in _temp_files(paths.root))
        assert any(p.name.endswith(live_tmp) for p in _temp_files(paths.root))  # still owned
        assert outside.exists()
    finally:
        live.stop()
        killed.stop()


def test_a_run_whose_process_was_killed_is_marked_failed_and_a_live_one_is_not(tmp_path):
    paths = DataPaths(tmp_path / "data").ensure()
    script = write_script(tmp_path, "slow_run.py", SLOW_RUN)
    marker = tmp_path / "running"
    child = Child(script, str(paths.root), str(marker), env=child_env())
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert child.proc.poll() is None and time.monotonic() < deadline, child.proc.stderr.read()
            time.sleep(0.2)
        instance = dg.DagsterInstance.from_config(str(paths.dagster_home))
        (started,) = instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
        assert fail_orphaned_runs(instance) == []  # its process is alive: left alone
        child.kill9()
        assert instance.get_run_by_id(started.run_id).status == dg.DagsterRunStatus.STARTED
        dagster_instance(paths)  # the next scenario (demo, drill) opens the instance
        run = instance.get_run_by_id(started.run_id)
        assert run.status == dg.DagsterRunStatus.FAILURE
        failure = [e for e in instance.all_logs(run.run_id)
                   if e.dagster_event and e.dagster_event.event_type_value == "PIPELINE_FAILURE"]
        assert f"process {child.proc.pid} is gone" in failure[-1].dagster_event.message
    finally:
        child.stop()


def test_the_project_instance_has_run_monitoring_on(tmp_path):
    paths = DataPaths(tmp_path / "data")
    instance = dagster_instance(paths)
    assert instance.run_monitoring_enabled
    assert instance.run_monitoring_max_runtime_seconds == RUN_MONITORING["max_runtime_seconds"]
    assert instance.run_monitoring_start_timeout_seconds == RUN_MONITORING["start_timeout_seconds"]
    # an existing instance config (e.g. one `make ui` made before) gets the section, keeps the rest
    other = DataPaths(tmp_path / "older")
    other.dagster_home.mkdir(parents=True)
    (other.dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n"
                                                     "python_logs:\n  python_log_level: INFO\n")
    subprocess.run([sys.executable, "-m", "ml_assets.scenarios.runner", str(other.root)],
                   check=True, cwd=REPO, env=child_env(), timeout=120)
    config = yaml.safe_load((other.dagster_home / "dagster.yaml").read_text())
    assert config["run_monitoring"] == RUN_MONITORING
    assert config["python_logs"] == {"python_log_level": "INFO"}
    assert dg.DagsterInstance.from_config(str(other.dagster_home)).run_monitoring_enabled


def test_sweep_is_confined_and_does_not_follow_symlinks(tmp_path):
    paths = DataPaths(tmp_path / "data").ensure()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    victim = elsewhere / ".precious.parquet.999999.tmp"
    pd.DataFrame({"a": [1]}).to_parquet(victim)
    (paths.lake / "linked").symlink_to(elsewhere, target_is_directory=True)
    (paths.landing / "events" / ".link.999999.tmp").symlink_to(victim)
    not_ours = paths.lake / ".notes.tmp"  # no writer pid in the name
    not_ours.write_text("x")
    assert sweep_stale_temp_files(paths, min_age_seconds=0) == []
    assert victim.exists() and not_ours.exists()


def test_ml_assets_sweep_removes_old_temp_files_of_dead_writers(tmp_path):
    paths = DataPaths(tmp_path / "data").ensure()
    dead = paths.lake / "batch_scores" / ".2026-07-01T10.parquet.999999.tmp"
    dead.parent.mkdir(parents=True)
    dead.write_bytes(b"PAR1")
    fresh = paths.landing / "events" / ".2026-07-01T11.parquet.999998.tmp"
    fresh.write_bytes(b"PAR1")
    old = time.time() - 3600
    os.utime(dead, (old, old))
    out = subprocess.run([sys.executable, "-m", "ml_assets.cli.main", "--data-dir",
                          str(paths.root), "sweep", "--json"], check=True, capture_output=True,
                         text=True, cwd=REPO, env=child_env(), timeout=120).stdout
    assert json.loads(out) == {"removed_temp_files": [str(dead)], "failed_orphaned_runs": []}
    assert not dead.exists() and fresh.exists()  # younger than 5 minutes: kept


def test_atomic_writers_never_write_through_a_planted_temp_name(tmp_path):
    # the old temp name ".<name>.<pid>.tmp" was predictable and opened following symlinks:
    # anyone able to plant a symlink there overwrote the file it points at
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    target = tmp_path / "data" / "out.json"
    target.parent.mkdir()
    (target.parent / f".out.json.{os.getpid()}.tmp").symlink_to(victim)
    atomic_write_bytes(target, b"new")
    write_parquet_atomic(pd.DataFrame({"a": [1]}), target.with_name("t.parquet"))
    assert victim.read_text() == "precious" and target.read_bytes() == b"new"
    assert pd.read_parquet(target.with_name("t.parquet"))["a"].tolist() == [1]
    assert not [p for p in target.parent.iterdir() if p.name.endswith(".tmp") and
                not p.is_symlink()]  # no temp file left behind


def test_create_file_bytes_never_overwrites(tmp_path):
    path = tmp_path / "d" / "2026-01-05.parquet"
    assert create_file_bytes(path, b"first") is True
    assert create_file_bytes(path, b"second") is False  # a concurrent writer got there first
    assert path.read_bytes() == b"first"
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_a_batch_write_is_durable_whole_or_leaves_nothing(tmp_path, monkeypatch):
    """Many partitions written as one batch: the schema (pandas metadata included) and rows of
    DataFrame.to_parquet, strings alone dictionary-encoded; when any file fails, no final file
    is replaced and no temp file is left; when syncing fails, the error is raised before any
    rename."""
    df = pd.DataFrame({"a": range(10), "s": [f"x{i}" for i in range(10)]})
    df.to_parquet(tmp_path / "ref.parquet", index=False)
    out = tmp_path / "t"
    write_parquet_files_atomic([(out / f"{i}.parquet", df) for i in range(3)])
    for i in range(3):
        written = pq.ParquetFile(out / f"{i}.parquet")
        assert written.schema_arrow.equals(pq.read_schema(tmp_path / "ref.parquet"),
                                           check_metadata=True)
        pd.testing.assert_frame_equal(written.read().to_pandas(), df)
        encodings = [set(written.metadata.row_group(0).column(c).encodings) for c in (0, 1)]
        assert "PLAIN_DICTIONARY" not in encodings[0] and "RLE_DICTIONARY" not in encodings[0]
        assert encodings[1] & {"PLAIN_DICTIONARY", "RLE_DICTIONARY"}

    def items():
        yield out / "0.parquet", df.iloc[:1]
        yield out / "9.parquet", "not a table"
    with pytest.raises((TypeError, AttributeError, ValueError)):
        write_parquet_files_atomic(items())
    assert sorted(p.name for p in out.iterdir()) == ["0.parquet", "1.parquet", "2.parquet"]
    assert len(pd.read_parquet(out / "0.parquet")) == 10

    monkeypatch.setattr(paths_module, "_make_durable", _failing_sync)
    with pytest.raises(OSError, match="no space"):
        write_parquet_files_atomic([(out / "0.parquet", df.iloc[:2]), (out / "5.parquet", df)])
    assert sorted(p.name for p in out.iterdir()) == ["0.parquet", "1.parquet", "2.parquet"]
    assert len(pd.read_parquet(out / "0.parquet")) == 10


def _failing_sync(files, anchor):
    raise OSError(28, "no space left on device")
