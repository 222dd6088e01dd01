"""Long commands stop within seconds on SIGTERM or SIGINT, say so and how far they got, and
leave the data directory consistent: no run left STARTED, every lake file whole. `make ui`
(dagster dev) stops within seconds too."""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import yaml

from ml_assets.lib.core.paths import DataPaths
from ml_assets_tests.fixtures.reliability_world import REPO, child_env

STOP_WITHIN_S = 10


def _start(*args, data_dir) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-u", "-m", "ml_assets.cli.main", "--data-dir",
                             str(data_dir), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=child_env(), cwd=REPO)


def _wait_for_line(proc: subprocess.Popen, prefix: str, timeout: float = 240,
                   stream: str = "stdout") -> list[str]:
    lines, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = getattr(proc, stream).readline()
        if not line and proc.poll() is not None:
            break
        lines.append(line)
        if line.startswith(prefix):
            return lines
    proc.kill()
    raise AssertionError(f"never printed {prefix!r}: {lines[-5:]} {proc.communicate()}")


def _stop(proc: subprocess.Popen, signum: int) -> tuple[float, str]:
    t0 = time.monotonic()
    proc.send_signal(signum)
    try:
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    return time.monotonic() - t0, err


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_demo_stops_within_seconds_and_leaves_the_data_dir_consistent(tmp_path, signum):
    paths = DataPaths(tmp_path / "data")
    proc = _start("demo", "--days", "8", "--scale", "0.02", data_dir=paths.root)
    _wait_for_line(proc, "ingest events:")  # the first run is done, the next one is going
    seconds, err = _stop(proc, signum)
    name = signal.Signals(signum).name
    assert seconds < STOP_WITHIN_S, (seconds, err[-2000:])
    assert proc.returncode == 128 + signum
    assert f"ml-assets demo: stopped by {name}" in err
    assert "consistent" in err and "rerun to continue" in err
    assert "Traceback" not in err
    instance = dg.DagsterInstance.from_config(str(paths.dagster_home))
    runs = instance.get_runs()
    assert runs and not [r for r in runs if not r.is_finished]  # none left STARTED
    for f in paths.lake.rglob("*.parquet"):
        pd.read_parquet(f)  # every published lake file is whole


def test_incident_drill_stops_within_seconds(tmp_path):
    """Stopped in its history backfill (Dagster range runs, as each replayed day is): waiting
    for the first replayed day cost CI 3.5 minutes for the same stop path."""
    proc = _start("drill", "incidents", "--scale", "0.02", data_dir=tmp_path / "data")
    _wait_for_line(proc, "backfilling history", timeout=400, stream="stderr")
    time.sleep(2)  # into the first run
    seconds, err = _stop(proc, signal.SIGTERM)
    assert seconds < STOP_WITHIN_S, (seconds, err[-2000:])
    assert proc.returncode == 128 + signal.SIGTERM
    assert "ml-assets drill: stopped by SIGTERM during the history backfill" in err, err[-2000:]
    assert "Traceback" not in err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _session(proc: subprocess.Popen) -> list[int]:
    """Processes left in the session ``proc`` leads (``proc`` reaped first): make, ``dagster
    dev`` and its webserver, daemon, code server and any run they started."""
    proc.poll()
    left = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[3]) == proc.pid and fields[0] != "Z":  # session id; zombies are gone
                left.append(int(stat.parent.name))
    return left


def _background_job() -> None:
    """Signal dispositions of a script's background job: SIGINT ignored, SIGTERM default."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _command(pid: int) -> str:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")[:200].decode()
    return "(gone)"


@pytest.mark.parametrize("how", ["SIGTERM to make", "Ctrl-C to the group"])
def test_make_ui_stops_within_seconds(tmp_path, how):
    """Started where SIGINT is ignored (a script's background job, nohup) - dagster dev then
    ignored SIGTERM as well and outlived make for minutes."""
    port, data_dir = _free_port(), tmp_path / "data"
    proc = subprocess.Popen(
        ["make", "-s", "-o", ".venv/.installed", "ui", f"UI_PORT={port}"], cwd=REPO,
        env={**child_env(), "ML_ASSETS_DATA_DIR": str(data_dir)}, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True,
        preexec_fn=_background_job)
    try:
        deadline = time.monotonic() + 240
        # the UI as a user sees it: served, with its code location loaded (under load the code
        # server can still be importing the definitions after the webserver answers)
        query = json.dumps({"query": "{ workspaceOrError { ... on Workspace { locationEntries "
                                     "{ loadStatus } } } }"}).encode()
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, "dagster dev never served"
            try:
                request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=query,
                                                 headers={"Content-Type": "application/json"})
                with urllib.request.urlopen(request, timeout=5) as answer:  # noqa: S310 (http)
                    entries = json.load(answer)["data"]["workspaceOrError"]["locationEntries"]
                if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                    break
            except (OSError, KeyError, TypeError, ValueError):
                pass
            time.sleep(1)
        t0 = time.monotonic()
        if how == "SIGTERM to make":
            proc.send_signal(signal.SIGTERM)
        else:
            os.killpg(proc.pid, signal.SIGINT)
        while _session(proc) and time.monotonic() - t0 < 60:
            time.sleep(0.5)
        left = {pid: _command(pid) for pid in _session(proc)}
        assert not left and time.monotonic() - t0 < 30, left
        config = yaml.safe_load((data_dir / "dagster_home" / "dagster.yaml").read_text())
        assert config["run_monitoring"]["enabled"]
    finally:
        for pid in _session(proc):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.wait(timeout=30)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_serve_stops_within_seconds_and_says_so(tmp_path, signum):
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "ml_assets.cli.main", "--data-dir",
                             str(tmp_path / "data"), "serve", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=child_env(), cwd=REPO)
    deadline = time.monotonic() + 120
    while True:  # an empty data dir: the server answers 503 no_servable_model
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
            break
        except urllib.error.HTTPError:
            break
        except OSError:
            time.sleep(0.5)
    seconds, err = _stop(proc, signum)
    assert seconds < STOP_WITHIN_S and proc.returncode == 128 + signum
    assert f"ml-assets serve: stopped by {signal.Signals(signum).name}" in err
