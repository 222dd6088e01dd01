"""The four document renderers: each builds one Markdown document of a model version from
recorded facts only (registry cards, aliases, the recorded shadow report, rollout transitions,
drills, the interface contract). ``documents.py`` lists them and writes them out.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

from ml_assets.lib.core.artifacts import sha256_file
from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.markdown import cell, table
from ml_assets.lib.core.paths import DataPaths
from ml_assets.lib.core.registry import Registry
from ml_assets.lib.docs.interface_contract import InterfaceContract, contract_path, load_contract
from ml_assets.lib.release import rollout, shadow
from ml_assets.lib.release.rollback import DRILL_MAX_AGE, drill_status, readiness


# -- Markdown helpers -----------------------------------------------------------------------
def _fields(fields: dict) -> str:
    return table(["Field", "Value"], [[k, v] for k, v in fields.items()])


NOT_MEASURED = "not measured"


def _plain(value: object) -> str:
    """A recorded value as reader's text, never a Python repr: a dict becomes ``key: value``
    pairs, a list a comma list, a bool yes/no, None or NaN "not measured" (the recorder had
    nothing to measure, e.g. no labels yet or one class only), a whole float an integer
    (``100000``, not ``1e+05``), any other float 4 significant digits."""
    if isinstance(value, dict):
        return "; ".join(f"{k.replace('_', ' ')}: {_plain(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(map(_plain, value))
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return NOT_MEASURED
    if isinstance(value, float) and value.is_integer():
        return cell(int(value))
    return cell(value)


def _num(x: float | None, unknown: str = NOT_MEASURED) -> str:
    """A metric to 4 decimals, or ``unknown`` when it is None or NaN (nothing to measure)."""
    return unknown if x is None or math.isnan(x) else f"{x:.4f}"


def _metrics(m: dict) -> str:
    def f(x):
        return _num(x, f"{NOT_MEASURED} (one class)")
    return (f"AUC {f(m['auc'])}, PR-AUC {f(m['pr_auc'])}, Brier {f(m['brier'])}, "
            f"decision rate {m['decision_rate']:.4f} on {m['rows']:,} rows")


def _per_day(m: dict | None) -> str:
    """The per-day held-out AUC baseline a mature day is compared with (``auc_baseline``)."""
    m = m or {}
    if "auc_p50" not in m:
        return ("not recorded on this card: a mature day's AUC is compared with the pooled "
                "held-out AUC" + (f" ({m['days']} usable held-out days)" if "days" in m else ""))
    return (f"median {_num(m['auc_p50'])}, p25 {_num(m['auc_p25'])}, p05 {_num(m['auc_p05'])} "
            f"over {m['days']} mature held-out days (median {m['positives_p50']:.0f} positives);"
            f" between-day SD {_num(m['between_day_sd'])}"
            + (f" (95% upper bound {_num(m['between_day_sd_upper'])}, the one days are held to)"
               if "between_day_sd_upper" in m else ""))


# -- facts ----------------------------------------------------------------------------------
def _contract_source(contract: InterfaceContract) -> str:
    """The override file's SHA-256, or that every term is a documented default (and the file's
    name: its directory is this host's, the reader's checkout may differ)."""
    if contract.path is None:
        return f"defaults (no override file {contract_path(contract.spec).name})"
    return sha256_file(contract.path)


# The runbook is read on another machine (an on-call laptop, a restored backup), so its
# commands name the deployment through its configuration, never this host's paths: the
# `ml-assets` console script on PATH (installed with the package; a checkout's `.venv/bin` is
# one host's layout) and the data directory from the variable the CLI itself reads.
CLI = 'ml-assets --data-dir "$ML_ASSETS_DATA_DIR"'
DEPLOYMENT = ("`$ML_ASSETS_DATA_DIR`: this deployment's data directory, the one holding "
              "`docs/{model}/{version}/rollback_runbook.md` (set it before the commands)")


def _role(registry: Registry, spec: DatasetSpec, version: str) -> str:
    roles = [a for a, v in registry.aliases(spec.model_name).items() if v == version]
    return ", ".join(roles) or "retired (no alias)"


def _deployed(registry: Registry, version: str) -> str:
    """When the version first became champion (promotion or first registration)."""
    for r in reversed(registry.audit_log(limit=1_000_000)):
        if r["target"] == version and r["action"] in ("promote", "alias:champion", "rollback"):
            return f"{r['ts']} ({r['action']} by {r['actor']}: {r['reason']})"
    return None


def _slo(contract: InterfaceContract) -> str:
    p, lk = contract.slo("predict"), contract.slo("lookup")
    return (f"predict p50/p95/p99 {p['p50']}/{p['p95']}/{p['p99']} ms; lookup p99 {lk['p99']} "
            f"ms; {contract.config['slo']['throughput_rps']['predict']} predict rps")


def _history_lines(registry: Registry, version: str) -> list[list]:
    return [[h["ts"], h["action"], h["actor"], h["reason"]]
            for h in rollout.history(registry, version)]


# -- documents ------------------------------------------------------------------------------
def model_card(paths: DataPaths, spec: DatasetSpec, registry: Registry, version: str) -> str:
    """Model card of ``version`` (Markdown): registry card, role, SLO, rollout history."""
    card = registry.get_model(version)
    contract = load_contract(spec)
    aliases = registry.aliases(spec.model_name)
    role = _role(registry, spec, version)
    deployed = _deployed(registry, version) or f"not deployed: current role {role}"
    back = aliases["previous"] if aliases["champion"] == version else aliases["champion"]
    fields = {
        "Version": version, "Owner": card["owner"], "Dataset SHA-256": card["dataset_sha256"],
        **window_fields(card),
        "Label cutoff": card["label_cutoff"],
        "Seed": card["seed"], "Feature schema version": card["feature_schema_version"],
        "Dataset spec": _spec_origin(card.get("spec")),
        "Code commit": f"{card['code_commit']}{' (dirty tree)' if card['code_dirty'] else ''}",
        "Lockfile SHA-256": card["lockfile_sha256"], "Artifact SHA-256": card["artifact_sha256"],
        "Held-out metrics": _metrics(card["metrics"]["held_out"]),
        "Held-out per-day AUC": _per_day(card["metrics"].get("held_out_per_day")),
        "Frozen-reference metrics": _metrics(card["metrics"]["frozen_reference"]),
        "Serving SLO": _slo(contract), "Current role": role, "Deploy date": deployed,
        "Rollback procedure": (f"`{CLI} kill-switch on --reason ...` serves {back} from the "
                               f"next request; `{CLI} rollback` makes it champion "
                               "(see rollback_runbook.md)" if back else
                               "no other version is registered to roll back to"),
    }
    rows = card["rows"]
    return "\n\n".join([
        f"# Model card: {version}", _fields(fields),
        "## Training data", table(["split", "rows"], [[k, v] for k, v in rows.items()]),
        "## Provenance", table(["library", "version"],
                                [[k, v] for k, v in card["library_versions"].items()]),
        "## Rollout history (audit log)",
        table(["when", "action", "who", "why"], _history_lines(registry, version))
        if rollout.history(registry, version) else
        f"No rollout transitions recorded for {version}; current role: {role}.",
    ]) + "\n"


def window_fields(card: dict) -> dict[str, str]:
    """The model card's training window, its warm start and its held-out period, each with
    what it means (the last two only when the card records them).

    Parameters
    ----------
    card : dict
        A model card as ``Registry.get_model`` returns it.

    Returns
    -------
    dict
        ``Training window``, ``Warm start`` and ``Held-out period`` document fields.
    """
    w, held = card["training_window"], card.get("held_out_period")
    fields = {"Training window": f"{w['start']} to {w['end']} (events trained on, end "
                                 "exclusive)"}
    if "warm_start" in w:
        fields["Warm start"] = f"{w['warm_start']}: first time every feature is in steady " + (
            "state; the window starts after it" if w.get("warm") else
            "state; the window starts before it, so label features were still gaining late "
            "labels")
    if held:
        fields["Held-out period"] = (f"{held['start']} to {held['end']}: its events are the "
                                     "test split (the held-out metrics); the window gives "
                                     "train and validation only")
    return fields


def _spec_origin(origin: dict | None) -> str:
    """The card's ``spec`` field: where the spec was loaded from and its file's SHA-256."""
    if not origin:
        return "not recorded (built in code, not loaded from a file or module)"
    return f"`{origin['ref']}` (SHA-256 {origin['sha256']})"


def _signoffs(registry: Registry, version: str, contract: InterfaceContract) -> list[list]:
    starts = [h for h in rollout.history(registry, version) if h["action"] == "rollout:1"]
    decision = (f"rollout started {starts[-1]['ts']} by {starts[-1]['actor']}: "
                f"{starts[-1]['reason']}" if starts else "no rollout decision recorded (in shadow)")
    return [[p, decision] for p in contract.config["contract"]["signed_by"]]


def shadow_checklist(paths: DataPaths, spec: DatasetSpec, registry: Registry,
                     version: str) -> str:
    """Shadow checklist of ``version`` (Markdown) from its recorded shadow report, if any."""
    report = shadow.recorded(paths, version)
    contract = load_contract(spec)
    signoffs = _signoffs(registry, version, contract)
    if report is None:
        how = _deployed(registry, version) or f"registered as {_role(registry, spec, version)}"
        return "\n\n".join([f"# Shadow-mode checklist: {version}", _fields({
            "Challenger": version, "Champion": "none: no shadow comparison recorded",
            "Shadow window": "none recorded", "Days of data": 0,
            "Label horizon": "none recorded", "Gate": f"not evaluated; {how}",
            "Items passed": "0 of 0", "Recorded decision": signoffs[0][1]})]) + "\n"
    items = report["checklist"]
    oo = report["offline_online"]
    fields = {
        "Challenger": version, "Champion": report["champion"],
        "Shadow window": f"{report['window']['start']} to {report['window']['end']}",
        "Days of data": report["days_of_data"],
        "Label horizon": report["label_horizon"] or "no labels ingested",
        "Gate": ("PASSED" if report["gate_passed"] else "FAILED")
        + f" (computed {report['computed_at']})",
        "Items passed": f"{sum(i['passed'] for i in items)} of {len(items)}",
        "Recorded decision": signoffs[0][1],
    }
    return "\n\n".join([
        f"# Shadow-mode checklist: {version}", _fields(fields),
        "## Checklist", table(["item", "what", "measured", "threshold", "status"],
                               [[i["item"], i["description"], _plain(i["value"]),
                                 _plain(i["threshold"]), i["status"].upper()] for i in items]),
        "## Offline vs online", table(["measure", "value"], [
            ["held-out AUC (champion, challenger)",
             _plain([oo["held_out_auc"]["champion"], oo["held_out_auc"]["challenger"]])],
            ["online AUC (champion, challenger)",
             _plain([oo["online_auc"]["champion"], oo["online_auc"]["challenger"]])],
            ["held-out lift, online lift", _plain([oo["held_out_lift"], oo["online_lift"]])],
            ["labeled events (positives)",
             f"{_plain(oo['labeled_events'])} ({_plain(oo['labeled_positives'])})"],
            ["possible leakage", _plain(oo["possible_leakage"])]]),
        "## Latency", table(["version", "p50 ms", "p95 ms", "p99 ms", "samples", "source"],
                             [[v, x["p50_ms"], x["p95_ms"], x["p99_ms"], x["samples"],
                               x["source"]] for v, x in report["latency"].items()]),
        "## Edge cases", table(["kind", "rows", "challenger failures", "disagreement rate"],
                                [[k, e["rows"], e["challenger_failures"],
                                  e["disagreement_rate"]]
                                 for k, e in report["edge_cases"].items()]),
        "## Daily", table(["day", "events", "disagreement", "score PSI", "Spearman"],
                           [[d["day"][:10], d["events"], d["disagreement_rate"],
                             d["score_psi"], d["rank_correlation"]] for d in report["daily"]]),
        "## Sign-off", table(["stakeholder", "recorded decision"], signoffs),
    ]) + "\n"


def rollback_runbook(paths: DataPaths, spec: DatasetSpec, registry: Registry,
                     version: str) -> str:
    """Rollback runbook (Markdown): target readiness, last drill, steps, recent audit log."""
    aliases = registry.aliases(spec.model_name)
    champion, target = aliases["champion"], aliases["previous"]
    ready = readiness(registry, paths, spec, target)
    drills = registry.drills(spec.model_name, limit=1)
    status = drill_status(registry, spec)
    contract = load_contract(spec)
    if drills:
        d = drills[0]
        last = (f"{d['ts']}: {'PASSED' if d['ok'] else 'FAILED'}, {d['champion_version']} -> "
                f"{d['previous_version']}, time to effect {d['time_to_effect_ms']} ms")
    else:
        last = "no rollback drill recorded for this model"
    own, auth = contract.config["ownership"], contract.config["rollback_authority"]
    notify = (f"wrong predictions: {own['wrong_predictions']}; 5xx: {own['service_errors_5xx']};"
              f" rollback: {auth['rollback']}")
    fields = {
        "Deployment": DEPLOYMENT.format(model=spec.model_name, version=version), "Champion": champion or "none",
        "Rollback target": target or "none: no previous version (kill switch refuses)",
        "Rollback target ready": "yes (artifact SHA-256 verified, features computable)"
        if ready.ok else "NO: " + "; ".join(ready.reasons),
        "Kill switch": registry.get_setting("kill_switch", "off"), "Last drill": last,
        "Drill age": (f"{status['age_days']} days (limit {DRILL_MAX_AGE.days})"
                      if status["age_days"] is not None else status["reason"]),
        "Notify": notify,
    }
    if target:
        steps = [
            f"1. Flip the kill switch (effect on the next request, no redeploy):\n\n"
            f"   `{CLI} kill-switch on --reason \"<incident id>: <what you saw>\"`",
            f"2. Verify the previous model serves: `curl -s http://127.0.0.1:8000/health` must "
            f"show `\"model_version\": \"{target}\"` and `\"kill_switch\": true`; "
            f"`{CLI} status --json` shows the same aliases.",
            f"3. Make it permanent if needed: `{CLI} rollback --from {champion} --reason "
            f"\"<incident id>\"` "
            f"({target} becomes champion, {champion} previous, switch reset).",
        ]
    else:  # nothing to fall back to: say so instead of naming a version that does not exist
        steps = [
            "1. There is no previous version: `kill-switch on` and `rollback` refuse (there is "
            "no verified model to fall back to).",
            "2. Callers switch to their own fallback (see the interface contract) until a fixed "
            "model is served.",
            "3. Register a fixed challenger and promote it through its gate; this runbook then "
            "names the version it replaced as the rollback target.",
        ]
    steps += [
        f"{len(steps) + 1}. Exercise this path every {DRILL_MAX_AGE.days} days: "
        f"`{CLI} drill rollback`.",
        f"{len(steps) + 2}. Notify: {notify}.",
    ]
    audit = [[r["ts"], r["action"], r["target"], r["actor"], r["reason"]]
             for r in registry.audit_log(limit=10)]
    return "\n\n".join([
        f"# Rollback runbook: {spec.model_name} (written for {version})", _fields(fields),
        "## Steps", "\n".join(steps),
        "## Recent control-plane changes (audit log)",
        table(["when", "action", "target", "who", "why"], audit),
        "## Postmortem template",
        f"- Incident id and severity:\n- Detected at / by (alert, check, person):\n"
        f"- Kill switch flipped at (audit log `set:kill_switch`):\n"
        f"- Versions involved: champion {champion or 'none'}, rollback target "
        f"{target or 'none'}\n"
        f"- Impact on {spec.business_metric.name if spec.business_metric else 'the business'}"
        f" (monitoring `business_metric` for the affected days):\n- Root cause:\n"
        f"- What detected it earlier or would have:\n- Follow-ups (owner, due date):",
    ]) + "\n"


def _measured_latency(paths: DataPaths, spec: DatasetSpec, version: str) -> tuple[str, float | None]:
    """Realtime end-to-end latency from the prediction log; else the shadow report's
    model-call timing. Returns (text, p99 in ms, None when nothing was measured)."""
    logged = shadow.load_latency_log(paths, spec, [version], datetime(1970, 1, 1, tzinfo=UTC),
                                     datetime.now(UTC))
    if len(logged):
        q = logged["latency_ms"].quantile([0.5, 0.95, 0.99]).tolist()
        return (f"p50/p95/p99 {q[0]:.2f}/{q[1]:.2f}/{q[2]:.2f} ms over {len(logged):,} logged "
                "POST /predict requests", q[2])
    report = shadow.recorded(paths, version) or shadow.last_recorded(paths)
    lat = report["latency"].get(version) if report else None
    if lat:
        return (f"p50/p95/p99 {lat['p50_ms']:.2f}/{lat['p95_ms']:.2f}/{lat['p99_ms']:.2f} ms "
                f"({lat['source']}, {lat['samples']} calls, shadow report "
                f"{report['computed_at']})", lat["p99_ms"])
    return "no latency recorded for this version (no logged requests, no shadow report)", None


def interface_contract(paths: DataPaths, spec: DatasetSpec, registry: Registry,
                       version: str) -> str:
    """Interface contract (Markdown): the spec's schema and the contract's terms (defaults or
    the override file), with measured latency (ms)."""
    contract = load_contract(spec)
    cfg = contract.config
    latency, p99 = _measured_latency(paths, spec, version)
    budget = cfg["error_budget"]
    report = shadow.recorded(paths, version)
    errors = report["cumulative"] if report else None
    consumed = (f"{errors['error_rate'] / budget['max_5xx_rate']:.1%} of the budget: "
                f"{errors['missing_challenger_scores'] + errors['nan_inf_scores']} failed of "
                f"{errors['events']:,} scored events in shadow (5xx are not logged by the app)"
                if errors else "0 failures recorded: no shadow report and no error log")
    slo_p = contract.slo("predict")
    signed_sha = sha256_file(contract.path)[:16] if contract.path else "defaults"
    fields = {
        "Dataset": spec.name, "Contract version": cfg["contract"]["version"],
        "Contract file SHA-256": _contract_source(contract),
        "Feature schema version": spec.schema_version,
        "Latency SLO (predict)": f"p50 {slo_p['p50']} / p95 {slo_p['p95']} / p99 {slo_p['p99']} ms",
        "Measured latency": latency + (f"; p99 {'meets' if p99 <= slo_p['p99'] else 'MISSES'}"
                                       " the SLO" if p99 is not None else ""),
        "Error budget": f"{budget['max_5xx_rate']:.2%} 5xx over {budget['window_days']} days",
        "Error budget consumed": consumed,
        "Ownership": _plain(cfg["ownership"]),
        "Rollback authority": _plain(cfg["rollback_authority"]),
        "Signed by": ", ".join(cfg["contract"]["signed_by"]),
    }
    schema = [[n, f["type"], *(_plain(f[k]) if k in f else "" for k in
                               ("required", "nullable", "minimum", "maximum"))]
              for n, f in contract.input_schema().items()]
    return "\n\n".join([
        f"# Interface contract: {spec.name} (serving {version})", _fields(fields),
        "## Input", table(["field", "type", "required", "nullable", "min", "max"], schema),
        "## Output", table(["field", "type"], [[n, f["type"]] for n, f in
                                                contract.output_schema().items()]),
        "## Errors", table(["status", "meaning"], list(map(list, contract.errors().items()))),
        "## SLOs", table(["path", "p50 ms", "p95 ms", "p99 ms", "rps"], [
            [p, contract.slo(p)["p50"], contract.slo(p)["p95"], contract.slo(p)["p99"],
             cfg["slo"]["throughput_rps"][p]] for p in ("lookup", "predict")]),
        "## Signatures", table(["party", "signed version", "file sha256"],
                                [[p, cfg["contract"]["version"], signed_sha]
                                 for p in cfg["contract"]["signed_by"]]),
    ]) + "\n"
