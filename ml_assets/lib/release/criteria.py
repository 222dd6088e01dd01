"""The playbook's success criteria as one scorecard of measured facts: how long the current
champion takes to retrain from raw (and whether it came out identical), days since the last
rollback drill, how far drift monitoring ran ahead of the business metric in the last incident
drill, and the last three deploys with the incidents that followed each ("boring deploys").

Drill outcomes are recorded in the control plane (``Registry.record_drill_result``, append-only)
by whoever measured them: ``ml-assets reproduce``, the ``reproduce_training_job`` job, ``ml-assets drill
incidents``."""

from __future__ import annotations

from datetime import datetime

from ml_assets.lib.core.markdown import table
from ml_assets.lib.core.workspace import Workspace
from ml_assets.lib.monitoring.alerts import alerts_dir, read_alerts
from ml_assets.lib.release.rollback import drill_status

REPRODUCE_LIMIT_SECONDS = 30 * 60  # the playbook's bar for a rerun from raw
DEPLOY_ACTIONS = ("promote", "rollback")


def deploys_with_incidents(ws: Workspace, limit: int = 3) -> list[dict]:
    """The last ``limit`` champion changes, each with what happened until the next one.

    Parameters
    ----------
    ws : Workspace
        Its registry's audit log gives the deploys; its data directory holds the alerts.
    limit : int, default 3
        How many deploys to return.

    Returns
    -------
    list of dict
        Newest first: ``ts``, ``action``, ``version``, ``actor``, ``reason``, ``incidents``
        (ERROR alerts by category, kill-switch flips outside drills, "rolled back") and
        ``boring`` (no incidents).
    """
    audit = sorted(ws.registry.audit_log(limit=10_000), key=lambda a: a["id"])
    deploys = [a for a in audit if a["action"] in DEPLOY_ACTIONS
               or (a["action"] == "alias:champion" and a["reason"] == "registered by training")]
    alerts = [a for a in read_alerts(alerts_dir(ws.paths.root)) if a["level"] == "error"]
    out = []
    for i, d in enumerate(deploys):
        end = deploys[i + 1]["ts"] if i + 1 < len(deploys) else "9999"
        during = [a for a in audit if d["ts"] <= a["ts"] < end]
        errors = [a for a in alerts if d["ts"] <= a["created_at"] < end]
        kills = [a for a in during if a["action"] == "set:kill_switch" and a["target"] == "on"
                 and not a["reason"].startswith("rollback drill")]
        rolled_back = i + 1 < len(deploys) and deploys[i + 1]["action"] == "rollback"
        incidents = [f"{a['asset']}:{a['check']} ({a['category']})" for a in errors]
        incidents += [f"kill switch on: {a['reason']}" for a in kills]
        incidents += ["rolled back"] if rolled_back else []
        out.append({"ts": d["ts"], "action": d["action"], "version": d["target"],
                    "actor": d["actor"], "reason": d["reason"], "incidents": incidents,
                    "boring": not incidents})
    return out[-limit:][::-1]


def scorecard(ws: Workspace, now: datetime | None = None) -> dict:
    """The success criteria of ``ws.spec``'s champion, from facts in the control plane.

    Parameters
    ----------
    ws : Workspace
        Paths, spec and registry of the deployment.
    now : datetime, optional
        The time the rollback-drill age is measured at (default: now, UTC).

    Returns
    -------
    dict
        ``champion``, ``reproduce`` (None if never measured), ``rollback_drill``,
        ``incident_drill`` (None if never drilled) and ``last_deploys``.
    """
    registry, spec = ws.registry, ws.spec
    champion = registry.aliases(spec.model_name)["champion"]
    rep = registry.latest_drill_result("reproduce", champion) if champion else None
    drill = drill_status(registry, spec, now)
    incidents = registry.latest_drill_result("incident_drill")
    return {
        "champion": champion,
        "reproduce": None if rep is None else {
            "measured_at": rep["ts"], "identical": rep["identical"], "seconds": rep["seconds"],
            "within_limit": rep["identical"] and rep["seconds"] <= REPRODUCE_LIMIT_SECONDS,
            "causes": [c["kind"] for c in rep.get("causes", [])]},
        "rollback_drill": {"days_since_last": drill["age_days"], "ok": drill["ok"],
                           "reason": drill["reason"]},
        "incident_drill": None if incidents is None else {
            "measured_at": incidents["ts"],
            "min_lead_days": incidents["summary"]["min_lead_days"],
            "detected_before_business": incidents["summary"]["detected_before_business"],
            "clean_day_error_alarms": incidents["summary"]["clean_day_error_alarms"]},
        "last_deploys": deploys_with_incidents(ws),
    }


def render_markdown(card: dict) -> str:
    """The success-criteria card as Markdown.

    Parameters
    ----------
    card : dict
        What ``scorecard`` returns.

    Returns
    -------
    str
        A criteria table (measured vs target) and a table of the last deploys, newline-ended.
    """
    rep, drill, inc = card["reproduce"], card["rollback_drill"], card["incident_drill"]
    criteria = [
        ["rerun the champion's training from raw",
         f"{'identical' if rep['identical'] else 'NOT identical ' + str(rep['causes'])} in "
         f"{rep['seconds']:.0f}s ({rep['measured_at']})" if rep else
         f"never measured: `ml-assets reproduce {card['champion']}`", "identical, < 30 min"],
        ["rollback drill", f"{drill['days_since_last']:.1f} days ago"
         if drill["days_since_last"] is not None else drill["reason"], "within 90 days"],
        ["drift caught before the business metric",
         f"lead {inc['min_lead_days']} day(s); all incidents before business: "
         f"{inc['detected_before_business']}; clean-day ERROR alarms "
         f"{inc['clean_day_error_alarms']} ({inc['measured_at']})" if inc else
         "never drilled: `ml-assets drill incidents`", "detected first, 0 false alarms"]]
    deploys = [[d["ts"], d["action"], d["version"],
                "boring" if d["boring"] else "; ".join(d["incidents"])]
               for d in card["last_deploys"]] or [[None, None, None, "no deploys yet"]]
    return "\n".join(["# Success criteria", "", table(["criterion", "measured", "target"], criteria),
                      "", "## Last deploys", "",
                      table(["when", "action", "version", "incidents"], deploys)]) + "\n"
