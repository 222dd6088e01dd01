"""Four partition ranges of ``raw_events`` launched as the UI launches runs: submitted to the
instance's run queue (``dagster job launch``), dequeued by the real ``dagster-daemon`` within
the profile's limits, executed by run workers of a real code server. ``WAVES`` lists the assets
launched one wave after another (a range of ``event_features`` reads the look-back of earlier
ranges' events, so features go in a later wave than events). Used by ``test_runs_fan_out.py``
(one wave: every launch and run worker imports the definitions, the test's main cost) and to
measure SQLite against PostgreSQL (README)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import yaml

from ml_assets.defs.partitions import event_key, range_tags
from ml_assets.lib.core.paths import DataPaths
from ml_assets.scenarios.runner import PROFILE_ENV, write_instance_config
from ml_assets.scenarios.synthetic import SyntheticConfig, write_landing
from ml_assets.specs.fraud import FRAUD_SPEC
from ml_assets_tests.fixtures.reliability_world import REPO, child_env
from ml_assets_tests.fixtures.services import free_port

PROFILE = REPO / "deploy" / "postgres" / "dagster.yaml"
PG_URL_ENV = "ML_ASSETS_DAGSTER_PG_URL"
JOB, WAVES = "hourly_scoring_job", ("raw_events",)
RANGES = 4
WORLD = SyntheticConfig(seed=3, days=2, scale=0.05)  # 48 hourly partitions, 12 per range
DAGSTER = Path(sys.executable).parent
STOP_TIMEOUT_S = 15
# One process per run: on 2 cores a process per step only adds interpreter start-ups.
IN_PROCESS = {"execution": {"config": {"in_process": {}}}}


@dataclass
class FanOut:
    """What a fan-out run left: wall seconds from the first submit to the last run finished,
    the most runs seen in progress at once while polling, and the run ids."""

    seconds: float
    most_in_progress: int
    run_ids: list[str]


def partition_ranges() -> list[tuple[str, str]]:
    """The four ``(first, last)`` hourly keys, 12 hours each, covering the world's 48 hours."""
    step, per = FRAUD_SPEC.partition_step, WORLD.days * 24 // RANGES
    return [(event_key(FRAUD_SPEC, WORLD.start + i * per * step),
             event_key(FRAUD_SPEC, WORLD.start + ((i + 1) * per - 1) * step))
            for i in range(RANGES)]


def all_keys() -> list[str]:
    return [event_key(FRAUD_SPEC, WORLD.start + timedelta(hours=h)) for h in range(WORLD.days * 24)]


def prepare(data_dir: Path, profile: Path) -> tuple[DataPaths, dict]:
    """Landing files of :data:`WORLD` and the instance config from ``profile``; returns the
    paths and the environment for every Dagster process (``DAGSTER_HOME`` under the data
    dir, ``$ML_ASSETS_DAGSTER_PROFILE``)."""
    paths = DataPaths(data_dir)
    write_landing(WORLD, paths)
    write_instance_config(paths, profile)
    return paths, {**child_env(data_dir), PROFILE_ENV: str(profile)}


def _start(args: list[str], env: dict, log: Path) -> subprocess.Popen:
    with log.open("wb") as out:
        return subprocess.Popen(args, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM to the process group, SIGKILL when it is not gone within STOP_TIMEOUT_S."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=STOP_TIMEOUT_S)
    with contextlib.suppress(ProcessLookupError):  # the group's children (run workers, gRPC)
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=STOP_TIMEOUT_S)


def _wait_for_code_server(port: int, env: dict, proc: subprocess.Popen, log: Path,
                          timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"code server exited: {log.read_text()[-3000:]}"
        ping = subprocess.run([str(DAGSTER / "dagster"), "api", "grpc-health-check", "--port",
                               str(port), "--host", "127.0.0.1"], env=env, cwd=REPO,
                              capture_output=True, text=True)
        if ping.returncode == 0:
            return
        time.sleep(2)
    raise AssertionError(f"code server never served: {log.read_text()[-3000:]}")


def fan_out(paths: DataPaths, env: dict, statuses, timeout: float = 400) -> FanOut:
    """Start a code server, queue the four ``raw_events`` ranges, start the daemon, wait for
    them, then submit and wait for the four ``event_features`` ranges; stop both processes
    (SIGTERM, then SIGKILL). ``seconds`` counts from the first submit.

    Parameters
    ----------
    paths, env
        From :func:`prepare`.
    statuses : callable
        ``statuses() -> {run_id: status name}`` of every run of the instance, read from the
        storage under test; polled every 0.5 s.

    Raises
    ------
    AssertionError
        When a process exits early, a launch fails or the runs do not finish in ``timeout``.
    """
    port, logs = free_port(), paths.root / "logs"
    logs.mkdir(exist_ok=True)
    workspace = paths.root / "workspace.yaml"
    workspace.write_text(yaml.safe_dump({"load_from": [{"grpc_server": {
        "host": "127.0.0.1", "port": port, "location_name": "ml_assets"}}]}))
    procs = [_start([str(DAGSTER / "dagster"), "code-server", "start", "-h", "127.0.0.1", "-p",
                     str(port), "-m", "ml_assets.definitions", "-a", "defs"], env,
                    logs / "code_server.log")]
    try:
        _wait_for_code_server(port, env, procs[0], logs / "code_server.log")
        t0, most = time.monotonic(), 0
        for wave, asset in enumerate(WAVES, 1):
            _launch(asset, workspace, env)
            if wave == 1:  # a backlog in the queue: the daemon starts as many as allowed at once
                procs.append(_start([str(DAGSTER / "dagster-daemon"), "run", "-w",
                                     str(workspace)], env, logs / "daemon.log"))
            most = max(most, _wait(statuses, wave * RANGES, procs, logs, timeout))
        return FanOut(time.monotonic() - t0, most, sorted(statuses()))
    finally:
        for p in reversed(procs):
            stop(p)


def _launch(asset: str, workspace: Path, env: dict) -> None:
    """Submit the four ranges of ``asset`` at once (``dagster job launch``, one per range)."""
    launches = [subprocess.Popen(
        [str(DAGSTER / "dagster"), "job", "launch", "-j", JOB, "-w", str(workspace), "-o", asset,
         "--tags", json.dumps(range_tags(first, last)), "--config-json", json.dumps(IN_PROCESS)],
        env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for first, last in partition_ranges()]
    for launch in launches:
        out, _ = launch.communicate(timeout=240)
        assert launch.returncode == 0, f"dagster job launch failed: {out[-3000:]}"


def _wait(statuses, count: int, procs: list[subprocess.Popen], logs: Path,
          timeout: float) -> int:
    """Poll until ``count`` runs exist and all are finished; returns the most seen in progress."""
    most, deadline = 0, time.monotonic() + timeout
    while True:
        now = statuses()
        most = max(most, sum(s in ("STARTING", "STARTED") for s in now.values()))
        if len(now) == count and all(s in ("SUCCESS", "FAILURE", "CANCELED")
                                     for s in now.values()):
            return most
        for p in procs:
            assert p.poll() is None, f"{p.args[0]} exited: {now}"
        assert time.monotonic() < deadline, (
            f"runs not finished in {timeout} s: {now}; daemon log: "
            f"{(logs / 'daemon.log').read_text()[-3000:]}")
        time.sleep(0.5)
