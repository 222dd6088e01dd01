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

from . import SECTIONS
from .feature_section import base_output, feature_build_section, spark_section
from .measure import peak_rss_mb
from .report import write_reports
from .sections import (
    demo_copy,
    demo_section,
    drift_section,
    estimation_section,
    ingest_section,
    reproduce_section,
    scoring_section,
    serving_section,
    serving_slos,
)
from .year_section import year_section

# The partition grains the ingest and scoring sections time side by side.
GRAINS = ("hourly", "daily")
PACKAGES = ("duckdb", "pandas", "numpy", "pyarrow", "scikit-learn", "scipy", "dagster",
            "threadpoolctl")
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


def _per_grain(goal: str, target: str, values: dict, test, section: dict,
               files_key: str) -> list[dict]:
    """One goal per partition grain the section measured (hourly: what the demo writes)."""
    return [_goal(f"{goal}, {g} partitions", target, values.get(g), test(values.get(g)),
                  section.get("skipped") or f"{section.get(files_key, {}).get(g)} files written")
            for g in GRAINS]


def _ge(value, floor):
    return None if value is None else bool(value >= floor)


def goals(r: dict) -> list[dict]:
    """Issue 18's goals, each with the value this run measured (None: not measured, and why)."""
    fb, h = r["feature_build"], r["headline"]
    at = f"at {fb['runs'][-1]['events']:,} events" if fb["runs"] else None
    ratio, grow = h["feature_build_vs_fastest_hand_written"], h["feature_build_growth_exponent"]
    full = h["full_spec_growth_exponent"]
    demo = r["demo"].get("wall_seconds")
    est = r["estimation"]
    err = est.get("mean_abs_error") or {}
    err_gap = (None if err.get("nannyml") is None
               else err["ml_assets"] - err["nannyml"])
    swap = r["machine"]
    return [
        _goal("feature build vs fastest hand-written", "<= 1.2x", ratio, _le(ratio, 1.2),
              f"micro spec, every event a target, {at}; fastest: "
              f"{fb['runs'][-1]['micro']['fastest_hand_written'] if fb['runs'] else None}"),
        _goal("feature values identical to hand-written", "counts, cents, gaps equal",
              h["feature_values_identical"], h["feature_values_identical"],
              "micro spec, three sides joined on event_id, every size"),
        _goal("feature build growth (compiled query)", "exponent <= 1.1", grow, _le(grow, 1.1),
              f"micro spec, sizes {r['sizes']['factors']} x {r['sizes']['base']:g}"),
        _goal("full demo spec build growth", "exponent <= 1.1", full, _le(full, 1.1),
              "lib.features.build, 30-day chunks"),
        _goal("full demo spec identical to pandas", "abs diff <= 1e-9 x max(1, abs value)",
              h["full_spec_identical_to_pandas"], h["full_spec_identical_to_pandas"]),
        _goal("a year of hourly history, landing to monitoring", "< 300 s",
              h["year_seconds"], _le(h["year_seconds"], 300), r["year"].get("skipped")),
        _goal("`make demo` wall time", "< 180 s", demo, _le(demo, 180),
              r["demo"].get("skipped") or f"size {r['demo'].get('size')}"),
        *_per_grain("scoring end to end vs bare predict_proba", "<= 1.5x",
                    h["scoring_overhead_vs_bare_predict"], lambda v: _le(v, 1.5), r["scoring"],
                    "partitions_written"),
        *_per_grain("event ingest (landing -> raw_events)", ">= 500,000 rows/s",
                    h["ingest_rows_per_second"], lambda v: _ge(v, 500_000), r["ingest"],
                    "partitions"),
        _goal("drift vs Evidently", ">= 20x", h["drift_speedup_vs_evidently"],
              _ge(h["drift_speedup_vs_evidently"], 20), r["drift"].get("evidently_reason")),
        _goal("estimated AUC vs NannyML CBPE: speed", ">= 1x", h["estimation_speedup_vs_nannyml"],
              _ge(h["estimation_speedup_vs_nannyml"], 1),
              est.get("skipped") or (None if est.get("speedup_vs_nannyml") else
                                     est.get("nannyml"))),
        _goal("estimated AUC vs NannyML CBPE: error", "mean abs error <= NannyML's + 0.002",
              err_gap, _le(err_gap, 0.002), "value: ours minus NannyML's, vs realized AUC"),
        *_serving_goals(h, r["serving"]),
        _goal("no swapping", "swap used 0", swap["swap_used_gib"], swap["swap_used_gib"] == 0,
              f"swap configured: {swap['swap_total_gib']:.1f} GiB; peak RSS "
              f"{h['peak_rss_mb']:,.0f} MiB of {swap['mem_total_gib']:.1f} GiB"),
    ]


def _serving_goals(h: dict, serving: dict) -> list[dict]:
    """p99 of lookups and realtime scoring at the clients the interface contract states its
    SLOs at (10 and 50 by default), against the contract's p99."""
    slo, why = serving_slos(serving), serving.get("reason")
    return [
        _goal("lookup p99 at the contract's clients", f"< {slo['lookup']['p99']:g} ms",
              h["lookup_p99_ms"], _le(h["lookup_p99_ms"], slo["lookup"]["p99"]),
              why or f"{slo['lookup']['clients']} clients"),
        _goal("realtime p99 at the contract's clients", f"< {slo['predict']['p99']:g} ms",
              h["realtime_p99_ms_50_clients"],
              _le(h["realtime_p99_ms_50_clients"], slo["predict"]["p99"]),
              why or f"{slo['predict']['clients']} clients"),
    ]


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


def _threads(threads: int) -> dict:
    """The caps every worker runs under (``measure.thread_env``) and the numpy side's one."""
    return {"duckdb": threads, "openmp": threads, "blas": threads, "numpy_searchsorted": 1,
            "pandas": 1, "peer_tools_openmp_blas": threads}


def run_bench(size: float = 1.0, factors: tuple[float, ...] = (1, 4, 16), days: int = 120,
              threads: int | None = None, out: Path = Path("bench_results"),
              cache: Path | None = None, pandas_max_events: int = 5_000_000,
              pandas_timeout: float = 3600, with_demo: bool = False,
              sections: tuple[str, ...] = SECTIONS, data_dir: Path | None = None,
              peers_python: str | None = None, log=print) -> dict:
    """Every section in one run; the result is also written as ``bench.json``/``bench.md``.

    Parameters
    ----------
    size, factors, days : float, tuple of float, int
        The feature build runs on worlds of ``size * factor`` x the demo (1.0 is about 1M
        events over ``days``); the other sections use the base size.
    threads : int, optional
        DuckDB, OpenMP and BLAS threads of every worker (default: min(2, CPUs)).
    sections : tuple of str
        Of ``SECTIONS``; the feature build always runs.
    peers_python : str, optional
        The Python of ``make bench-peers`` (Evidently, NannyML); None leaves their figures
        None with the reason.

    Returns
    -------
    dict
        Every section's figures, ``headline``, ``goals`` and the report ``files``.
    """
    threads = threads or min(2, os.cpu_count() or 1)
    started = datetime.now(UTC).isoformat(timespec="seconds")
    with tempfile.TemporaryDirectory(prefix="ml_assets_bench_") as work:
        ctx = {"base_size": size, "sizes": [size * f for f in factors], "days": days,
               "threads": threads, "work": work, "cache": str(cache or out / "worlds"),
               "pandas_max_events": pandas_max_events, "pandas_timeout": pandas_timeout,
               "serving_requests": 2000, "peers_python": peers_python}
        r: dict = {"started_at": started, "noise_note": NOISE_NOTE, "versions": _versions(),
                   "threads": _threads(threads),
                   "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                               "load_average_at_start": os.getloadavg(), **_meminfo()},
                   "sizes": {"base": size, "factors": list(factors), "days": days}}
        r["feature_build"] = feature_build_section(ctx, log)
        _checkpoint(r, out)
        r["sizes"]["events"] = [x["events"] for x in r["feature_build"]["runs"]]
        skipped = {"skipped": "section not selected"}
        log("a year of hourly history ..." if "year" in sections else "year: not selected")
        r["year"] = _guarded(year_section, ctx, log) if "year" in sections else skipped
        _checkpoint(r, out)
        log("feature build on Spark ..." if "spark" in sections else "spark: not selected")
        r["spark"] = (spark_section(ctx, r["feature_build"]) if "spark" in sections
                      else skipped)
        _checkpoint(r, out)
        for name, section in (("ingest", ingest_section), ("drift", drift_section),
                              ("estimation", estimation_section)):
            log(f"{name} ..." if name in sections else f"{name}: not selected")
            r[name] = section(ctx) if name in sections else skipped
            _checkpoint(r, out)
        log("batch scoring ..." if "scoring" in sections else "batch scoring: not selected")
        features = [str(p) for p in sorted(base_output(ctx).glob("*.parquet"))]
        r["scoring"] = scoring_section(ctx, features) if "scoring" in sections else skipped
        _checkpoint(r, out)
        demo_dir = Path(work) / "demo"
        log("demo ..." if with_demo else "demo: skipped (pass --with-demo)")
        r["demo"] = demo_section(ctx, demo_dir) if with_demo else {
            "skipped": "not asked (pass --with-demo; it takes minutes)", "wall_seconds": None}
        _checkpoint(r, out)
        r["serving"] = r["reproduce"] = skipped
        wanted = [s for s in ("serving", "reproduce") if s in sections]
        log(f"{' and '.join(wanted)} ..." if wanted else "serving, reproduce: not selected")
        if wanted:  # both on a throwaway copy of the data directory's demo
            with demo_copy(demo_dir if with_demo else data_dir) as copy:
                if "serving" in wanted:
                    r["serving"] = _guarded(serving_section, ctx, copy)
                if "reproduce" in wanted:
                    r["reproduce"] = _guarded(reproduce_section, copy, threads)
    r["machine"].update(_meminfo(), load_average_at_end=os.getloadavg())
    r["versions"]["peers"] = {k: r[s].get(k) for s, k in (("drift", "evidently"),
                                                          ("estimation", "nannyml"))}
    r["headline"] = headline(r)
    r["goals"] = goals(r)
    r["plot_note"] = "PNG skipped: matplotlib is not a dependency; an SVG is written instead"
    r["files"] = write_reports(r, out)
    return r


def headline(r: dict) -> dict:
    """The figures the goals are judged on, plus what they were measured under."""
    fb, sv = r["feature_build"], r["serving"]
    peaks = [x["ml_assets"]["peak_rss_mb"] for x in fb["runs"]]
    peaks += [r["scoring"].get("peak_rss_mb") or 0, peak_rss_mb()]
    return {
        "feature_build_vs_fastest_hand_written": fb["micro_compiled_vs_fastest"],
        "feature_values_identical": fb["micro_values_identical"],
        "feature_build_growth_exponent": fb["micro_growth_exponent"]["compiled"],
        "feature_build_growth_exponent_by_side": fb["micro_growth_exponent"],
        "full_spec_growth_exponent": fb["growth_exponent_ml_assets"],
        "full_spec_identical_to_pandas": fb["values_identical"],
        "full_spec_speedup_vs_pandas": fb["speedup_vs_pandas"],
        "year_seconds": r["year"].get("total_seconds"),
        "ingest_rows_per_second": {g: r["ingest"]["rows_per_second"].get(f"ingest_{g}")
                                   for g in GRAINS
                                   if f"ingest_{g}" in r["ingest"].get("rows_per_second", {})},
        "drift_speedup_vs_evidently": r["drift"].get("speedup_vs_evidently"),
        "drift_speedup_vs_evidently_reason": r["drift"].get("evidently_reason")
        or r["drift"].get("skipped"),
        "drift_ratio_vs_numpy": r["drift"].get("ratio_vs_numpy"),
        "estimation_speedup_vs_nannyml": r["estimation"].get("speedup_vs_nannyml"),
        "estimation_mean_abs_error": r["estimation"].get("mean_abs_error"),
        "scoring_overhead_vs_bare_predict": r["scoring"].get("overhead_vs_bare_predict") or {},
        "lookup_p99_ms": sv.get("lookup_p99_ms"),
        "realtime_p99_ms_50_clients": sv.get("realtime_p99_ms_50_clients"),
        "kill_switch_effect_ms": sv.get("kill_switch_effect_ms"),
        "serving_reason": sv.get("reason") or sv.get("skipped"),
        "reproduce_seconds": r["reproduce"].get("reproduce_seconds"),
        "reproduce_reason": r["reproduce"].get("reason") or r["reproduce"].get("skipped"),
        "demo_wall_seconds": r["demo"].get("wall_seconds"),
        "peak_rss_mb": max(peaks),
        "load_average": {"start": r["machine"]["load_average_at_start"],
                         "end": r["machine"]["load_average_at_end"]},
        "sizes": r["sizes"],
        "threads": r["threads"],
        "library_versions": r["versions"],
    }
