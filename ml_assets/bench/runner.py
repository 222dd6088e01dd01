"""Run every section, derive the headline figures and the goals, write the reports."""

from __future__ import annotations

import json
import os
import platform
import tempfile
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from ml_assets.lib.core.paths import atomic_write_bytes

from .feature_section import base_output, feature_build_section
from .measure import peak_rss_mb
from .report import write_reports
from .sections import (
    demo_copy,
    demo_section,
    drift_section,
    reproduce_section,
    scoring_section,
    serving_section,
)

PACKAGES = ("duckdb", "pandas", "numpy", "pyarrow", "scikit-learn", "scipy", "dagster",
            "threadpoolctl", "evidently")
NOISE_NOTE = ("Figures are wall-clock on a shared machine (other processes were running), so "
              "they are noisy; ratios within one run are more stable than absolute seconds.")


def _versions() -> dict:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def _meminfo() -> dict:
    with open("/proc/meminfo") as fh:
        kib = {line.split(":")[0]: int(line.split()[1]) for line in fh}
    return {"mem_total_gib": kib["MemTotal"] / 2**20, "swap_total_gib": kib["SwapTotal"] / 2**20,
            "swap_used_gib": (kib["SwapTotal"] - kib["SwapFree"]) / 2**20}


def _goal(goal: str, target: str, value, met, note: str | None = None) -> dict:
    return {"goal": goal, "target": target, "value": value, "met": met, "note": note}


def _le(value, limit):
    return None if value is None else bool(value <= limit)


def goals(r: dict) -> list[dict]:
    fb, h = r["feature_build"], r["headline"]
    sizes_note = f"at size {fb['runs'][-1]['size']:g}" if fb["runs"] else None
    speed = h["feature_build_speedup_vs_pandas"]
    growth = h["feature_build_growth_exponent"]
    demo = r["demo"].get("wall_seconds")
    swap = r["machine"]
    return [
        _goal("feature build vs pandas", ">= 10x", speed, None if speed is None else speed >= 10,
              "at the largest size where pandas ran"),
        _goal("feature values identical", "abs diff <= 1e-9 x max(1, abs value)",
              h["feature_values_identical"], h["feature_values_identical"]),
        _goal("feature build grows linearly", "exponent <= 1.2", growth, _le(growth, 1.2),
              sizes_note),
        _goal("drift vs Evidently", ">= 5x", h["drift_speedup_vs_evidently"],
              None if h["drift_speedup_vs_evidently"] is None
              else h["drift_speedup_vs_evidently"] >= 5, r["drift"].get("evidently_reason")),
        _goal("scoring overhead vs bare predict", "<= 1.5x", h["scoring_overhead_vs_bare_predict"],
              _le(h["scoring_overhead_vs_bare_predict"], 1.5)),
        _goal("lookup p99", "< 5 ms", h["lookup_p99_ms"], _le(h["lookup_p99_ms"], 5),
              r["serving"].get("reason")),
        _goal("realtime p99 at 50 clients", "< 50 ms", h["realtime_p99_ms_50_clients"],
              _le(h["realtime_p99_ms_50_clients"], 50), r["serving"].get("reason")),
        _goal("`ml-assets demo` wall time", "< 300 s", demo, _le(demo, 300),
              r["demo"].get("skipped")),
        _goal("no swapping", "swap used 0", swap["swap_used_gib"], swap["swap_used_gib"] == 0,
              f"swap configured: {swap['swap_total_gib']:.1f} GiB; peak RSS "
              f"{h['peak_rss_mb']:,.0f} MiB of {swap['mem_total_gib']:.1f} GiB"),
    ]


def _demo_times(r: dict) -> dict:
    """Generation, feature build, training and scoring of the default demo: from the timed demo
    when it ran, else from this run's own measurements of the same steps."""
    steps = {s["step"]: s["seconds"] for s in r["demo"].get("steps", [])}
    if steps:
        def pick(word):
            return sum(v for k, v in steps.items() if word in k)
        src = "ml-assets demo (Dagster runs)"
        return {"generation": {"seconds": pick("generate"), "source": src},
                "ingest": {"seconds": pick("ingest"), "source": src},
                "feature build": {"seconds": pick("features"), "source": src},
                "training (2 models)": {"seconds": pick("train"), "source": src},
                "scoring": {"seconds": pick("score"), "source": src}}
    base = r["feature_build"]["runs"][0]
    sc = r["scoring"]
    world = "cached world, built " + base["world"]["built_at"] if base["world"]["cached"] \
        else "this run"
    return {
        "generation": {"seconds": base["world"]["generation_seconds"], "source": world},
        "ingest": {"seconds": base["world"]["ingest_seconds"], "source": world + " (no Dagster)"},
        "feature build": {"seconds": base["ml_assets"]["seconds"],
                          "source": "lib.feature_build, this run"},
        "training (1 model)": {"seconds": sc.get("training_seconds"),
                               "source": "fit_model on the 60-day window, this run"},
        "scoring": {"seconds": (sc.get("seconds") or {}).get("end_to_end"),
                    "source": "batch scoring end to end, one model, this run"},
    }


def _checkpoint(r: dict, out: Path) -> None:
    """Figures so far, so a run killed late (it takes long) still leaves its numbers."""
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / "bench.partial.json", json.dumps(r, indent=1, default=str).encode())


def _guarded(section, *args) -> dict:
    """Sections built on other teams' machinery report their failure instead of losing the
    whole run's figures."""
    try:
        return section(*args)
    except Exception as exc:  # any failure becomes the reason its figures are null
        return {"reason": f"section failed: {type(exc).__name__}: {exc}"}


def run_bench(size: float = 1.0, factors: tuple[float, ...] = (1, 4, 16), days: int = 120,
              threads: int | None = None, out: Path = Path("bench_results"),
              cache: Path | None = None, pandas_max_events: int = 5_000_000,
              pandas_timeout: float = 3600, with_demo: bool = False,
              sections: tuple[str, ...] = ("drift", "scoring", "serving", "reproduce"),
              data_dir: Path | None = None, log=print) -> dict:
    threads = threads or min(2, os.cpu_count() or 1)
    started = datetime.now(UTC).isoformat(timespec="seconds")
    with tempfile.TemporaryDirectory(prefix="ml_assets_bench_") as work:
        ctx = {"base_size": size, "sizes": [size * f for f in factors], "days": days,
               "threads": threads, "work": work, "cache": str(cache or out / "worlds"),
               "pandas_max_events": pandas_max_events, "pandas_timeout": pandas_timeout,
               "serving_requests": 2000}
        r: dict = {"started_at": started, "noise_note": NOISE_NOTE, "versions": _versions(),
                   "threads": {"duckdb": threads, "openmp": threads, "pandas": 1},
                   "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                               "load_average_at_start": os.getloadavg(), **_meminfo()},
                   "sizes": {"base": size, "factors": list(factors), "days": days}}
        r["feature_build"] = feature_build_section(ctx, log)
        _checkpoint(r, out)
        r["sizes"]["events"] = [x["events"] for x in r["feature_build"]["runs"]]
        skipped = {"skipped": "section not selected"}
        log("drift ...")
        r["drift"] = drift_section(ctx) if "drift" in sections else skipped
        _checkpoint(r, out)
        log("batch scoring ...")
        features = [str(p) for p in sorted(base_output(ctx).glob("*.parquet"))]
        r["scoring"] = scoring_section(ctx, features) if "scoring" in sections else skipped
        _checkpoint(r, out)
        demo_dir = Path(work) / "demo"
        log("demo ..." if with_demo else "demo: skipped (pass --with-demo)")
        r["demo"] = demo_section(ctx, demo_dir) if with_demo else {
            "skipped": "not asked (pass --with-demo; it takes minutes)", "wall_seconds": None}
        _checkpoint(r, out)
        with demo_copy(demo_dir if with_demo else data_dir) as copy:
            log("serving and kill switch ...")
            r["serving"] = (_guarded(serving_section, ctx, copy) if "serving" in sections
                            else skipped)
            log("reproduce ...")
            r["reproduce"] = (_guarded(reproduce_section, copy, threads)
                              if "reproduce" in sections else skipped)
    r["machine"].update(_meminfo(), load_average_at_end=os.getloadavg())
    r["headline"] = headline(r)
    r["goals"] = goals(r)
    r["default_demo_times"] = _demo_times(r)
    r["plot_note"] = "PNG skipped: matplotlib is not a dependency; an SVG is written instead"
    r["files"] = write_reports(r, out)
    return r


def headline(r: dict) -> dict:
    fb, sv = r["feature_build"], r["serving"]
    peaks = [x["ml_assets"]["peak_rss_mb"] for x in fb["runs"]]
    peaks += [r["scoring"].get("peak_rss_mb") or 0, peak_rss_mb()]
    return {
        "feature_build_speedup_vs_pandas": fb["speedup_vs_pandas"],
        "feature_values_identical": fb["values_identical"],
        "feature_build_growth_exponent": fb["growth_exponent_ml_assets"],
        "drift_speedup_vs_evidently": r["drift"].get("speedup_vs_evidently"),
        "drift_speedup_vs_evidently_reason": r["drift"].get("evidently_reason")
        or r["drift"].get("skipped"),
        "drift_ratio_vs_numpy": r["drift"].get("ratio_vs_numpy"),
        "scoring_overhead_vs_bare_predict": r["scoring"].get("overhead_vs_bare_predict"),
        "lookup_p99_ms": sv.get("lookup_p99_ms"),
        "realtime_p99_ms_50_clients": sv.get("realtime_p99_ms_50_clients"),
        "kill_switch_effect_ms": sv.get("kill_switch_effect_ms"),
        "serving_reason": sv.get("reason") or sv.get("skipped"),
        "reproduce_seconds": r["reproduce"].get("reproduce_seconds"),
        "reproduce_reason": r["reproduce"].get("reason") or r["reproduce"].get("skipped"),
        "demo_wall_seconds": r["demo"].get("wall_seconds"),
        "peak_rss_mb": max(peaks),
        "sizes": r["sizes"],
        "threads": r["threads"],
        "library_versions": r["versions"],
    }
