"""Read-only report commands: ``status`` (and ``status --criteria``), ``models``, ``monitor`` and
``shadow``. Builders live in ``status_report``/``monitor_report``/``lib/monitoring/periods``; this
module renders."""

import argparse
from datetime import UTC, datetime

from ml_assets.cli.output import emit, refused
from ml_assets.lib.core.workspace import Workspace


def _num(value, spec: str = ".4f") -> str:
    """A metric for display; ``-`` where there is none (one class in the split, no labelable
    events: None or NaN)."""
    return "-" if value is None or value != value else format(value, spec)


def print_models(models: list[dict], aliases: dict) -> None:
    """Each version's card essentials in two lines: version, alias, training window (``cold``
    when it starts before warm-up), label cutoff, seed, held-out AUC and PR-AUC (``on`` its
    held-out period when the card has one), frozen-reference AUC, then the dataset SHA-256, code commit (``+dirty``) and artifact SHA-256 prefixes.

    Parameters
    ----------
    models : list of dict
        Model cards as ``Registry.list_models`` returns them.
    aliases : dict of str to str or None
        Alias to version.
    """
    by_version = {v: a for a, v in aliases.items() if v}
    for m in models:
        held, ref = m["metrics"]["held_out"], m["metrics"]["frozen_reference"]
        w = m["training_window"]
        cold = "" if w.get("warm", True) else " (cold)"
        test = m.get("held_out_period")
        period = f" on {test['start'][:10]}..{test['end'][:10]}" if test else ""
        print(f"{m['version']:<12} {by_version.get(m['version'], '-'):<11} "
              f"window {w['start'][:10]}..{w['end'][:10]}{cold}  cutoff {m['label_cutoff'][:10]}"
              f"  seed {m['seed']}  held-out{period} AUC {_num(held['auc'])} PR-AUC "
              f"{_num(held.get('pr_auc'))}  frozen-ref AUC {_num(ref['auc'])}")
        dirty = "+dirty" if m.get("code_dirty") else ""
        print(f"{'':<12} dataset {m['dataset_sha256'][:12]}  code "
              f"{(m.get('code_commit') or 'unknown')[:12]}{dirty}  "
              f"artifact {m['artifact_sha256'][:12]}")


def print_card(card, indent: int = 0) -> None:
    """A whole model card as indented ``key: value`` text: nested sections indented, lists of
    plain values on one line, lists of records (rollout history) one record a line.

    Parameters
    ----------
    card : dict
        The card (or a section of it).
    indent : int
        Spaces before each line.
    """
    pad = " " * indent
    for key, value in card.items():
        if isinstance(value, dict):
            print(f"{pad}{key}:")
            print_card(value, indent + 2)
        elif isinstance(value, list) and any(isinstance(v, dict) for v in value):
            print(f"{pad}{key}:")
            for item in value:
                print(f"{pad}  - " + ", ".join(f"{k}={_plain_text(v)}" for k, v in item.items()))
        elif isinstance(value, list):
            print(f"{pad}{key}: {', '.join(map(_plain_text, value)) or '-'}")
        else:
            print(f"{pad}{key}: {_plain_text(value)}")


def _plain_text(value) -> str:
    return "-" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


def cmd_status(args, ws: Workspace) -> int:
    """``status``: aliases, kill switch, stage, lake partitions, failing checks; with
    ``--criteria`` the playbook's success criteria as measured (reproduce, drills)."""
    if args.criteria:
        from ml_assets.lib.release import criteria

        emit(criteria.scorecard(ws), args.json, lambda c: print(criteria.render_markdown(c)))
        return 0
    from ml_assets.cli.status_report import check_line, status
    from ml_assets.definitions import build_definitions

    payload = status(ws, build_definitions(ws.spec, str(ws.paths.root)))

    def render(p):
        print(f"dataset {p['dataset']} (feature schema {p['feature_schema_version']}), "
              f"data in {p['data_dir']}")
        print("aliases: " + ", ".join(f"{a}={v or '-'}" for a, v in p["aliases"].items()))
        print(f"kill switch: {p['kill_switch']}   rollout stage: {p['rollout_stage']}")
        if p["reverted_drill_flip"]:
            print(f"REVERTED a dead drill's flip: {p['reverted_drill_flip']['restored']} "
                  f"(drill by {p['reverted_drill_flip']['actor']}, audited as lease-expiry)")
        if p["drill_flip"]:
            print(f"drill flip open: {p['drill_flip']['message']}")
        if p["end"]:
            print(f"historical dataset: ends at {p['end']} (freshness judged there)")
        for asset, info in p["lake"].items():
            behind = "" if info["behind"] is None else (
                f", {info['behind']} {info['period']}(s) behind {p['freshness_judged_at']}")
            gaps = (f", {info['gaps']} missing in between (first {info['first_gap']})"
                    if info["gaps"] else "")
            print(f"  {asset:<15} {info['partitions']:>5} partitions, latest "
                  f"{info['latest']}{gaps}{behind}")
        for f in p["late_landing_files"]:
            print(f"  LATE {f['description']}")
        for note in p["landing_notes"]:
            print(f"  landing: {note}")
        failing = p["failing_checks"]
        warn = sum(c["severity"] == "WARN" for c in failing)
        print(f"checks: {len(p['checks'])} evaluated, {len(failing) - warn} failing (ERROR), "
              f"{warn} warning (WARN)")
        for c in failing:
            print(f"  {check_line(c)}")
        if p["champion"] is None:
            print("No champion yet: `ml-assets train` (your data) or `make demo`; the first "
                  "registered model becomes champion.")

    emit(payload, args.json, render)
    return 0


def cmd_models(args, ws: Workspace) -> int:
    """``models [VERSION]``: registered versions with their card essentials, aliases and
    rollout history; with a version, that one whole card."""
    from ml_assets.lib.core.registry import RegistryError
    from ml_assets.lib.release.rollout import history

    registry = ws.registry
    aliases = registry.aliases(ws.spec.model_name)

    def annotated(m: dict) -> dict:
        return {**m, "aliases": [a for a, v in aliases.items() if v == m["version"]],
                "rollout_history": history(registry, m["version"])}

    if args.version:
        try:
            card = annotated(registry.get_model(args.version))
        except RegistryError as exc:
            return refused(f"refused: {exc}")
        emit(card, args.json, lambda c: (
            print(f"{c['version']} ({', '.join(c['aliases']) or 'no alias'})"), print_card(c, 2)))
        return 0
    models = registry.list_models(ws.spec.model_name)

    def render(p):
        if not p:
            print("No models registered yet: run `make demo` or materialize candidate_model.")
        print_models(models, aliases)
        if p:
            print("`ml-assets models VERSION` shows one whole card.")

    emit([annotated(m) for m in models], args.json, render)
    return 0


def cmd_shadow(args, ws: Workspace) -> int:
    """``shadow``: the shadow report of the current challenger (computed now and recorded), or
    the last recorded one when no challenger is registered."""
    from ml_assets.lib.monitoring.tables import label_horizon
    from ml_assets.lib.release import rollout, shadow

    aliases = ws.registry.aliases(ws.spec.model_name)
    end = rollout.data_end(ws.paths, ws.spec)
    if aliases["challenger"] and end:
        try:
            report = rollout.gate(ws.paths, ws.spec, ws.registry, end, label_horizon(ws.paths))
        except shadow.ShadowDataMissing as exc:
            return refused(f"no shadow report: {exc}")
    else:
        report = shadow.last_recorded(ws.paths)
    if report is None:
        return refused("no challenger and no recorded shadow report: train a candidate and score")

    def render(r):
        print(f"{r['challenger']} vs {r['champion']}: {r['days_of_data']} days of shadow data "
              f"({r['window']['start'][:16]} .. {r['window']['end'][:16]}), gate "
              f"{'PASSED' if r['gate_passed'] else 'FAILED'}")
        for i in r["checklist"]:
            value = f"{i['value']:.4g}" if isinstance(i["value"], float) else i["value"]
            print(f"  {i['status'].upper():<8} {i['item']:<30} {value}  (threshold "
                  f"{i['threshold']})")

    emit(report, args.json, render)
    return 0


def utc_day(text: str) -> datetime:
    """``YYYY-MM-DD`` as UTC midnight (an argparse ``type``: a bad value is a usage error)."""
    try:
        return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date YYYY-MM-DD") from None


def cmd_monitor_periods(args, ws: Workspace) -> int:
    """``monitor --by PERIOD [--from DAY] [--to DAY]``: AUC, PR-AUC, business metric and PSI
    pooled per day, ISO week or month over ``[from, to)``."""
    from ml_assets.lib.monitoring.periods import period_report

    lo = args.date_from or datetime(1970, 1, 1, tzinfo=UTC)
    hi = args.date_to or datetime(9999, 1, 1, tzinfo=UTC)
    try:
        periods = period_report(ws, lo, hi, args.by)
    except ValueError as exc:
        return refused(str(exc))

    def render(payload):
        for p in payload["periods"]:
            b = p.get("business_metric") or {}
            champion = p["models"].get(p.get("psi_model_version"), {})
            worst = max(p.get("psi", {}).items(), key=lambda kv: kv[1], default=("-", 0.0))
            auc = (f"AUC {_num(champion['auc'], '.3f')} ±{_num(champion.get('auc_se'), '.3f')} "
                   f"PR-AUC {_num(champion.get('pr_auc'), '.3f')}" if "auc" in champion
                   else "AUC -")
            final = b.get("status") == "final"
            value = b.get("value") if final else b.get("estimated_value")
            print(f"{p['period']} {'' if p['complete'] else '(incomplete) '}"
                  f"{p['events']:,} events  labels {p['label_status']} "
                  f"{_num(p['label_coverage'], '.0%')}  {auc}  {b.get('metric', '')} "
                  f"{'' if final else 'est. '}{value or 0:,.0f} {b.get('unit', '')}  "
                  f"max PSI {worst[0]} {worst[1]:.3f}")

    emit({"by": args.by, "periods": periods}, args.json, render)
    return 0


def cmd_monitor(args, ws: Workspace) -> int:
    """``monitor --days N``: per day the business metric, drift, prediction quantiles, delayed
    evaluation and the checks that fired; with ``--by`` figures pooled per period."""
    if args.by or args.date_from or args.date_to:
        args.by = args.by or "day"
        return cmd_monitor_periods(args, ws)
    from ml_assets.cli.monitor_report import monitor

    payload = monitor(ws.spec, ws.paths, args.days)

    def render(p):
        for d in p["days"]:
            b = d["business_metric"]
            if b:
                final = b["status"] == "final"
                value = b["value"] if final else b["estimated_value"]
                business = f"{b['metric']} {value or 0:,.0f} {b['unit']} ({b['status']})  "
            else:
                business = "no business metric  "
            rate = "-" if d["decision_rate"] is None else f"{d['decision_rate']:.2%}"
            evals = ", ".join(f"{v}: {e['status']} cov {_num(e['label_coverage'], '.0%')} "
                              + (f"AUC {_num(e['auc'], '.3f')}" if e.get("auc") is not None
                                 else f"est. AUC {_num(e.get('estimated_auc'), '.3f')}")
                              for v, e in d["evaluation"].items())
            worst = max(d["psi"].items(), key=lambda kv: kv[1], default=None)
            psi = (f"max PSI {worst[0]} {worst[1]:.3f}" if worst else
                   f"PSI not judged ({d['psi_note']})" if d.get("psi_note") else
                   "no events to compare")
            print(f"{d['day']}  {business}decision rate {rate}  {psi}  {evals}  checks: "
                  + (", ".join(f"{c['check']}={c['severity']}" for c in d["checks"]) or "ok"))
        if p["hint"]:
            print(p["hint"])

    emit(payload, args.json, render)
    return 0


def add_parsers(sub) -> None:
    """Register the report commands on the ``ml-assets`` subparsers."""
    status = sub.add_parser("status", help="aliases, kill switch, partitions, failing checks")
    status.add_argument("--criteria", action="store_true",
                        help="the playbook's success criteria as measured (reproduce, drills)")
    status.set_defaults(func=cmd_status)
    models = sub.add_parser("models", help="registered versions with their model cards")
    models.add_argument("version", nargs="?", help="show this version's whole card")
    models.set_defaults(func=cmd_models)
    mon = sub.add_parser("monitor", help="per day: business metric, drift, prediction "
                                         "quantiles, delayed evaluation and failing checks")
    mon.add_argument("--days", type=int, default=7)
    mon.add_argument("--by", choices=("day", "week", "month"),
                     help="pool AUC, PR-AUC, business metric and PSI per period")
    mon.add_argument("--from", dest="date_from", type=utc_day, metavar="YYYY-MM-DD",
                     help="first day of the window (UTC); default: the first scored partition")
    mon.add_argument("--to", dest="date_to", type=utc_day, metavar="YYYY-MM-DD",
                     help="day after the window (UTC, exclusive); default: the newest scored partition")
    mon.set_defaults(func=cmd_monitor)
    sub.add_parser("shadow", help="shadow report of the current (or last) challenger with "
                                  "every gate item, its measured value and passed") \
        .set_defaults(func=cmd_shadow)
