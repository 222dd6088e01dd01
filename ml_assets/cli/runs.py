"""Commands that run things: ``demo``, ``train``, ``run STEP...``, ``reproduce``, ``drill
incidents|six-weeks`` (``drill rollback`` is a control command), ``bench`` and ``serve``.
Scenarios are imported per command, so ``ml-assets status`` never loads them. Drill outcomes
are recorded in the control plane for the scorecard (``status --criteria``)."""

import argparse
import dataclasses
import json
import re
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ml_assets.bench import SECTIONS as BENCH_SECTIONS
from ml_assets.cli.control import cmd_drill_rollback
from ml_assets.cli.output import emit, refused
from ml_assets.lib.core.datasets import split_start
from ml_assets.lib.core.identifiers import SpecError
from ml_assets.lib.core.workspace import Workspace
from ml_assets.scenarios import DEMO_DAYS


def _log(args):
    """Progress lines to stderr, silent with ``--json``."""
    return (lambda *_: None) if args.json else (lambda m: print(m, file=sys.stderr))


def cmd_demo(args, ws: Workspace) -> int:
    """``demo``: generate landing data and materialize the whole graph into the workspace."""
    from ml_assets.cli.reports import print_models
    from ml_assets.definitions import build_definitions
    from ml_assets.scenarios.demo import run_demo
    from ml_assets.scenarios.demo_clock import placement, recorded
    from ml_assets.scenarios.runner import StepFailed
    from ml_assets.specs.loading import DEFAULT_REF, DEMO_NAME

    paths = ws.paths
    origin = ws.spec.origin
    if origin is None or origin.source_ref != DEFAULT_REF:
        return refused(f"ml-assets demo generates the {DEMO_NAME} data; the spec is "
                       f"{origin.ref if origin else ws.spec.name!r} (unset --spec/ML_ASSETS_SPEC)")
    log = (lambda *_: None) if args.json else print
    try:
        record = recorded(paths.root)
        if split_start(origin.ref)[1] not in (None, record and f"{record.start:%Y-%m-%d}"):
            return refused(f"ml-assets demo places its own start (recorded in "
                           f"{paths.root / 'demo.json'}); drop the @day of {origin.ref}")
        placed = placement(paths, datetime.now(UTC), args.days, args.scale, args.seed)
        ws = dataclasses.replace(ws, spec=ws.spec.starting(placed.cfg.start))
        report = run_demo(ws, placed.cfg, build_definitions(ws.spec, str(paths.root)), log=log,
                          until=placed.landed_until)
    except (StepFailed, SpecError) as exc:
        return refused(f"demo failed: {exc}")
    payload = {**report.__dict__, "models": [
        {"version": m["version"], "held_out_auc": m["metrics"]["held_out"]["auc"],
         "frozen_reference_auc": m["metrics"]["frozen_reference"]["auc"]} for m in report.models]}

    def render(p):
        print(f"\nDemo finished in {p['seconds']:.0f}s. Data directory: {p['data_dir']}")
        print(f"  events {p['events']:,}, labels known {p['labels']:,}")
        for asset, rng in p["partitions"].items():
            print(f"  {asset:<13} {rng}")
        print("Models:")
        print_models(report.models, report.aliases)
        print(f"Outputs: {paths.lake} (Parquet per partition), {paths.artifacts} (models), "
              f"{paths.control_db} (registry)")
        print("Next: `make ui` (Dagster UI with everything materialized), "
              "`.venv/bin/ml-assets status`, `.venv/bin/ml-assets models`")

    emit(payload, args.json, render)
    return 0


def utc_time(text: str) -> datetime:
    """``YYYY-MM-DD`` as UTC midnight, or an ISO-8601 time with its offset (an argparse
    ``type``: anything else is a usage error)."""
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date or ISO-8601 time") from None
    if len(text) == 10:  # a bare date
        return t.replace(tzinfo=UTC)
    if t.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} needs its UTC offset, e.g. {text}+00:00")
    return t


def _training_payload(ws: Workspace, fields: dict) -> dict:
    """Materialize the training assets with ``TrainingConfig`` ``fields`` (ISO strings, None
    for unset) through the data directory's Dagster instance, as the demo does; the registered
    version, its window and held-out metrics.

    Raises
    ------
    WindowError
        A bad window, validated before any run.
    StepFailed
        The training run failed.
    """
    import dagster as dg

    from ml_assets.definitions import build_definitions
    from ml_assets.defs.training.definitions import TRAINING_ASSETS
    from ml_assets.scenarios.runner import (
        SILENT_LOGS,
        dagster_instance,
        materialize,
        training_run_config,
    )

    fields = _training_fields(ws, fields)
    instance = dagster_instance(ws.paths)
    seconds = materialize(build_definitions(ws.spec, str(ws.paths.root)), instance,
                          list(TRAINING_ASSETS), None, training_run_config(fields) | SILENT_LOGS)
    # the version this run registered, or found registered already (the same artifact)
    meta = instance.get_latest_materialization_event(
        dg.AssetKey("candidate_model")).asset_materialization.metadata
    card = ws.registry.get_model(meta["version"].value)
    roles = [a for a, v in ws.registry.aliases(ws.spec.model_name).items() if v == card["version"]]
    return {"version": card["version"], "newly_registered": meta["newly_registered"].value,
            "aliases": roles,
            "seconds": round(seconds, 1), "training_window": card["training_window"],
            "label_cutoff": card["label_cutoff"],
            "held_out_period": card.get("held_out_period"), "rows": card["rows"],
            "held_out": card["metrics"]["held_out"],
            "validation": card["metrics"]["validation"]}


def _training_fields(ws: Workspace, fields: dict) -> dict:
    """``fields`` without the unset ones, once their window validates (``WindowError``)."""
    from ml_assets.defs.training.assets import TrainingConfig, resolve_window

    fields = {k: v for k, v in fields.items() if v is not None}
    resolve_window(ws, ws.spec, TrainingConfig(**fields))
    return fields


def _render_train(p: dict) -> None:
    from ml_assets.cli.reports import _num

    w, h, test = p["training_window"], p["held_out"], p["held_out_period"]
    new = "registered" if p["newly_registered"] else "already registered (same artifact)"
    role = (f"; now {' and '.join(p['aliases'])}" if p["aliases"] else
            "; no alias (`ml-assets promote VERSION` makes it champion)")
    print(f"{p['version']} {new} in {p['seconds']:.0f}s{role}")
    print(f"  window {w['start']} .. {w['end']}  label cutoff {p['label_cutoff']}")
    if "warm_start" in w:  # the spec's warm-up: when every feature's window has filled
        print(f"  features warm from {w['warm_start']}: " + (
            "the window starts there or later" if w.get("warm") else
            "the window starts BEFORE that, so the model and the drift reference learn cold "
            "feature values; train with a later --end (or --start), or declare warm_up"))
    print("  test split: " + (f"held-out period {test['start']} .. {test['end']}" if test
                              else "hashed from the window"))
    print(f"  held-out: rows {h['rows']:,}  AUC {_num(h['auc'])}  PR-AUC "
          f"{_num(h['pr_auc'])}  Brier {_num(h['brier'])}  (train rows "
          f"{p['rows']['train']:,})")


def _train(args, ws: Workspace, fields: dict) -> int:
    """``train``: :func:`_training_payload`, printed; a bad window is refused in one line (exit
    1) without a run."""
    from ml_assets.lib.training.train import WindowError
    from ml_assets.scenarios.runner import StepFailed

    try:
        payload = _training_payload(ws, fields)
    except WindowError as exc:
        return refused(f"refused: {exc}")
    except StepFailed as exc:
        return refused(failure_text("train", exc, ws.spec))
    emit(payload, args.json, _render_train)
    return 0


def _iso(t: datetime | None) -> str | None:
    return t.isoformat() if t else None


def cmd_train(args, ws: Workspace) -> int:
    """``train [--start] [--end] [--label-cutoff] [--window-days] [--test-start --test-end]``."""
    return _train(args, ws, {"start": _iso(args.start), "end": _iso(args.end),
                             "label_cutoff": _iso(args.label_cutoff),
                             "window_days": args.window_days,
                             "test_start": _iso(args.test_start),
                             "test_end": _iso(args.test_end)})


RUN_STEPS = ("ingest", "features", "train", "score", "monitor")  # pipeline order


def _planned_runs(defs, spec, step: str, lo: datetime, hi: datetime) -> list:
    """``(run, (first, last) key, partition count)`` of each range run of ``step``.

    Raises
    ------
    ValueError
        A range key outside the asset's partitions (before the start, past now or past a
        historical dataset's end), naming them.
    """
    from dagster import PartitionKeyRange

    from ml_assets.defs.partitions import RANGE_END_TAG, RANGE_START_TAG
    from ml_assets.scenarios.demo import step_runs

    planned = []
    for run in step_runs(spec, step, lo, hi):
        keys = (run.tags[RANGE_START_TAG], run.tags[RANGE_END_TAG])
        partitions = defs.resolve_assets_def(run.selection[0]).partitions_def
        outside = [k for k in keys if not partitions.has_partition_key(k)]
        if outside:
            bound = (f"the spec's start {spec.start_utc:%Y-%m-%d %H:%M}" if outside[0] == keys[0]
                     else f"the spec's end {spec.end_utc:%Y-%m-%d %H:%M} (exclusive)"
                     if spec.end_utc else "the last complete period before now")
            raise ValueError(f"{run.selection[0]} has no partition {outside[0]}: its partitions "
                             f"run {partitions.get_first_partition_key()} .. "
                             f"{partitions.get_last_partition_key()}, bounded by {bound}")
        planned.append((run, keys, len(partitions.get_partition_keys_in_range(
            PartitionKeyRange(*keys)))))
    return planned


def _day_or_time(t: datetime) -> str:
    """``t`` as ``--from``/``--to`` take it: the date at UTC midnight, else ISO."""
    return f"{t:%Y-%m-%d}" if t == t.replace(hour=0, minute=0, second=0, microsecond=0) \
        and t.utcoffset() == timedelta(0) else t.isoformat()


def _runs_first(messages: list[str], spec, lo: datetime, hi: datetime) -> list[str]:
    """The ``ml-assets`` commands producing the upstream assets the failure ``messages`` ask to
    "materialize ... first", in pipeline order; each from the earliest date its message names
    (a look-back reaches before ``lo``) to ``hi``; a model trained on the data before ``lo``."""
    from ml_assets.scenarios.demo import step_runs

    owners = {a: s for s in RUN_STEPS if s != "train" for r in step_runs(spec, s, lo, hi)
              for a in r.selection} | {"candidate_model": "train"}
    starts: dict[str, str] = {}
    for message in messages:
        for asset in re.findall(r"materialize (\w+)", message):
            if asset in owners:
                days = re.findall(r"\d{4}-\d{2}-\d{2}", message)
                step = owners[asset]
                starts[step] = min([starts.get(step, _day_or_time(lo)), *days])
    return [f"ml-assets train --end {_day_or_time(lo)}" if step == "train" else
            f"ml-assets run {step} --from {starts[step]} --to {_day_or_time(hi)}"
            for step in RUN_STEPS if step in starts]


def failure_text(where: str, exc, spec, lo: datetime | None = None,
                 hi: datetime | None = None) -> str:
    """Plain lines for a failed run, no stack trace: each failing step or check with its error,
    then the commands to run first for the upstream partitions missing.

    Parameters
    ----------
    where : str
        The step and its partitions (``features 2026-01-05..2026-02-14``), leading each line.
    exc : runner.StepFailed
        Its ``failures`` are worded one per line; without any, its message.
    spec : DatasetSpec
    lo, hi : datetime, optional
        The range asked (UTC, ``hi`` exclusive); without it no command is suggested.

    Returns
    -------
    str
        Lines joined by newlines, no trailing newline.
    """
    # a range run fails a check once per partition, mostly with the same words: said once
    said = Counter(str(f) for f in exc.failures)
    lines = [f"{where}: {text}" + (f" ({n} partitions)" if n > 1 else "")
             for text, n in said.items()] or [f"{where}: {exc}"]
    first = _runs_first([f.message for f in exc.failures], spec, lo, hi) if lo else []
    if first:
        lines.append("run first: " + ", then ".join(f"`{c}`" for c in first))
    return "\n".join(lines)


def _render_step(p: dict) -> None:
    if p["step"] == "train":
        return _render_train(p)
    for r in p["runs"]:
        print(f"{p['step']}: {', '.join(r['assets'])}  {r['partitions']} partition(s) "
              f"{r['first']} .. {r['last']}  {r['seconds']:.1f}s")


def cmd_run(args, ws: Workspace) -> int:
    """``run STEP [STEP ...] --from --to``: pipeline steps over ``[from, to)``, in pipeline
    order whatever order they are named in, as range runs of their assets
    (``scenarios.demo.step_runs``); ``train`` trains on that window, labels known at ``to``.
    Every step's range and window is validated before the first run; a failed step stops the
    command (the steps before it stay done)."""
    from ml_assets.definitions import build_definitions
    from ml_assets.lib.training.train import WindowError
    from ml_assets.scenarios.runner import SILENT_LOGS, StepFailed, dagster_instance, materialize

    lo, hi = args.date_from, args.date_to
    if not lo < hi:
        return refused(f"refused: --from {lo.isoformat()} must be before --to {hi.isoformat()}")
    steps = [s for s in RUN_STEPS if s in args.steps]
    window = {"start": lo.isoformat(), "end": hi.isoformat(), "label_cutoff": hi.isoformat()}
    defs = build_definitions(ws.spec, str(ws.paths.root))
    try:
        planned = {s: _planned_runs(defs, ws.spec, s, lo, hi) for s in steps if s != "train"}
        if "train" in steps:
            _training_fields(ws, window)
    except (ValueError, WindowError) as exc:
        return refused(f"refused: {exc}")
    instance = dagster_instance(ws.paths)
    done = []
    for step in steps:
        where = f"train {_day_or_time(lo)}..{_day_or_time(hi)}"
        try:
            if step == "train":
                result = {"step": step, **_training_payload(ws, window)}
            else:
                result = {"step": step, "runs": []}
                for run, keys, count in planned[step]:
                    where = f"{step} {keys[0]}..{keys[1]}"
                    seconds = materialize(defs, instance, run.selection, run.tags, SILENT_LOGS,
                                          fail_on_checks=run.fail_on_checks)
                    result["runs"].append({"assets": run.selection, "partitions": count,
                                           "first": keys[0], "last": keys[1],
                                           "seconds": round(seconds, 1)})
        except StepFailed as exc:
            finished = ", ".join(d["step"] for d in done) or "none"
            # a failed run may still have written the partitions that passed: say where to look
            return refused(f"{failure_text(where, exc, ws.spec, lo, hi)}\n"
                           f"(steps done: {finished}; the failed step may have written some "
                           "partitions: `ml-assets status`)")
        if not args.json:  # each step's lines as it finishes
            _render_step(result)
        done.append(result)
    if args.json:
        print(json.dumps({"steps": done}, indent=2, default=str))
    return 0


def _render_reproduce(p: dict) -> None:
    verdict = "IDENTICAL" if p["identical"] else "NOT identical"
    diff = p["frozen_reference_max_abs_diff"]
    print(f"{p['version']}: {verdict} in {p['seconds']:.1f}s")
    print(f"  dataset sha256  match={p['dataset_sha256_match']}  "
          f"{p['recorded']['dataset_sha256'][:16]} vs {str(p['reproduced']['dataset_sha256'])[:16]}")
    print(f"  artifact sha256 match={p['artifact_sha256_match']}  "
          f"{p['recorded']['artifact_sha256'][:16]} vs {str(p['reproduced']['artifact_sha256'])[:16]}")
    print(f"  frozen-reference max |score diff|: {diff if diff is not None else 'n/a'}")
    for c in p["causes"]:
        print(f"  cause [{c['evidence']}] {c['kind']}: {c['detail']}")
    for n in p["notes"]:
        print(f"  note: {n}")


def cmd_reproduce(args, ws: Workspace) -> int:
    """``reproduce VERSION``: retrain from raw; exit 0 only when bit-identical."""
    from ml_assets.lib.core.artifacts import ArtifactIntegrityError
    from ml_assets.lib.core.registry import RegistryError
    from ml_assets.lib.training.reproduce import reproduce

    try:
        result = reproduce(ws, args.version, keep=args.keep)
    except (RegistryError, ArtifactIntegrityError, FileNotFoundError) as exc:
        return refused(f"refused: {exc}")
    ws.registry.record_drill_result("reproduce", result.version, result.identical,
                                    result.as_dict())
    emit(result.as_dict(), args.json, _render_reproduce)
    return 0 if result.identical else 1


def _render_incidents(p: dict) -> None:
    print(f"{'incident':<16} {'injected':>8} {'detected':>8}  {'by':<44} {'business':>8} "
          f"{'early':>5}  response")
    for r in p["incidents"]:
        print(f"{r['kind']:<16} {r['injected_day']:>8} {str(r['detected_day']):>8}  "
              f"{str(r['detected_by']) + ' (' + str(r['detected_level']) + ')':<44} "
              f"{str(r['business_alert_day']):>8} {r['alarms_before_labels']:>5}  "
              f"{'; '.join(r['automatic_response'])}")
    print(f"clean days {p['clean_days']}: ERROR alarms {p['clean_day_error_alarms']}, WARN "
          f"{p['clean_day_warn_alarms']}; evaluation alarms before labels matured: "
          f"{p['evaluation_alarms_before_labels_mature']}  ({p['seconds']:.0f}s)")
    print("days are day indices of the simulated timeline; 'early' = alarms from checks that "
          "read no labels, fired before the incident's first chargeback could land")


def cmd_drill(args, ws: Workspace) -> int:
    """``drill rollback|incidents|six-weeks``."""
    return {"rollback": cmd_drill_rollback, "incidents": _incidents,
            "six-weeks": _six_weeks}[args.kind](args, ws)


def _incidents(args, ws: Workspace) -> int:
    from ml_assets.scenarios.incident_replay import run_drill
    from ml_assets.scenarios.incidents import DrillPlan

    t0 = time.perf_counter()
    plan = DrillPlan(scale=args.scale or DrillPlan.scale)
    root = Path(tempfile.mkdtemp(prefix="incident-drill-"))
    result = run_drill(root, ws.spec, plan, log=_log(args))
    result["seconds"] = round(time.perf_counter() - t0, 1)
    result["world"] = str(root)
    ok = (result["summary"]["detected_before_business"] and not result["clean_day_error_alarms"]
          and result["summary"]["all_detected_by_next_day"]
          and not result["evaluation_alarms_before_labels_mature"])
    ws.registry.record_drill_result("incident_drill", ws.spec.model_name, ok,
                                    {k: v for k, v in result.items() if k != "alarms"})
    emit({k: v for k, v in result.items() if k != "alarms" or args.json}, args.json,
         _render_incidents)
    return 0 if ok else 1


def _six_weeks(args, ws: Workspace) -> int:
    from ml_assets.definitions import build_definitions
    from ml_assets.scenarios.six_weeks import six_weeks_ago
    from ml_assets.scenarios.synthetic import SyntheticConfig

    cfg = SyntheticConfig(days=args.days, scale=args.scale or 1.0)
    if args.days // 2 > args.days - 42:  # the first model (day days//2) must predate the rerun
        return refused(f"drill six-weeks --days {args.days}: the first model (day "
                       f"{args.days // 2}) would be trained after six weeks before the end; "
                       "use --days 84 or more")
    # the drill's own world and timeline, whatever start the data directory's demo has
    world = Workspace.open(args.world or tempfile.mkdtemp(prefix="six-weeks-"),
                           ws.spec.starting(cfg.start))
    world.paths.ensure()
    out = six_weeks_ago(world, cfg,
                        build_definitions(world.spec, str(world.paths.root)),
                        first_model_day=args.days // 2, every_days=args.every, log=_log(args))
    emit(out, args.json, lambda p: (print(f"world {world.paths.root}; {p['nights']} nights, "
                                          f"{p['later_models']} later model(s)"),
                                    _render_reproduce(p)))
    return 0 if out["identical"] else 1


def cmd_bench(args, ws: Workspace) -> int:
    """``bench``: the side-by-side performance report (JSON + Markdown)."""
    from ml_assets.bench.runner import run_bench

    result = run_bench(size=args.size, factors=tuple(args.factors), days=args.days,
                       threads=args.threads, out=Path(args.out).resolve(),
                       cache=ws.paths.root / "bench" / "worlds",
                       pandas_max_events=args.pandas_max_events, with_demo=args.with_demo,
                       sections=tuple(args.sections), data_dir=ws.paths.root,
                       peers_python=args.peers_python,
                       log=lambda msg: print(f"bench: {msg}", file=sys.stderr, flush=True))
    payload = {**result["headline"], "goals": result["goals"], "report_files": result["files"]}

    def render(p):
        for g in p["goals"]:
            met = "n/a " if g["met"] is None else ("met " if g["met"] else "MISS")
            print(f"{met} {g['goal']:<36} target {g['target']:<28} measured {g['value']}")
        print(f"Report: {p['report_files']['markdown']} (JSON: {p['report_files']['json']})")

    emit(payload, args.json, render)
    return 0


def cmd_serve(args, ws: Workspace) -> int:
    """``serve``: HTTP serving of precomputed lookups and realtime scoring (blocks). The
    interface contract, the data directory and its control plane are loaded first: an error in
    any is one line (exit 1) instead of following a banner that said serving."""
    from ml_assets.serving.app import create_app, serve

    app = create_app(ws.paths, ws.spec)
    ws.registry  # noqa: B018 - opened (and checked) now, not on the first request
    url = f"http://{args.host}:{args.port}"
    emit({"url": url, "data_dir": str(ws.paths.root)}, args.json,
         lambda p: print(f"serving {ws.spec.name} from {p['data_dir']} on {p['url']} "
                         "(GET /health, GET /scores/{event_id}, POST /predict)"), indent=None)
    serve(app, host=args.host, port=args.port)
    return 0


def cmd_sweep(args, ws: Workspace) -> int:
    """``sweep``: remove killed writers' temp files, mark runs of killed processes failed."""
    import dagster as dg

    from ml_assets.lib.core.paths import sweep_stale_temp_files
    from ml_assets.scenarios.runner import fail_orphaned_runs

    removed = sweep_stale_temp_files(ws.paths, args.min_age)
    runs = []
    if (ws.paths.dagster_home / "dagster.yaml").exists():
        runs = fail_orphaned_runs(dg.DagsterInstance.from_config(str(ws.paths.dagster_home)))
    emit({"removed_temp_files": [str(p) for p in removed], "failed_orphaned_runs": runs},
         args.json, lambda p: print(f"removed {len(p['removed_temp_files'])} temp file(s) of "
                                    f"killed writers; marked {len(p['failed_orphaned_runs'])} "
                                    "run(s) of killed processes failed"))
    return 0


def add_parsers(sub, actor: str) -> None:
    """Register the run commands (and ``drill``) on the ``ml-assets`` subparsers.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        The top-level subparsers.
    actor : str
        Default ``--actor`` of ``drill`` for the audit log (``$USER``).
    """
    demo = sub.add_parser(
        "demo", help="generate demo data ending at the current hour and materialize the whole "
                     "graph",
        description="The data is DAYS days, the last one today up to the current hour (UTC). "
                    "Where it starts is recorded in DATA_DIR/demo.json: every later command "
                    "loads the demo with that start, and a rerun lands the hours that passed.")
    demo.add_argument("--days", type=int, default=DEMO_DAYS,
                      help="days of data, the last one today: 60 of warm-up, then the first "
                           "model's window, then scoring")
    demo.add_argument("--scale", type=float, default=1.0,
                      help="1.0 is about 8,400 events a day (1.3M over 150 days)")
    demo.add_argument("--seed", type=int, default=7)
    demo.set_defaults(func=cmd_demo)
    train = sub.add_parser(
        "train", help="train and register a model on an explicit window through Dagster",
        description="Train on [start, end) with the labels known at the label cutoff; "
                    "DATE is YYYY-MM-DD (UTC midnight) or an ISO time with its offset.")
    train.add_argument("--start", type=utc_time, metavar="DATE",
                       help="window start (default: --window-days before --end, not before "
                            "the warm-up)")
    train.add_argument("--end", type=utc_time, metavar="DATE",
                       help="window end, exclusive (default: the label cutoff)")
    train.add_argument("--label-cutoff", type=utc_time, metavar="DATE",
                       help="labels dated and available before it are known (default: when "
                            "the latest label partition's labels became available: its day's "
                            "end plus the spec's label_ingest_delay)")
    train.add_argument("--window-days", type=int,
                       help="window length when --start is not given (default: the spec's)")
    train.add_argument("--test-start", type=utc_time, metavar="DATE",
                       help="held-out period start: its rows are the test split, the whole "
                            "window trains (with --test-end, outside the window)")
    train.add_argument("--test-end", type=utc_time, metavar="DATE",
                       help="held-out period end, exclusive, at most the label cutoff")
    train.set_defaults(func=cmd_train)
    run = sub.add_parser(
        "run", help="run pipeline steps over [--from, --to) through Dagster",
        description="Steps as range runs of their assets, as the demo runs them, in pipeline "
                    "order (ingest, features, train, score, monitor) however they are typed. --to is "
                    "EXCLUSIVE: --from 2026-08-01 --to 2026-08-08 is 7 days. DATE is "
                    "YYYY-MM-DD (UTC midnight) or an ISO time with its offset; partitions run "
                    "from the one holding --from to the last one ending by --to. train: the "
                    "window [from, to), labels known at --to.")
    run.add_argument("steps", nargs="+", choices=RUN_STEPS, metavar="STEP",
                     help=f"one or more of {', '.join(RUN_STEPS)}; run in that order")
    run.add_argument("--from", dest="date_from", type=utc_time, metavar="DATE", required=True,
                     help="first time covered (inclusive)")
    run.add_argument("--to", dest="date_to", type=utc_time, metavar="DATE", required=True,
                     help="end of the range, EXCLUSIVE")
    run.set_defaults(func=cmd_run)
    rep = sub.add_parser("reproduce", help="retrain VERSION from raw landing data; identical?")
    rep.add_argument("version")
    rep.add_argument("--keep", action="store_true", help="keep the scratch directory")
    rep.set_defaults(func=cmd_reproduce)
    serve = sub.add_parser("serve", help="HTTP serving: precomputed lookups + realtime scoring")
    serve.add_argument("--host", default="127.0.0.1", help="bind address (default localhost only)")
    serve.add_argument("--port", type=int, default=8000)
    serve.set_defaults(func=cmd_serve)
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
    drill.add_argument("--lease-seconds", type=float, default=300.0,
                       help="rollback: how long the drill's kill-switch flip is leased; if the "
                            "drill dies, the flip is reverted once the lease expires")
    drill.add_argument("--actor", default=actor, help="who (default $USER), for the audit log")
    drill.set_defaults(func=cmd_drill)
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
    bench.add_argument("--sections", nargs="*", default=list(BENCH_SECTIONS),
                       choices=BENCH_SECTIONS, help="besides the feature build (always run)")
    bench.add_argument("--peers-python", metavar="PATH",
                       help="the Python of `make bench-peers` (.venv-peers/bin/python): runs "
                            "Evidently and NannyML on the same data; without it their figures "
                            "are null with the reason")
    bench.set_defaults(func=cmd_bench)
    sweep = sub.add_parser("sweep", help="remove temp files killed writers left; fail runs of "
                                         "killed processes (every demo/drill does it first)")
    sweep.add_argument("--min-age", type=float, default=300.0,
                       help="seconds a dead writer's temp file must be old (default 300)")
    sweep.set_defaults(func=cmd_sweep)
