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


def markdown(result: dict) -> str:
    head = result["headline"]
    lines = [
        "# ml_assets benchmark", "",
        f"Run {result['started_at']} on {result['machine']['cpus']} CPUs, "
        f"{result['machine']['mem_total_gib']:.1f} GiB RAM; threads {result['threads']}. "
        f"{result['noise_note']}", "",
        "## Goals", "", _goal_table(result["goals"]), "",
        "## Headline figures", "",
        table(["key", "value"], [[f"`{k}`", _fmt(v)] for k, v in head.items()]), "",
        "## Feature build (point-in-time, whole history)", "",
        _feature_table(result["feature_build"]), "",
        f"Growth exponent (slope of log time vs log rows): ml_assets "
        f"{_fmt(result['feature_build']['growth_exponent_ml_assets'])}, pandas "
        f"{_fmt(result['feature_build']['growth_exponent_pandas'])}. "
        f"{result['feature_build']['rows_per_chunk_note']}.", "",
        f"Plot: {result['plot'] or 'not written'}", "",
        "## Default demo timings", "",
        table(["step", "seconds", "source"], [[k, _fmt(v["seconds"]), v["source"]]
                                             for k, v in result["default_demo_times"].items()]),
        "",
    ]
    for name in ("drift", "scoring", "serving", "reproduce", "demo"):
        lines += [f"## {name}", "", "```json",
                  json.dumps(result[name], indent=1, default=str)[:4000], "```", ""]
    lines += ["## Versions", "", *[f"- {k} {v}" for k, v in result["versions"].items()], ""]
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
