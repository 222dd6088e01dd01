"""Section 1: point-in-time feature build at several sizes of the demo world: the micro spec
(``micro_features``: compiled query vs hand-written DuckDB vs numpy searchsorted, every event a
target) and the full demo spec (``lib.features.build``, chunked) vs the pandas baseline."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from ml_assets.lib.features.spark_sql import spark_python

from .measure import TaskFailed, run_task
from .micro_features import SIDES


def growth_exponent(rows: list[int], seconds: list[float]) -> float | None:
    """Slope of log(seconds) against log(rows): 1.0 is linear growth."""
    if len(rows) < 2 or len(set(rows)) < 2:
        return None
    return float(np.polyfit(np.log(rows), np.log(seconds), 1)[0])


def _side(result: dict, threads: int) -> dict:
    return {"seconds": result["seconds"], "rows": result["rows"],
            "rows_per_second": result["rows"] / result["seconds"],
            "peak_rss_mb": result["peak_rss_mb"], "threads": threads,
            **{k: result[k] for k in ("chunks", "feature_seconds", "load_seconds",
                                      "first_run_seconds")
               if k in result}}


def _micro(base: dict, ctx: dict, work: Path) -> dict:
    """The three micro-spec sides, one subprocess each, then their values compared."""
    work.mkdir(parents=True, exist_ok=True)
    outs = {s: str(work / f"micro-{s}-s{base['size']:g}.parquet") for s in SIDES}
    sides = {}
    for side in SIDES:
        threads = 1 if side == "numpy" else ctx["threads"]  # numpy's sort and scans: one thread
        sides[side] = _side(run_task("micro", {**base, "side": side, "out": outs[side],
                                               "threads": threads}, threads), threads)
    comparison = run_task("micro_compare", {"outputs": outs}, 1)
    for path in outs.values():
        Path(path).unlink()
    fastest = min(("duckdb", "numpy"), key=lambda s: sides[s]["seconds"])
    return {**sides, "comparison": comparison, "fastest_hand_written": fastest,
            "compiled_vs_fastest": sides["compiled"]["seconds"] / sides[fastest]["seconds"]}


def _one_size(size: float, ctx: dict, work: Path) -> dict:
    base = {"size": size, "days": ctx["days"], "cache": ctx["cache"]}
    world = run_task("world", base, ctx["threads"])
    entry = {"size": size, "events": world["events"], "labels": world["labels"],
             "world": {k: world[k] for k in ("generation_seconds", "ingest_seconds", "cached",
                                             "built_at")}
             | {"peak_rss_mb": world["peak_rss_mb"]}}
    entry["micro"] = _micro(base, ctx, work)
    ours_dir = work / f"ml_assets-s{size:g}"
    ours = run_task("features_ml_assets", {**base, "out": str(ours_dir),
                                           "threads": ctx["threads"]}, ctx["threads"])
    entry["ml_assets"] = _side(ours, ctx["threads"])
    pandas_runs = world["events"] <= ctx["pandas_max_events"]
    if size == ctx["sizes"][0] and ctx["threads"] > 1 and pandas_runs:  # pandas has one thread
        one = run_task("features_ml_assets", {**base, "out": str(work / "one-thread"),
                                              "threads": 1}, 1)
        entry["ml_assets_one_thread"] = _side(one, 1)
        shutil.rmtree(work / "one-thread")
    if not pandas_runs:
        entry["pandas"] = {"skipped": f"capped: {world['events']:,} events is above "
                                      f"--pandas-max-events {ctx['pandas_max_events']:,}"}
        return entry
    theirs = work / f"pandas-s{size:g}.parquet"
    try:
        result = run_task("features_pandas", {**base, "out": str(theirs)}, 1,
                          timeout=ctx["pandas_timeout"])
    except TaskFailed as exc:
        entry["pandas"] = {"skipped": str(exc)}
        return entry
    entry["pandas"] = _side(result, 1)
    entry["comparison"] = run_task("compare", {"ours": [str(p) for p in
                                                        sorted(ours_dir.glob("*.parquet"))],
                                               "theirs": str(theirs)}, 1)
    theirs.unlink()
    entry["speedup_vs_pandas"] = result["seconds"] / ours["seconds"]
    return entry


def base_output(ctx: dict) -> Path:
    """Where the base size's ml_assets features stay for the scoring section."""
    return Path(ctx["work"]) / "features" / f"ml_assets-s{ctx['sizes'][0]:g}"


def feature_build_section(ctx: dict, log) -> dict:
    work = Path(ctx["work"]) / "features"
    runs = []
    for size in ctx["sizes"]:
        log(f"feature build at size {size:g} ...")
        runs.append(_one_size(size, ctx, work))
        if size != ctx["sizes"][0]:
            shutil.rmtree(work / f"ml_assets-s{size:g}")
    ours = [(r["events"], r["ml_assets"]["seconds"]) for r in runs]
    theirs = [(r["events"], r["pandas"]["seconds"]) for r in runs if "seconds" in r["pandas"]]
    compared = [r for r in runs if "comparison" in r]
    ratio = [r["speedup_vs_pandas"] for r in compared]
    events = [r["events"] for r in runs]
    return {
        "runs": runs,
        "micro_growth_exponent": {s: growth_exponent(events, [r["micro"][s]["seconds"]
                                                              for r in runs]) for s in SIDES},
        "micro_compiled_vs_fastest": runs[-1]["micro"]["compiled_vs_fastest"],  # largest size
        "micro_values_identical": all(r["micro"]["comparison"]["identical"] for r in runs),
        "growth_exponent_ml_assets": growth_exponent(*zip(*ours, strict=True)),
        "growth_exponent_pandas": growth_exponent(*zip(*theirs, strict=True)) if theirs else None,
        "speedup_vs_pandas": ratio[-1] if ratio else None,  # at the largest size both ran
        "speedup_vs_pandas_by_size": {f"{r['size']:g}": r["speedup_vs_pandas"] for r in compared},
        "values_identical": all(r["comparison"]["identical"] for r in compared)
        if compared else None,
        "max_abs_diff": max((r["comparison"]["max_abs_diff"] for r in compared), default=None),
        "peak_rss_mb_ml_assets": max(r["ml_assets"]["peak_rss_mb"] for r in runs),
        "rss_growth_exponent_ml_assets": growth_exponent(
            [r["events"] for r in runs], [r["ml_assets"]["peak_rss_mb"] for r in runs]),
        "rows_per_chunk_note": "lib.feature_build reads 30-day chunks plus a 30-day look-back; "
                               "memory grows with events per chunk, not with history length",
    }



def spark_section(ctx: dict, feature_build: dict) -> dict:
    """The demo spec's feature build on Spark against DuckDB (the feature build's ``ml_assets``
    side) on the two smallest worlds: where, if anywhere, Spark pays off on this machine.

    Returns
    -------
    dict
        ``runs`` (per size: events, DuckDB and Spark seconds, Spark's session start, the
        ratio), or ``skipped`` with the reason (no pyspark in ``spark_python()``, no Java).
    """
    runs = []
    for entry in feature_build["runs"][:2]:
        args = {"size": entry["size"], "days": ctx["days"], "cache": ctx["cache"],
                "threads": ctx["threads"]}
        try:
            spark = run_task("features_spark", args, ctx["threads"], python=spark_python())
        except TaskFailed as exc:
            return {"skipped": str(exc), "runs": runs}
        duck = entry["ml_assets"]
        runs.append({"size": entry["size"], "events": entry["events"], "rows": spark["rows"],
                     "duckdb_seconds": duck["seconds"], "spark_seconds": spark["seconds"],
                     "spark_session_seconds": spark["session_seconds"],
                     "spark_vs_duckdb": spark["seconds"] / duck["seconds"],
                     "same_rows": spark["rows"] == duck["rows"], "threads": ctx["threads"]})
    return {"runs": runs}
