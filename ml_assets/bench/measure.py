"""Run one benchmark task in a fresh subprocess: wall seconds, the task's own peak RSS and the
JSON it prints as its last line. A fresh process per task keeps each peak RSS its own."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path


class TaskFailed(RuntimeError):
    """A benchmark task exited non-zero or timed out; the message carries its stderr tail."""


def thread_env(threads: int) -> dict[str, str]:
    """Cap every native thread pool of the child (OpenMP, BLAS) before it imports anything."""
    caps = {k: str(threads) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                      "MKL_NUM_THREADS")}
    return {**os.environ, **caps}


def run_task(task: str, args: dict, threads: int, timeout: float | None = None,
             python: str | None = None) -> dict:
    """``python -m ml_assets.bench.worker task`` with ``args`` as JSON on stdin, under
    ``python`` (default: this interpreter; the Spark side runs in the Spark environment)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([python or sys.executable, "-m", "ml_assets.bench.worker", task],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=thread_env(threads), text=True)
    try:
        out, err = proc.communicate(json.dumps(args), timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise TaskFailed(f"{task}: timed out after {timeout:.0f}s") from None
    if proc.returncode != 0:
        raise TaskFailed(f"{task} exited {proc.returncode}: {err.strip()[-2000:]}")
    result = json.loads(out.strip().splitlines()[-1])
    result["wall_seconds"] = time.perf_counter() - t0
    return result


PEER_SCRIPT = Path(__file__).with_name("peer_side.py")


def run_peer(python: str | None, job: str, data: Path, threads: int) -> dict:
    """``peer_side.py job data`` under the peer tools' Python (``make bench-peers``), its
    native thread pools capped at ``threads`` like ours.

    Returns
    -------
    dict
        The peer's JSON (``seconds``, ``tool``, ``version``, ...), or ``{"reason": why}`` when
        no peer Python was given or it failed: the figure is then None, never estimated.
    """
    if not python:
        return {"reason": "no --peers-python: run `make bench-peers` (Evidently 0.7 and NannyML "
                          "do not import on pandas 3.1, so they live in .venv-peers)"}
    proc = subprocess.run([python, str(PEER_SCRIPT), job, str(data)], capture_output=True,
                          text=True, env=thread_env(threads))
    if proc.returncode != 0:
        return {"reason": f"peer {job} exited {proc.returncode}: {proc.stderr.strip()[-1500:]}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def peak_rss_mb() -> float:
    """This process's peak resident set size in MiB (Linux reports ``ru_maxrss`` in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
