"""CLI commands for the success criteria: `reproduce`, `drill incidents`, `drill six-weeks` and
`status --criteria`. Results are recorded in the control plane for the scorecard."""

import json
import sys
import tempfile
from pathlib import Path


def _emit(payload: dict, as_json: bool, render) -> None:
    if as_json:
        print(json.dumps(payload, indent=2, default=str))
    else:
        render(payload)


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


def reproduce(args, spec, paths, _fallback=None) -> int:
    from ml_assets.lib.core.artifacts import ArtifactIntegrityError
    from ml_assets.lib.core.registry import RegistryError
    from ml_assets.lib.release import criteria
    from ml_assets.lib.training.reproduce import reproduce as run

    try:
        result = run(paths, spec, args.version, keep=args.keep)
    except (RegistryError, ArtifactIntegrityError, FileNotFoundError) as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 1
    criteria.record_result(paths, "reproduce", result.version, result.identical, result.as_dict())
    _emit(result.as_dict(), args.json, _render_reproduce)
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


def drill(args, spec, paths, fallback) -> int:
    if args.kind == "rollback":
        return fallback(args, spec, paths)
    return (_incidents if args.kind == "incidents" else _six_weeks)(args, spec, paths)


def _incidents(args, spec, paths) -> int:
    import time

    from ml_assets.lib.release import criteria
    from ml_assets.scenarios.incident_replay import run_drill
    from ml_assets.scenarios.incidents import DrillPlan

    t0 = time.perf_counter()
    plan = DrillPlan(scale=args.scale or DrillPlan.scale)
    root = Path(tempfile.mkdtemp(prefix="incident-drill-"))
    log = (lambda *_: None) if args.json else (lambda m: print(m, file=sys.stderr))
    result = run_drill(root, spec, plan, log=log)
    result["seconds"] = round(time.perf_counter() - t0, 1)
    result["world"] = str(root)
    ok = (result["summary"]["detected_before_business"] and not result["clean_day_error_alarms"]
          and result["summary"]["all_detected_by_next_day"]
          and not result["evaluation_alarms_before_labels_mature"])
    criteria.record_result(paths, "incident_drill", spec.model_name, ok,
                           {k: v for k, v in result.items() if k != "alarms"})
    _emit({k: v for k, v in result.items() if k != "alarms" or args.json}, args.json,
          _render_incidents)
    return 0 if ok else 1


def _six_weeks(args, spec, paths) -> int:
    from ml_assets.definitions import build_definitions
    from ml_assets.lib.core.paths import DataPaths
    from ml_assets.scenarios.six_weeks import six_weeks_ago
    from ml_assets.scenarios.synthetic import SyntheticConfig

    world = DataPaths(Path(args.world or tempfile.mkdtemp(prefix="six-weeks-"))).ensure()
    log = (lambda *_: None) if args.json else (lambda m: print(m, file=sys.stderr))
    out = six_weeks_ago(world, spec, SyntheticConfig(days=args.days, scale=args.scale or 1.0),
                        build_definitions(spec, str(world.root)),
                        first_model_day=args.days // 2, every_days=args.every, log=log)
    _emit(out, args.json, lambda p: (print(f"world {world.root}; {p['nights']} nights, "
                                           f"{p['later_models']} later model(s)"),
                                     _render_reproduce(p)))
    return 0 if out["identical"] else 1


def status(args, spec, paths, fallback) -> int:
    if not args.criteria:
        return fallback(args, spec, paths)
    from ml_assets.lib.release import criteria

    card = criteria.scorecard(paths, spec)
    _emit(card, args.json, lambda c: print(criteria.render_markdown(c)))
    return 0
