"""Sections 2-5: ingest, drift, estimated AUC, batch scoring, serving and kill switch,
reproduce and the demo.

A section whose machinery does not exist yet (or whose prerequisites are missing) reports
``None`` figures with a reason; nothing is estimated or invented."""

from __future__ import annotations

import contextlib
import importlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from .measure import TaskFailed, run_task, thread_env

DRIFT_FULL = {"n_ref": 1_000_000, "n_cur": 100_000, "n_features": 20}
ESTIMATION_FULL_ROWS, ESTIMATION_CHUNKS = 1_000_000, 30


def drift_section(ctx: dict) -> dict:
    """PSI + KS over 20 features: the stored-profile comparison vs numpy/scipy vs Evidently."""
    scale = min(ctx["base_size"], 1.0)
    args = {"n_ref": max(2_000, int(DRIFT_FULL["n_ref"] * scale)),
            "n_cur": max(500, int(DRIFT_FULL["n_cur"] * scale)),
            "n_features": DRIFT_FULL["n_features"], "repeats": 3,
            "peers_python": ctx["peers_python"], "threads": ctx["threads"]}
    try:
        r = run_task("drift", args, ctx["threads"])
    except TaskFailed as exc:
        return {"skipped": str(exc), "ratio_vs_numpy": None, "speedup_vs_evidently": None}
    ours = r["seconds"]["profile_warm"]
    ev = r["seconds"]["evidently"]
    return {**r, "threads": ctx["threads"], "ml_assets_seconds": ours,
            "ratio_vs_numpy": r["seconds"]["numpy_scipy"] / ours,
            "speedup_vs_evidently": ev / ours if ev else None,
            "evidently_reason": None if ev else r["evidently"]}


def estimation_section(ctx: dict) -> dict:
    """Estimated AUC per chunk before labels: ours vs NannyML CBPE, time and error."""
    args = {"n_rows": max(3_000, int(ESTIMATION_FULL_ROWS * min(ctx["base_size"], 1.0))),
            "chunks": ESTIMATION_CHUNKS, "peers_python": ctx["peers_python"],
            "threads": ctx["threads"]}
    try:
        return {**run_task("estimation", args, ctx["threads"]), "threads": ctx["threads"]}
    except TaskFailed as exc:
        return {"skipped": str(exc), "speedup_vs_nannyml": None}


def ingest_section(ctx: dict) -> dict:
    """Events of the base world: ``land`` (export -> landing) and ingest (landing ->
    ``raw_events``) through the product's lib code, rows per second (goal >= 500k)."""
    work = Path(ctx["work"]) / "ingest"
    args = {"size": ctx["sizes"][0], "days": ctx["days"], "cache": ctx["cache"],
            "work": str(work)}
    try:
        return {**run_task("ingest", args, ctx["threads"]), "size": ctx["sizes"][0]}
    except TaskFailed as exc:
        return {"skipped": str(exc), "rows_per_second": {}}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def scoring_section(ctx: dict, feature_files: list[str]) -> dict:
    """End-to-end batch scoring of the base world vs bare predict_proba (goal <= 1.5x)."""
    if not feature_files:
        return {"skipped": "no feature outputs of the base size", "overhead_vs_bare_predict": None}
    out = Path(ctx["work"]) / "scores"
    shutil.rmtree(out, ignore_errors=True)
    args = {"size": ctx["sizes"][0], "days": ctx["days"], "cache": ctx["cache"],
            "features": feature_files, "out": str(out), "threads": ctx["threads"]}
    r = run_task("scoring", args, ctx["threads"])
    shutil.rmtree(out, ignore_errors=True)
    return {**r, "size": ctx["sizes"][0], "threads": ctx["threads"]}


def demo_section(ctx: dict, data_dir: Path) -> dict:
    """`ml-assets demo` (what `make demo` runs) timed end to end in a subprocess."""
    cmd = [sys.executable, "-m", "ml_assets.cli.main", "--data-dir", str(data_dir), "demo", "--json",
           "--scale", str(ctx["base_size"]), "--days", str(ctx["days"])]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=thread_env(ctx["threads"]))
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        return {"skipped": f"demo exited {proc.returncode}: {proc.stderr.strip()[-1500:]}",
                "wall_seconds": None}
    report = json.loads(proc.stdout)
    return {"wall_seconds": wall, "size": ctx["base_size"], "days": ctx["days"],
            "threads": ctx["threads"], "events": report["events"], "steps": report["steps"],
            "note": "`make demo` also creates/reuses .venv first; this times `ml-assets demo`"}


@contextlib.contextmanager
def demo_copy(data_dir: Path | None) -> Iterator[Path | None]:
    """A throwaway copy of a demo data dir (the load test flips its kill switch, reproduce
    writes scratch state), or None when there is no demo state with a champion. Without a
    previous model the load test still runs; only the kill switch reports why it did not."""
    from ml_assets.lib.core.workspace import Workspace
    from ml_assets.specs.loading import spec_from_env

    if data_dir is None or not (data_dir / "control.sqlite").exists():
        yield None
        return
    ws = Workspace.open(data_dir, spec_from_env(data_dir=data_dir))
    aliases = ws.registry.aliases(ws.spec.model_name)
    if not aliases.get("champion"):
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="ml_assets_bench_") as tmp:
        copy = Path(tmp) / "data"
        shutil.copytree(data_dir, copy, ignore=shutil.ignore_patterns("dagster_home", "bench"))
        yield copy


def _optional(module: str, attr: str):
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError):
        return None


def _at(levels: list[dict], clients: int) -> float | None:
    return next((x["p99_ms"] for x in levels if x["clients"] == clients), None)


def serving_slos(serving: dict | None = None) -> dict:
    """The latency SLOs the serving goals are judged by: the ones the section ran against,
    else the interface contract's (``{"lookup": {"clients", "p50", "p95", "p99"}, "predict":
    ...}``, milliseconds)."""
    if serving and serving.get("slo"):
        return serving["slo"]
    from ml_assets.lib.docs.interface_contract import load_contract
    from ml_assets.specs.loading import spec_from_env

    contract = load_contract(spec_from_env())
    return {path: contract.slo(path) for path in ("lookup", "predict")}


def serving_section(ctx: dict, demo_dir: Path | None) -> dict:
    """Lookup/realtime p50/p95/p99 at 1, 10 and 50 clients (and at the clients the interface
    contract states its SLOs at) and the kill switch's time to effect, from the serving
    package's load test (its own server process, over HTTP).

    ``lookup_p99_ms`` and ``realtime_p99_ms_50_clients`` are the p99s at the contract's clients
    (``[slo.latency_ms]``: lookup at 10, predict at 50 by default), as the contract defines its
    SLOs; ``lookup_p99_ms_worst`` is the worst lookup p99 over every level run.
    """
    from ml_assets.lib.core.paths import DataPaths
    from ml_assets.specs.loading import spec_from_env

    empty = dict.fromkeys(("lookup_p99_ms", "realtime_p99_ms_50_clients",
                           "kill_switch_effect_ms"))
    load_test = _optional("ml_assets.bench.serving_load", "run_bench")
    if load_test is None:
        return {**empty, "reason": "ml_assets.bench.serving_load.run_bench does not exist "
                                   "(the serving load test is not merged)"}
    if demo_dir is None:
        return {**empty, "reason": "no demo state with a champion: run `make demo` first or "
                                   "pass --with-demo"}
    slo = serving_slos()
    levels = tuple(sorted({1, 10, 50, *(s["clients"] for s in slo.values())}))
    report = load_test(DataPaths(demo_dir), spec_from_env(data_dir=demo_dir), concurrency=levels,
                       requests=ctx["serving_requests"])
    return {"lookup_p99_ms": _at(report["lookup"], slo["lookup"]["clients"]),
            "realtime_p99_ms_50_clients": _at(report["predict"], slo["predict"]["clients"]),
            "slo": slo,
            "lookup_p99_ms_worst": max(x["p99_ms"] for x in report["lookup"]),
            "kill_switch_effect_ms": report["kill_switch"].get("time_to_effect_ms"),
            "threads": {"server_openmp": report.get("server_omp_threads")},
            "note": f"p99 at the contract's clients: lookup at {slo['lookup']['clients']}, "
                    f"predict at {slo['predict']['clients']}",
            "load_test": report}


def reproduce_section(demo_dir: Path | None, threads: int) -> dict:
    """Retrain the demo champion from raw landing data and time it."""
    reproduce = _optional("ml_assets.lib.training.reproduce", "reproduce")
    if reproduce is None:
        return {"reproduce_seconds": None,
                "reason": "ml_assets.lib.training.reproduce does not exist (reproduce is not merged)"}
    if demo_dir is None:
        return {"reproduce_seconds": None, "reason": "no demo state: run `make demo` or pass "
                                                     "--with-demo"}
    from ml_assets.lib.core.workspace import Workspace
    from ml_assets.specs.loading import spec_from_env

    ws = Workspace.open(demo_dir, spec_from_env(data_dir=demo_dir))
    champion = ws.registry.aliases(ws.spec.model_name)["champion"]
    t0 = time.perf_counter()
    result = reproduce(ws, champion, threads=threads).as_dict()
    seconds = time.perf_counter() - t0
    failed = [c["detail"] for c in result["causes"] if c["kind"] == "rerun_failed"]
    return {"reproduce_seconds": None if failed else seconds, "version": champion,
            "identical": result["identical"], "threads": threads,
            "reason": f"the rerun failed after {seconds:.1f}s: {failed[0]}" if failed else None,
            "result": {k: result[k] for k in ("identical", "dataset_sha256_match",
                                              "artifact_sha256_match", "seconds", "causes")}}
