"""Serving benchmark against the interface contract's SLOs.

Starts ``ml-assets serve`` as its own process on localhost, then measures with a minimal
keep-alive HTTP/1.1 client (asyncio streams: far less client CPU than a full HTTP library, so
the numbers are the server's, not the client's) at 1, 10 and 50 concurrent clients:
precomputed lookups (GET /scores/{id}) and realtime scoring (POST /predict). A level starts
once the server has written the prediction log of the previous predict level, so each level
measures its own path (the writing is charged to the predict level's CPU). Also measures the
kill switch's time to effect over HTTP. ``run_bench()`` returns the report as a dict.
"""

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

from ml_assets.lib.core.catalog import BATCH_SCORES, RAW_EVENTS, Catalog
from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.paths import DataPaths
from ml_assets.lib.core.workspace import Workspace
from ml_assets.lib.docs.interface_contract import load_contract
from ml_assets.lib.release.rollback import set_kill_switch
from ml_assets.serving.app import DEFAULT_HOST, free_port


async def _request(reader, writer, raw: bytes) -> tuple[int, bytes]:
    writer.write(raw)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    return status, await reader.readexactly(length)


def _get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode()


def _post(path: str, body: dict) -> bytes:
    data = json.dumps(body).encode()
    return (f"POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n\r\n").encode() + data


async def _level(host: str, port: int, requests: list[bytes], clients: int) -> dict:
    """``clients`` closed-loop connections share the request list; latency per request."""
    latencies, failures, versionless = [], 0, 0
    queue = iter(requests)

    async def worker():
        nonlocal failures, versionless
        reader, writer = await asyncio.open_connection(host, port)
        for raw in queue:
            t0 = time.perf_counter()
            status, body = await _request(reader, writer, raw)
            latencies.append(time.perf_counter() - t0)
            if status != 200:
                failures += 1
            elif b'"model_version"' not in body:
                versionless += 1
        writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    seconds = time.perf_counter() - t0
    ms = np.array(latencies) * 1e3
    return {"clients": clients, "requests": len(ms), "rps": round(len(ms) / seconds, 1),
            "p50_ms": round(float(np.percentile(ms, 50)), 3),
            "p95_ms": round(float(np.percentile(ms, 95)), 3),
            "p99_ms": round(float(np.percentile(ms, 99)), 3),
            "non_200": failures, "without_model_version": versionless}


def _workload(paths: DataPaths, spec: DatasetSpec, n: int) -> tuple[list[bytes], list[bytes]]:
    catalog = Catalog(paths.lake)
    files = catalog.table(BATCH_SCORES).files()[-48:]
    ids = pd.concat([pd.read_parquet(f, columns=[spec.event_id]) for f in files])[spec.event_id]
    lookups = [_get(f"/scores/{v}") for v in np.resize(ids.to_numpy(), n).tolist()]
    raw = catalog.table(RAW_EVENTS).files()[-24:]
    events = pd.concat([pd.read_parquet(f) for f in raw]).head(n)
    events = pd.concat([events] * (n // max(len(events), 1) + 1)).head(n)
    body = events.astype("object").where(events.notna(), None)
    body[spec.event_ts] = events[spec.event_ts].map(lambda t: t.isoformat())
    records = body.to_dict("records")
    fresh = 10**12 if spec.id_type == "int64" else "bench-"
    predicts = [_post("/predict", {**r, spec.event_id: fresh + i if isinstance(fresh, int)
                                   else f"{fresh}{i}"}) for i, r in enumerate(records)]
    return lookups, predicts


def _kill_switch_effect(paths: DataPaths, spec: DatasetSpec, host: str, port: int) -> dict:
    """Flip on, poll a lookup until the previous version answers, flip back (audited)."""
    registry = Workspace(paths, spec).registry
    aliases = registry.aliases(spec.model_name)
    if not aliases["previous"]:
        return {"skipped": "no previous model"}
    event_id = pd.read_parquet(Catalog(paths.lake).table(BATCH_SCORES).files()[-1],
                               columns=[spec.event_id])[spec.event_id].iloc[0]
    with httpx.Client(base_url=f"http://{host}:{port}") as client:
        t0 = time.perf_counter()
        set_kill_switch(registry, paths, spec, True, "bench", "bench: kill switch time to effect")
        polls = 0
        try:
            while client.get(f"/scores/{event_id}").json()["model_version"] != aliases["previous"]:
                polls += 1
            effect_ms = (time.perf_counter() - t0) * 1e3
        finally:
            set_kill_switch(registry, paths, spec, False, "bench", "bench: restore")
    return {"time_to_effect_ms": round(effect_ms, 2), "polls_before_effect": polls,
            "previous_version": aliases["previous"]}


def run_bench(paths: DataPaths, spec: DatasetSpec, concurrency: tuple[int, ...] = (1, 10, 50),
              requests: int = 2000, host: str = DEFAULT_HOST) -> dict:
    contract = load_contract(spec)
    port = free_port(host)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    server = subprocess.Popen([sys.executable, "-m", "ml_assets.cli.main", "--data-dir",
                               str(paths.root), "serve", "--host", host, "--port", str(port)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_ready(host, port, server)
        lookups, predicts = _workload(paths, spec, requests)
        report = {"cpu_count": os.cpu_count(), "server_omp_threads": 1,
                  "load_average_at_start": list(os.getloadavg()),
                  "slo": {"lookup": contract.slo("lookup"), "predict": contract.slo("predict")},
                  "lookup": [], "predict": []}
        logged = 0
        for clients in concurrency:
            for path, load in (("lookup", lookups), ("predict", predicts[: requests // 2])):
                cpu0 = _cpu_seconds(server.pid)
                level = asyncio.run(_level(host, port, load, clients))
                if path == "predict":  # its log records are written before the next level
                    logged += level["requests"]
                    level["log_settle_seconds"] = _settle_log(host, port, logged)
                # Server CPU per request (writing its prediction log included): comparable
                # across machines and background load.
                level["server_cpu_ms_per_request"] = round(
                    (_cpu_seconds(server.pid) - cpu0) * 1e3 / level["requests"], 3)
                report[path].append(level)
        report["kill_switch"] = _kill_switch_effect(paths, spec, host, port)
        report["server_predict_batches"] = httpx.get(
            f"http://{host}:{port}/health").json()["predict_batches"]
    finally:
        server.terminate()
        server.wait(timeout=15)
    report["within_slo"] = _verdict(report, contract.config)
    return report


def _verdict(report: dict, config: dict) -> dict:
    out = {}
    for path in ("lookup", "predict"):
        slo = report["slo"][path]
        # The level the contract states its figures at (else the highest concurrency run).
        level = next((r for r in report[path] if r["clients"] == slo.get("clients")),
                     report[path][-1])
        out[path] = all(level[f"{q}_ms"] <= slo[q] for q in ("p50", "p95", "p99")) and all(
            r["non_200"] == 0 and r["without_model_version"] == 0 for r in report[path])
        out[f"{path}_throughput"] = max(r["rps"] for r in report[path]) >= config["slo"][
            "throughput_rps"][path]
    effect = report["kill_switch"].get("time_to_effect_ms")
    out["kill_switch"] = effect is not None and effect <= config["slo"][
        "kill_switch_time_to_effect_ms"]
    return out


def _settle_log(host: str, port: int, logged: int, timeout: float = 30.0) -> float:
    """Wait until the server's prediction log has written (or dropped) ``logged`` records, so
    each level measures its own path, not the previous level's log flush; seconds waited."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        log = httpx.get(f"http://{host}:{port}/health").json()["prediction_log"]
        if log["written"] + log["dropped"] >= logged:
            break
        time.sleep(0.05)
    return round(time.perf_counter() - t0, 3)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc; 0.0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wait_ready(host: str, port: int, server: subprocess.Popen) -> None:
    """Wait until the server answers ``/health``, for as long as its process lives: loading a
    large lake's score index takes minutes (108 s at ``--scale 20``), so no fixed deadline;
    a server that fails to start exits, and its stderr is raised."""
    while server.poll() is None:
        try:
            if httpx.get(f"http://{host}:{port}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"server exited: {server.stderr.read().decode()[-2000:]}")


def render(report: dict) -> str:
    load = ", ".join(f"{x:.1f}" for x in report["load_average_at_start"])
    lines = [f"serving benchmark ({report['cpu_count']} CPUs, server OMP threads "
             f"{report['server_omp_threads']}, machine load average {load})"]
    for path in ("lookup", "predict"):
        slo = report["slo"][path]
        ok = report["within_slo"]
        lines.append(f"{path:<8} SLO p50/p95/p99 {slo['p50']}/{slo['p95']}/{slo['p99']} ms at "
                     f"{slo.get('clients')} clients: "
                     f"latency {'within' if ok[path] else 'OUTSIDE'}, throughput "
                     f"{'within' if ok[path + '_throughput'] else 'OUTSIDE'} SLO")
        for r in report[path]:
            lines.append(f"  {r['clients']:>3} clients: p50 {r['p50_ms']:7.2f}  p95 "
                         f"{r['p95_ms']:7.2f}  p99 {r['p99_ms']:7.2f} ms  {r['rps']:8.1f} req/s "
                         f" non-200 {r['non_200']}  server CPU "
                         f"{r['server_cpu_ms_per_request']:.2f} ms/req")
    ks = report["kill_switch"]
    lines.append(f"kill switch time to effect: {ks.get('time_to_effect_ms')} ms "
                 f"({'within' if report['within_slo']['kill_switch'] else 'OUTSIDE'} 1 s)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from ml_assets.specs.loading import spec_from_env

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, help="default $ML_ASSETS_DATA_DIR or ./data")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    paths = DataPaths(args.data_dir.resolve()) if args.data_dir else DataPaths.from_env()
    report = run_bench(paths, spec_from_env(data_dir=paths.root), requests=args.requests)
    print(json.dumps(report, indent=2) if args.json else render(report))
    return 0 if all(report["within_slo"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
