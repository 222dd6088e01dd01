"""A year of hourly history end to end, landing to monitoring, as a user runs it: each README
command in its own ``ml-assets`` process, its wall time split into process start, planning,
Dagster recording and compute.

The split comes from bench-only probes installed in the child process before the CLI runs
(``python -m ml_assets.bench.year_section run <ml-assets args>``): perf_counter accumulators
around planning (the CLI's range pre-flight ``cli.runs._planned_runs``, Dagster's run creation
``create_run_for_job`` and execution-plan creation ``create_execution_plan``,
``ExecutionPlan.build``), its event-log writes (``DagsterInstance.handle_new_event`` and the SQLite event log's
``store_event``/``store_event_batch``) and our ``build_definitions``. Time is exclusive (a probe
nested in another counts once, in the inner one), so the parts never exceed the wall time;
compute is what remains. The child prints the totals as its last stdout line (``PROBE``).

``python -m ml_assets.bench.year_section section [--events N] [--days D] [--work DIR]`` runs
the whole section and prints its JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from functools import wraps
from pathlib import Path

from .measure import thread_env
from .year_world import YearConfig, write_year

PROBE = "YEAR_SECTION_PROBE "
LAUNCHED_AT = "YEAR_SECTION_LAUNCHED_AT"  # the parent's time.time() at launch, for start-up
GOAL_SECONDS = 300.0


class _Probes:
    """Exclusive perf_counter time and call counts per bucket; nesting subtracts inner time."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self.events_written = 0
        self._stack: list[list[float]] = []  # [start, time spent in nested probes]

    def wrap(self, bucket: str, fn, events=None):
        @wraps(fn)
        def timed(*args, **kwargs):
            outermost_store = events is not None and not any(
                frame[2] for frame in self._stack)
            frame = [time.perf_counter(), 0.0, events is not None]
            self._stack.append(frame)
            try:
                return fn(*args, **kwargs)
            finally:
                self._stack.pop()
                elapsed = time.perf_counter() - frame[0]
                self.seconds[bucket] = self.seconds.get(bucket, 0.0) + elapsed - frame[1]
                self.calls[bucket] = self.calls.get(bucket, 0) + 1
                if self._stack:
                    self._stack[-1][1] += elapsed
                if outermost_store:  # a batch stored event by event counts its events once
                    self.events_written += events(*args)
        return timed

    def as_dict(self) -> dict:
        return {"seconds": self.seconds, "calls": self.calls,
                "events_written": self.events_written}


def install_probes() -> _Probes:
    """Wrap Dagster's planning and event-log writes and our definitions build (bench only).

    Returns
    -------
    _Probes
        Its ``seconds`` buckets: ``planning``, ``recording``, ``definitions``. The planned
        events Dagster writes while creating a run count as recording (exclusive time).
    """
    import dagster._core.execution.api as api
    from dagster import DagsterInstance
    from dagster._core.execution.plan.plan import ExecutionPlan
    from dagster._core.storage.event_log.sql_event_log import SqlEventLogStorage
    from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

    import ml_assets.cli.runs as runs
    import ml_assets.definitions as definitions

    probes = _Probes()
    ExecutionPlan.build = staticmethod(probes.wrap("planning", ExecutionPlan.build))
    api.create_execution_plan = probes.wrap("planning", api.create_execution_plan)
    DagsterInstance.create_run_for_job = probes.wrap("planning",
                                                     DagsterInstance.create_run_for_job)
    runs._planned_runs = probes.wrap("planning", runs._planned_runs)
    DagsterInstance.handle_new_event = probes.wrap("recording", DagsterInstance.handle_new_event)
    for cls in (SqliteEventLogStorage, SqlEventLogStorage):
        for name, count in (("store_event", lambda *_: 1),
                            ("store_event_batch", lambda _self, events: len(events))):
            if name in cls.__dict__:
                setattr(cls, name, probes.wrap("recording", cls.__dict__[name], count))
    definitions.build_definitions = probes.wrap("definitions", definitions.build_definitions)
    return probes


def _child(argv: list[str]) -> int:
    """``ml-assets argv`` in this process with the probes on; the probe totals go last.
    ``land`` never imports Dagster, so it runs unprobed: the probes' import of Dagster would
    otherwise add seconds to its start-up that the real command does not pay."""
    probes = _Probes() if "land" in argv else install_probes()
    from ml_assets.cli.main import main

    entered = time.time()
    t0 = time.perf_counter()
    code = 1
    try:
        code = main(argv)
    finally:
        launched = float(os.environ.get(LAUNCHED_AT, entered))
        print(PROBE + json.dumps({**probes.as_dict(), "startup": entered - launched,
                                  "main": time.perf_counter() - t0, "exit_code": code}),
              flush=True)
    return code


def tree_bytes(root: Path) -> int:
    """Total size in bytes of the files under ``root`` (0 when it does not exist)."""
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def dagster_event_rows(home: Path) -> int:
    """Events every run under a Dagster home recorded, read through Dagster's own storage (the
    SQLite index mirrors asset events, so counting its files' rows would count them twice)."""
    import dagster as dg  # only the parent needs it, once, after the commands ran

    instance = dg.DagsterInstance.from_config(str(home))
    try:
        return sum(len(instance.all_logs(run.run_id)) for run in instance.get_runs())
    finally:
        instance.dispose()


def run_command(name: str, args: list[str], spec: Path, data_dir: Path, threads: int) -> dict:
    """One ``ml-assets`` command as a probed subprocess: its wall time and how it splits.

    Parameters
    ----------
    name : str
        The label of the command in the report.
    args : list of str
        The ``ml-assets`` arguments after ``--spec``/``--data-dir`` (e.g. ``["train", ...]``).
    spec, data_dir : Path
        Passed as ``--spec`` and ``--data-dir``.
    threads : int
        The child's native thread pools are capped to this (``measure.thread_env``).

    Returns
    -------
    dict
        ``wall``, ``startup``, ``planning``, ``recording``, ``definitions`` and ``compute``
        seconds (``compute`` = wall - the others), ``events_written`` (Dagster events stored),
        ``exit_code``, ``calls`` per probe, ``output`` (the command's ``--json`` answer when it
        gave one) and ``stderr_tail`` when it failed.
    """
    argv = ["--spec", str(spec), "--data-dir", str(data_dir), *args]
    env = {**thread_env(threads), LAUNCHED_AT: repr(time.time())}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "ml_assets.bench.year_section", "run", *argv],
                          capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    lines = proc.stdout.splitlines()
    probe = next((json.loads(x[len(PROBE):]) for x in reversed(lines) if x.startswith(PROBE)),
                 {"seconds": {}, "calls": {}, "events_written": 0, "startup": 0.0})
    parts = {k: probe["seconds"].get(k, 0.0) for k in ("planning", "recording", "definitions")}
    out = "\n".join(x for x in lines if not x.startswith(PROBE))
    try:
        output = json.loads(out)
    except ValueError:
        output = out[-2000:]
    return {"command": name, "args": args, "wall": wall, "startup": probe["startup"], **parts,
            "compute": wall - probe["startup"] - sum(parts.values()),
            "events_written": probe["events_written"], "calls": probe["calls"],
            "exit_code": proc.returncode, "output": output,
            "stderr_tail": proc.stderr[-3000:] if proc.returncode else None}


def commands(world: dict, train_end: str) -> list[tuple[str, list[str]]]:
    """The README's "Your own data" commands over the world: land, ingest + features over the
    history, train ending at ``train_end``, score + monitor from it to the end."""
    start, end = world["start"][:10], world["end"][:10]
    return [("land", ["land", "--json", "--events", world["events_dir"],
                      "--labels", world["labels_csv"]]),
            ("ingest features", ["run", "ingest", "features", "--json", "--from", start,
                                 "--to", end]),
            ("train", ["train", "--json", "--end", train_end]),
            ("score monitor", ["run", "score", "monitor", "--json", "--from", train_end,
                               "--to", end])]


def year_section(ctx: dict, log=print) -> dict:
    """A generated year (``year_world``) through land, ingest+features, train, score+monitor,
    each command timed in its own process with its time split (``run_command``).

    Parameters
    ----------
    ctx : dict
        ``work`` (a scratch directory), ``threads``; optional ``year_events`` (350,000),
        ``year_days`` (365), ``year_grain`` (the spec's partition grain, "daily") and
        ``year_score_days`` (45: the days after training's end that are scored and monitored).
    log : callable
        Progress lines.

    Returns
    -------
    dict
        ``world`` (what was generated and how long it took), ``commands`` (one ``run_command``
        dict each, in order; a failed command ends the list), ``total_seconds`` (landing to
        monitoring: the commands' wall times), ``goal_seconds`` and ``met``, the Dagster home's
        ``dagster_home_bytes`` and ``dagster_event_rows`` at the end, ``events_written`` and
        ``load_average`` before and after.
    """
    cfg = YearConfig(events=ctx.get("year_events", YearConfig.events),
                     days=ctx.get("year_days", YearConfig.days),
                     partition_grain=ctx.get("year_grain", YearConfig.partition_grain))
    train_end = (cfg.end - timedelta(days=ctx.get("year_score_days", 45))).date().isoformat()
    with tempfile.TemporaryDirectory(prefix="year_", dir=ctx["work"]) as tmp:
        root = Path(tmp)
        load_before = os.getloadavg()
        t0 = time.perf_counter()
        world = write_year(root / "export", cfg)
        world["generation_seconds"] = time.perf_counter() - t0
        log(f"year: {world['events']:,} events in {world['hourly_files']:,} hourly files")
        data_dir, spec, runs = root / "data", Path(world["spec"]), []
        for name, args in commands(world, train_end):
            runs.append(run_command(name, args, spec, data_dir, ctx["threads"]))
            r = runs[-1]
            log(f"year: {name}: {r['wall']:.1f}s (planning {r['planning']:.1f}, recording "
                f"{r['recording']:.1f}, compute {r['compute']:.1f}) exit {r['exit_code']}")
            if r["exit_code"]:
                break
        home = data_dir / "dagster_home"
        total = sum(r["wall"] for r in runs)
        ok = len(runs) == 4 and not any(r["exit_code"] for r in runs)
        return {"world": world, "partition_grain": cfg.partition_grain, "train_end": train_end, "commands": runs,
                "total_seconds": total, "goal_seconds": GOAL_SECONDS,
                "met": bool(ok and total < GOAL_SECONDS) if ok else None,
                "dagster_home_bytes": tree_bytes(home),
                "dagster_event_rows": dagster_event_rows(home) if home.exists() else 0,
                "events_written": sum(r["events_written"] for r in runs),
                "threads": ctx["threads"],
                "load_average": {"before": load_before, "after": os.getloadavg()}}


def _main() -> int:
    if sys.argv[1:2] == ["run"]:
        return _child(sys.argv[2:])
    parser = argparse.ArgumentParser(description="the bench's year section on its own")
    parser.add_argument("section", choices=["section"])
    parser.add_argument("--events", type=int, default=YearConfig.events)
    parser.add_argument("--days", type=int, default=YearConfig.days)
    parser.add_argument("--score-days", type=int, default=45)
    parser.add_argument("--grain", choices=["daily", "hourly"], default="daily")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()))
    a = parser.parse_args()
    r = year_section({"work": str(a.work), "threads": a.threads, "year_events": a.events,
                      "year_days": a.days, "year_score_days": a.score_days,
                      "year_grain": a.grain},
                     log=lambda m: print(m, file=sys.stderr, flush=True))
    print(json.dumps(r, indent=1, default=str))
    return 0 if r["met"] is not None else 1


if __name__ == "__main__":
    sys.exit(_main())
