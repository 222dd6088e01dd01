"""Write the benchmark result as JSON, a Markdown report and an SVG plot of feature-build time
against rows (dependency-free: matplotlib is not a dependency)."""

from __future__ import annotations

import json
import math
from pathlib import Path

from ml_assets.lib.core.markdown import MISSING, table
from ml_assets.lib.core.paths import atomic_write_bytes


def _fmt(value) -> str:
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return json.dumps(value, default=str)
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def _goal_table(goals: list[dict]) -> str:
    rows = [[g["goal"], g["target"], _fmt(g["value"]),
             "not measured" if g["met"] is None else ("met" if g["met"] else "**MISSED**"),
             g.get("note") or ""] for g in goals]
    return table(["goal", "target", "measured", "met", "why / note"], rows)


def _feature_table(section: dict) -> str:
    rows = []
    for r in section["runs"]:
        for side in ("ml_assets", "ml_assets_one_thread", "pandas"):
            s = r.get(side)
            if s is None:
                continue
            size, events = f"{r['size']:g}", f"{r['events']:,}"
            if "skipped" in s:
                rows.append([size, events, side, "", "", "", "", s["skipped"]])
                continue
            note = f"{s['chunks']} chunks" if "chunks" in s else ""
            if side == "pandas" and "comparison" in r:
                c = r["comparison"]
                note = f"identical: {_fmt(c['identical'])}, max abs diff {c['max_abs_diff']:.2g}"
            rows.append([size, events, side, s["threads"], f"{s['seconds']:.2f}",
                         f"{s['rows_per_second']:,.0f}", f"{s['peak_rss_mb']:,.0f}", note])
    return table(["size", "events", "side", "threads", "seconds", "rows/s", "peak RSS MiB",
                  "note"], rows)


def _micro_table(section: dict) -> str:
    rows = []
    for r in section["runs"]:
        m = r["micro"]
        rows.append([f"{r['size']:g}", f"{r['events']:,}",
                     *(f"{m[s]['seconds']:.3f} ({m[s]['first_run_seconds']:.3f})"
                       for s in ("compiled", "duckdb", "numpy")),
                     f"{m['compiled_vs_fastest']:.2f}x ({m['fastest_hand_written']})",
                     _fmt(m["comparison"]["identical"])])
    exps = section["micro_growth_exponent"]
    rows.append(["growth exponent", "", *(_fmt(exps[s]) for s in ("compiled", "duckdb", "numpy")),
                 "", ""])
    return table(["size", "events", "compiled query s", "hand DuckDB s", "numpy searchsorted s",
                  "compiled / fastest", "values identical"], rows)


def _ingest_table(r: dict) -> str:
    if "seconds" not in r:
        return r.get("skipped", MISSING)
    sec, rps = r["seconds"], r["rows_per_second"]
    return table(["step", "rows", "seconds", "rows/s"], [
        ["land (export -> daily landing files)", f"{r['rows']:,}", f"{sec['land']:.2f}",
         f"{rps['land']:,.0f}"],
        *([f"ingest (landing -> raw_events), {r['partitions'][g]:,} {g} partitions",
           f"{n:,}", f"{sec[f'ingest_{g}']:.2f}", f"{rps[f'ingest_{g}']:,.0f}"]
          for g, n in r["rows_ingested"].items()),
        *([f"one hourly run on the {r['partitions']['hourly']:,}-partition lake, {run}", "",
           f"{sec[f'hourly_run_{run}']:.3f}", ""]
          for run in ("first", "next") if f"hourly_run_{run}" in sec)])


def _drift_table(r: dict) -> str:
    if "seconds" not in r:
        return r.get("skipped", MISSING)
    sec = r["seconds"]
    names = {"profile_warm": "ml_assets, stored profile", "profile_cold": "ml_assets, profile "
             "built first", "numpy_scipy": "numpy + scipy", "evidently": "Evidently (peer)"}
    return table(["side", "seconds", "vs stored profile"], [
        [label, _fmt(sec[k]), _fmt(sec[k] / sec["profile_warm"] if sec[k] else None)]
        for k, label in names.items()]) + (f"\n\n{r['n_features']} features, "
                                           f"{r['n_ref']:,} reference / {r['n_cur']:,} current "
                                           f"rows; Evidently: {r['evidently']}")


def _estimation_table(r: dict) -> str:
    if "seconds" not in r:
        return r.get("skipped", MISSING)
    return table(["side", "seconds", "mean abs error vs realized AUC"], [
        [side, _fmt(r["seconds"][side]), _fmt(r["mean_abs_error"][side])]
        for side in ("ml_assets", "nannyml")]) + (
        f"\n\n{r['rows']:,} rows in {r['chunks']} chunks, reference {r['reference_rows']:,}; "
        f"realized AUC {r['realized_auc_range'][0]:.3f}-{r['realized_auc_range'][1]:.3f}; "
        f"NannyML: {r['nannyml']}")


def _scoring_table(r: dict) -> str:
    if "seconds" not in r:
        return r.get("skipped") or r.get("reason", MISSING)
    return table(["part", "seconds"], [[k, _fmt(v) if v is None else f"{v:.3f}"]
                                       for k, v in r["seconds"].items()]) + (
        f"\n\n{r['rows']:,} rows; end to end / bare predict_proba: " + ", ".join(
            f"{_fmt(x)} with {r['partitions_written'][g]:,} {g} partitions"
            for g, x in r["overhead_vs_bare_predict"].items()))


def _serving_table(r: dict) -> str:
    report = r.get("load_test")
    if not report:
        return r.get("reason") or r.get("skipped", MISSING)
    return table(["path", "clients", "p50 ms", "p95 ms", "p99 ms", "req/s", "non-200"], [
        [path, x["clients"], x["p50_ms"], x["p95_ms"], x["p99_ms"], x["rps"], x["non_200"]]
        for path in ("lookup", "predict") for x in report[path]])


def _year_table(r: dict) -> str:
    if "commands" not in r:
        return r.get("skipped", MISSING)
    keys = ("wall", "startup", "planning", "compute", "recording")
    return table(["command", *(f"{k} s" for k in keys), "Dagster events"],
                 [[c.get("command", ""), *(_fmt(c.get(k)) for k in keys),
                   _fmt(c.get("events_written"))] for c in r["commands"]]) + (
        f"\n\nTotal {_fmt(r.get('total_seconds'))} s")


def _spark_table(r: dict) -> str:
    if not r.get("runs"):
        return r.get("skipped", MISSING)
    return table(["events", "DuckDB s", "Spark s (query + collect)", "Spark session start s",
                  "Spark / DuckDB", "same rows"],
                 [[f"{x['events']:,}", f"{x['duckdb_seconds']:.2f}", f"{x['spark_seconds']:.2f}",
                   f"{x['spark_session_seconds']:.2f}", f"{x['spark_vs_duckdb']:.2f}x",
                   _fmt(x["same_rows"])] for x in r["runs"]]) + (
        f"\n\nSpark local mode with {r['runs'][0]['threads']} cores, the whole window in one "
        "query; DuckDB in 30-day chunks with their look-back (the asset's own path)")


def _demo_table(r: dict) -> str:
    if not r.get("steps"):
        return r.get("skipped", MISSING)
    return table(["step", "seconds"], [[s["step"], f"{s['seconds']:.1f}"] for s in r["steps"]])


def markdown(result: dict) -> str:
    """The report: goals, then one side-by-side table per section, machine and versions."""
    m, fb = result["machine"], result["feature_build"]
    load = "load average at start {} / at end {}".format(
        *(" ".join(f"{x:.2f}" for x in m[k]) for k in ("load_average_at_start",
                                                        "load_average_at_end")))
    lines = [
        "# ml_assets benchmark", "",
        f"Run {result['started_at']} on {m['cpus']} CPUs, {m['mem_total_gib']:.1f} GiB RAM; "
        f"{load}. Threads: {_fmt(result['threads'])}. {result['noise_note']}", "",
        "## Goals (issue 18)", "", _goal_table(result["goals"]), "",
        "## Feature build, micro spec: count and sum(amount) 7d/30d + time since previous "
        "on card_id, every event a target", "",
        _micro_table(fb), "",
        f"Compared: {fb['runs'][0]['micro']['comparison']['compared']}." if fb["runs"] else "",
        "Seconds are compute from events in memory to a frame (loading is timed apart), the "
        "best of three runs; in brackets the first, cold run, which faults in the process's "
        "pages.", "",
        "## Feature build, full demo spec vs pandas", "",
        _feature_table(fb), "",
        f"Growth exponent (slope of log time vs log rows): ml_assets "
        f"{_fmt(fb['growth_exponent_ml_assets'])}, pandas {_fmt(fb['growth_exponent_pandas'])}. "
        f"{fb['rows_per_chunk_note']}.", "",
        f"Plot: {result['plot'] or 'not written'}", "",
        "## A year of hourly history", "", _year_table(result["year"]), "",
        "## Feature build on Spark vs DuckDB", "", _spark_table(result["spark"]), "",
        "## Event ingest", "", _ingest_table(result["ingest"]), "",
        "## Drift (PSI + KS)", "", _drift_table(result["drift"]), "",
        "## Estimated AUC before labels", "", _estimation_table(result["estimation"]), "",
        "## Batch scoring", "", _scoring_table(result["scoring"]), "",
        "## Serving", "", _serving_table(result["serving"]), "",
        "## Demo stages", "", _demo_table(result["demo"]), "",
        "## Headline figures", "",
        table(["key", "value"], [[f"`{k}`", _fmt(v)] for k, v in result["headline"].items()]),
        "",
    ]
    lines += ["## Versions", "", *[f"- {k} {_fmt(v)}" for k, v in result["versions"].items()], ""]
    return "\n".join(lines)


def svg_plot(section: dict) -> str:
    """Seconds against events, log-log, one polyline per side."""
    series = {"ml_assets": [], "pandas": []}
    for r in section["runs"]:
        for side in series:
            if "seconds" in r.get(side, {}):
                series[side].append((r["events"], r[side]["seconds"]))
    points = [p for s in series.values() for p in s]
    lx = [math.log10(x) for x, _ in points]
    ly = [math.log10(y) for _, y in points]
    x0, x1 = min(lx) - 0.1, max(lx) + 0.1
    y0, y1 = min(ly) - 0.2, max(ly) + 0.2
    w, h, pad = 640, 400, 60

    def xy(x: float, y: float) -> tuple[float, float]:
        return (pad + (math.log10(x) - x0) / (x1 - x0) * (w - 2 * pad),
                h - pad - (math.log10(y) - y0) / (y1 - y0) * (h - 2 * pad))

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
             'font-family="sans-serif" font-size="12">',
             f'<rect width="{w}" height="{h}" fill="white"/>',
             f'<line x1="{pad}" y1="{h - pad}" x2="{w - pad}" y2="{h - pad}" stroke="black"/>',
             f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{h - pad}" stroke="black"/>',
             f'<text x="{w / 2}" y="{h - 15}" text-anchor="middle">events (log)</text>',
             f'<text x="15" y="{h / 2}" transform="rotate(-90 15 {h / 2})" '
             'text-anchor="middle">feature build seconds (log)</text>']
    for (side, pts), color in zip(series.items(), ("#1f77b4", "#d62728"), strict=True):
        if not pts:
            continue
        coords = [xy(x, y) for x, y in pts]
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="'
                     + " ".join(f"{a:.1f},{b:.1f}" for a, b in coords) + '"/>')
        for (a, b), (x, y) in zip(coords, pts, strict=True):
            parts.append(f'<circle cx="{a:.1f}" cy="{b:.1f}" r="4" fill="{color}"/>')
            parts.append(f'<text x="{a + 6:.1f}" y="{b - 6:.1f}">{x:,} ev: {y:.1f}s</text>')
        parts.append(f'<text x="{pad + 10}" y="{pad + 15 + 15 * (side == "pandas")}" '
                     f'fill="{color}">{side}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def write_reports(result: dict, out: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    plot = out / "feature_build.svg"
    atomic_write_bytes(plot, svg_plot(result["feature_build"]).encode())
    result["plot"] = str(plot)
    files = {"json": out / "bench.json", "markdown": out / "bench.md", "plot": plot}
    atomic_write_bytes(files["json"], json.dumps(result, indent=1, default=str).encode())
    atomic_write_bytes(files["markdown"], markdown(result).encode())
    return {k: str(v) for k, v in files.items()}
