"""`ml-assets`: run the demo and inspect the control plane. Every command has ``--json``."""

import argparse
import getpass
import json
import os
import sys
import warnings
from pathlib import Path

from ml_assets.lib.core.paths import DATA_DIR_ENV, DataPaths, default_data_dir


def _print(payload, as_json: bool, render) -> None:
    if as_json:
        print(json.dumps(payload, indent=2, default=str))
    else:
        render(payload)


def _models_rows(models: list[dict], aliases: dict) -> None:
    by_version = {v: a for a, v in aliases.items() if v}
    for m in models:
        held, ref = m["metrics"]["held_out"], m["metrics"]["frozen_reference"]
        w = m["training_window"]
        print(f"{m['version']:<12} {by_version.get(m['version'], ''):<11} "
              f"window {w['start'][:10]}..{w['end'][:10]}  cutoff {m['label_cutoff'][:10]}  "
              f"seed {m['seed']}  held-out AUC {held['auc'] or float('nan'):.4f}  "
              f"frozen-ref AUC {ref['auc'] or float('nan'):.4f}  artifact {m['artifact_sha256'][:12]}")


def cmd_demo(args, spec, paths) -> int:
    from ml_assets.definitions import build_definitions
    from ml_assets.scenarios.demo import DemoStepFailed, run_demo
    from ml_assets.scenarios.synthetic import SyntheticConfig

    log = (lambda *_: None) if args.json else print
    try:
        report = run_demo(spec, paths, SyntheticConfig(days=args.days, scale=args.scale,
                                                       seed=args.seed),
                          build_definitions(spec, str(paths.root)), log=log)
    except DemoStepFailed as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
        return 1
    payload = {**report.__dict__, "models": [
        {"version": m["version"], "held_out_auc": m["metrics"]["held_out"]["auc"],
         "frozen_reference_auc": m["metrics"]["frozen_reference"]["auc"]} for m in report.models]}

    def render(p):
        print(f"\nDemo finished in {p['seconds']:.0f}s. Data directory: {p['data_dir']}")
        print(f"  events {p['events']:,}, labels known {p['labels']:,}")
        for asset, rng in p["partitions"].items():
            print(f"  {asset:<13} {rng}")
        print("Models:")
        _models_rows(report.models, report.aliases)
        print(f"Outputs: {paths.lake} (Parquet per partition), {paths.artifacts} (models), "
              f"{paths.control_db} (registry)")
        print("Next: `make ui` (Dagster UI with everything materialized), "
              "`.venv/bin/ml-assets status`, `.venv/bin/ml-assets models`")

    _print(payload, args.json, render)
    return 0


def cmd_status(args, spec, paths) -> int:
    from ml_assets.cli.status_report import status
    from ml_assets.definitions import build_definitions

    payload = status(spec, paths, build_definitions(spec, str(paths.root)))

    def render(p):
        print(f"dataset {p['dataset']} (feature schema {p['feature_schema_version']}), "
              f"data in {p['data_dir']}")
        print("aliases: " + ", ".join(f"{a}={v or '-'}" for a, v in p["aliases"].items()))
        print(f"kill switch: {p['kill_switch']}   rollout stage: {p['rollout_stage']}")
        for asset, info in p["lake"].items():
            print(f"  {asset:<15} {info['partitions']:>5} partitions, latest {info['latest']}")
        failing = p["failing_checks"]
        print(f"checks: {len(p['checks'])} evaluated, {len(failing)} failing")
        for c in failing:
            print(f"  FAILING {c['asset']}:{c['check']} - {c['description']}")
        if p["champion"] is None:
            print("No champion yet: run `make demo` or materialize candidate_model.")

    _print(payload, args.json, render)
    return 0


def cmd_models(args, spec, paths) -> int:
    from ml_assets.lib.core.registry import Registry

    registry = Registry(paths.control_db)
    models = registry.list_models(spec.model_name)
    aliases = registry.aliases(spec.model_name)
    from ml_assets.lib.release.rollout import history

    payload = [{**m, "aliases": [a for a, v in aliases.items() if v == m["version"]],
                "rollout_history": history(registry, m["version"])} for m in models]

    def render(p):
        if not p:
            print("No models registered yet: run `make demo` or materialize candidate_model.")
        _models_rows(models, aliases)

    _print(payload, args.json, render)
    return 0


def _control_result(args, action) -> int:
    """Run a control-plane action; refusals print why and exit 1 (JSON: ok false + error)."""
    from ml_assets.lib.core.registry import RegistryError

    try:
        payload = {"ok": True, **action()}
    except RegistryError as exc:
        payload = {"ok": False, "error": str(exc)}
    if args.json:
        print(json.dumps(payload, indent=2, default=str))
    elif payload["ok"]:
        print(", ".join(f"{k}={v}" for k, v in payload.items() if k != "ok"))
    else:
        print(f"refused: {payload['error']}", file=sys.stderr)
    return 0 if payload["ok"] else 1


def cmd_kill_switch(args, spec, paths) -> int:
    from ml_assets.lib.core.registry import Registry
    from ml_assets.lib.release import rollback

    registry = Registry(paths.control_db)
    return _control_result(args, lambda: rollback.set_kill_switch(
        registry, paths, spec, args.state == "on", args.actor, args.reason))


def cmd_promote(args, spec, paths) -> int:
    from ml_assets.lib.core.registry import Registry
    from ml_assets.lib.release import rollback

    registry = Registry(paths.control_db)
    return _control_result(args, lambda: rollback.promote(
        registry, paths, spec, args.version, args.actor, args.reason))


def cmd_rollback(args, spec, paths) -> int:
    from ml_assets.lib.core.registry import Registry
    from ml_assets.lib.release import rollback

    registry = Registry(paths.control_db)
    return _control_result(args, lambda: rollback.rollback(
        registry, paths, spec, args.actor, args.reason))


def cmd_drill(args, spec, paths) -> int:
    from ml_assets.lib.core.registry import Registry
    from ml_assets.lib.release.rollback import run_rollback_drill
    from ml_assets.serving.app import running_server

    registry = Registry(paths.control_db)

    def drill() -> dict:
        if args.url:
            return run_rollback_drill(registry, paths, spec, args.url, args.actor)
        with running_server(paths, spec, log_predictions=False) as url:  # the real HTTP path
            return run_rollback_drill(registry, paths, spec, url, args.actor)

    return _control_result(args, drill)  # exit 1 unless the drill passed


def cmd_shadow(args, spec, paths) -> int:
    """The shadow report of the current challenger (computed now and recorded), or the last
    recorded one when no challenger is registered."""
    from ml_assets.lib.core.registry import Registry
    from ml_assets.lib.monitoring.tables import label_horizon
    from ml_assets.lib.release import rollout, shadow

    registry = Registry(paths.control_db)
    aliases = registry.aliases(spec.model_name)
    end = rollout.data_end(paths)
    if aliases["challenger"] and end:
        try:
            report = rollout.gate(paths, spec, registry, end, label_horizon(paths))
        except shadow.ShadowDataMissing as exc:
            print(f"no shadow report: {exc}", file=sys.stderr)
            return 1
    else:
        report = shadow.last_recorded(paths)
    if report is None:
        print("no challenger and no recorded shadow report: train a candidate and score",
              file=sys.stderr)
        return 1

    def render(r):
        print(f"{r['challenger']} vs {r['champion']}: {r['days_of_data']} days of shadow data "
              f"({r['window']['start'][:16]} .. {r['window']['end'][:16]}), gate "
              f"{'PASSED' if r['gate_passed'] else 'FAILED'}")
        for i in r["checklist"]:
            value = f"{i['value']:.4g}" if isinstance(i["value"], float) else i["value"]
            print(f"  {i['status'].upper():<8} {i['item']:<30} {value}  (threshold "
                  f"{i['threshold']})")

    _print(report, args.json, render)
    return 0


def cmd_rollout(args, spec, paths) -> int:
    from ml_assets.lib.core.registry import Registry
    from ml_assets.lib.monitoring.tables import label_horizon
    from ml_assets.lib.release import rollout

    registry = Registry(paths.control_db)
    as_of, horizon = rollout.data_end(paths), label_horizon(paths)

    def act() -> dict:
        if as_of is None:
            raise rollout.RolloutRefused("no batch_scores yet: nothing has been shadowed")
        if args.stage == "1":
            st = rollout.start(registry, paths, spec, args.actor, as_of, horizon,
                               override=args.override, reason=args.reason or "")
        else:
            st = rollout.step(registry, paths, spec, args.stage, args.actor, as_of, horizon,
                              override=args.override, reason=args.reason or "")
        return {"version": st["version"], "stage": st["stage"], "since": st["since"],
                **registry.aliases(spec.model_name)}

    return _control_result(args, act)


def cmd_serve(args, spec, paths) -> int:
    from ml_assets.serving.app import serve

    if args.json:
        print(json.dumps({"url": f"http://{args.host}:{args.port}", "data_dir": str(paths.root)}))
    else:
        print(f"serving {spec.name} from {paths.root} on http://{args.host}:{args.port} "
              "(GET /health, GET /scores/{event_id}, POST /predict)")
    serve(paths, spec, host=args.host, port=args.port)
    return 0


def cmd_monitor(args, spec, paths) -> int:
    from ml_assets.cli.monitor_report import monitor

    payload = monitor(spec, paths, args.days)

    def render(p):
        for d in p["days"]:
            b = d["business_metric"] or {}
            value = b.get("value") if b.get("status") == "final" else b.get("estimated_value")
            rate = next((b[k] for k in b if k.endswith("_rate") and k != "baseline_decision_rate"),
                        None)
            evals = ", ".join(f"{v}: {e['status']} cov {e['label_coverage']:.0%} "
                              + (f"AUC {e['auc']:.3f}" if e.get("auc") is not None else
                                 f"est. AUC {e.get('estimated_auc') or float('nan'):.3f}")
                              for v, e in d["evaluation"].items())
            worst = max(d["psi"].items(), key=lambda kv: kv[1], default=("-", 0.0))
            print(f"{d['day']}  {b.get('metric', '-')} {value or 0:,.0f} {b.get('unit', '')} "
                  f"({b.get('status', '-')})  rate {rate or 0:.2%}  max PSI {worst[0]} "
                  f"{worst[1]:.3f}  {evals}  checks: "
                  + (", ".join(f"{c['check']}={c['severity']}" for c in d["checks"]) or "ok"))
        if p["hint"]:
            print(p["hint"])

    _print(payload, args.json, render)
    return 0


def cmd_bench(args, spec, paths) -> int:
    from ml_assets.bench.runner import run_bench

    result = run_bench(size=args.size, factors=tuple(args.factors), days=args.days,
                       threads=args.threads, out=Path(args.out).resolve(),
                       cache=paths.root / "bench" / "worlds",
                       pandas_max_events=args.pandas_max_events, with_demo=args.with_demo,
                       sections=tuple(args.sections), data_dir=paths.root,
                       log=lambda msg: print(f"bench: {msg}", file=sys.stderr, flush=True))
    payload = {**result["headline"], "goals": result["goals"], "report_files": result["files"]}

    def render(p):
        for g in p["goals"]:
            met = "n/a " if g["met"] is None else ("met " if g["met"] else "MISS")
            print(f"{met} {g['goal']:<36} target {g['target']:<28} measured {g['value']}")
        print(f"Report: {p['report_files']['markdown']} (JSON: {p['report_files']['json']})")

    _print(payload, args.json, render)
    return 0


def _bench_parser(sub) -> None:
    bench = sub.add_parser("bench", help="side-by-side performance report (JSON + Markdown)")
    bench.add_argument("--size", type=float, default=1.0,
                       help="base demo scale (1.0 is about 1M events); runs size x each factor")
    bench.add_argument("--factors", type=float, nargs="+", default=[1, 4, 16])
    bench.add_argument("--days", type=int, default=120)
    bench.add_argument("--threads", type=int, help="DuckDB and OpenMP threads (default: 2)")
    bench.add_argument("--out", default="bench_results", help="report directory")
    bench.add_argument("--pandas-max-events", type=int, default=5_000_000,
                       help="skip the pandas baseline above this many events")
    bench.add_argument("--with-demo", action="store_true",
                       help="also time `ml-assets demo` into a temp dir (minutes) and use it "
                            "for the serving, kill switch and reproduce sections")
    bench.add_argument("--sections", nargs="*", default=["drift", "scoring", "serving",
                                                          "reproduce"],
                       choices=["drift", "scoring", "serving", "reproduce"])
    bench.set_defaults(func=cmd_bench)


def _criteria_cmd(name: str, fallback=None):
    """Success-criteria commands live in ``ml_assets.cli.runs`` (imported when used)."""
    def run(args, spec, paths) -> int:
        from ml_assets.cli import runs as criteria_cli

        return getattr(criteria_cli, name)(args, spec, paths, fallback)
    return run


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ml-assets", description=__doc__)
    parser.add_argument("--data-dir", help=f"runtime state directory (default ${DATA_DIR_ENV} "
                                           "or ./data)")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="generate demo data and materialize the whole graph")
    demo.add_argument("--days", type=int, default=120)
    demo.add_argument("--scale", type=float, default=1.0,
                      help="1.0 is about 1M events over 120 days; 20 is about 20M")
    demo.add_argument("--seed", type=int, default=7)
    demo.set_defaults(func=cmd_demo)
    status = sub.add_parser("status", help="aliases, kill switch, partitions, failing checks")
    status.add_argument("--criteria", action="store_true",
                        help="the playbook's success criteria as measured (reproduce, drills)")
    status.set_defaults(func=_criteria_cmd("status", cmd_status))
    rep = sub.add_parser("reproduce", help="retrain VERSION from raw landing data; identical?")
    rep.add_argument("version")
    rep.add_argument("--keep", action="store_true", help="keep the scratch directory")
    rep.set_defaults(func=_criteria_cmd("reproduce"))
    sub.add_parser("models", help="registered versions with their model cards") \
        .set_defaults(func=cmd_models)
    serve = sub.add_parser("serve", help="HTTP serving: precomputed lookups + realtime scoring")
    serve.add_argument("--host", default="127.0.0.1", help="bind address (default localhost only)")
    serve.add_argument("--port", type=int, default=8000)
    serve.set_defaults(func=cmd_serve)
    actor = os.environ.get("USER") or getpass.getuser()
    kill = sub.add_parser("kill-switch", help="on: serve the previous model from the next request")
    kill.add_argument("state", choices=["on", "off"])
    kill.add_argument("--reason", required=True, help="why (recorded in the audit log)")
    kill.set_defaults(func=cmd_kill_switch)
    promote = sub.add_parser("promote", help="make VERSION champion if the current champion "
                                             "is rollback-ready (it becomes previous)")
    promote.add_argument("version")
    promote.add_argument("--reason", default="promoted from the CLI")
    promote.set_defaults(func=cmd_promote)
    back = sub.add_parser("rollback", help="make the previous model champion again")
    back.add_argument("--reason", default="rollback from the CLI")
    back.set_defaults(func=cmd_rollback)
    drill = sub.add_parser("drill", help="exercise the rollback through the HTTP serving path")
    drill.add_argument("kind", choices=["rollback", "incidents", "six-weeks"],
                       help="rollback: kill switch via HTTP; incidents: replay the incident "
                            "timeline; six-weeks: nightly retraining, then reproduce the "
                            "champion of 42 days before the end")
    drill.add_argument("--scale", type=float, default=None,
                       help="data scale (incidents: 0.25, six-weeks: 1.0)")
    drill.add_argument("--days", type=int, default=120, help="six-weeks: days of data")
    drill.add_argument("--every", type=int, default=1, help="six-weeks: days between retrains")
    drill.add_argument("--world", help="six-weeks: data directory to build the world in")
    drill.add_argument("--url", help="a running server (default: start one on localhost)")
    drill.set_defaults(func=_criteria_cmd("drill", cmd_drill))
    mon = sub.add_parser("monitor", help="per day: business metric, drift, prediction "
                                         "quantiles, delayed evaluation and failing checks")
    mon.add_argument("--days", type=int, default=7)
    mon.set_defaults(func=cmd_monitor)
    _bench_parser(sub)
    sub.add_parser("shadow", help="shadow report of the current (or last) challenger with "
                                  "every gate item, its measured value and passed") \
        .set_defaults(func=cmd_shadow)
    roll = sub.add_parser("rollout", help="move the challenger's staged rollout (1 needs the "
                                          "shadow gate; later stages need their dwell)")
    roll.add_argument("stage", choices=["shadow", "1", "5", "25", "50", "100", "pause"])
    roll.add_argument("--override", action="store_true",
                      help="go ahead although the gate or the stage evidence says no (audited)")
    roll.add_argument("--reason", help="why (required with --override; in the audit log)")
    roll.set_defaults(func=cmd_rollout)
    for p in (kill, promote, back, drill, roll):
        p.add_argument("--actor", default=actor, help="who (default $USER), for the audit log")
    for p in sub.choices.values():
        p.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


def main(argv: list[str] | None = None) -> int:
    warnings.filterwarnings("ignore", message=".*is currently in beta.*")
    args = build_parser().parse_args(argv)
    if args.data_dir:
        os.environ[DATA_DIR_ENV] = str(Path(args.data_dir).resolve())
    from ml_assets.specs import active_spec

    paths = DataPaths(default_data_dir())
    return args.func(args, active_spec(), paths)


if __name__ == "__main__":
    sys.exit(main())
