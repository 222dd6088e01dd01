"""What `ml-assets status` reports: aliases, kill switch, rollout stage, lake partitions, late
or future-dated landing files and the latest result of every asset check."""

from datetime import UTC, datetime

import dagster as dg

from ml_assets.defs.freshness import judged_at
from ml_assets.lib.core.catalog import PIPELINE_TABLES, Catalog
from ml_assets.lib.core.paths import DataPaths
from ml_assets.lib.core.workspace import Workspace
from ml_assets.lib.ingest.integrity import late_files
from ml_assets.lib.ingest.landing import feed_layouts
from ml_assets.scenarios.runner import open_instance


def lake_partitions(paths: DataPaths, judged: datetime) -> dict:
    """Each pipeline table's partitions, and how many whole periods its latest one ends before
    ``judged`` (the freshness reference: now, or a historical dataset's end)."""
    out, catalog = {}, Catalog(paths.lake)
    for asset in PIPELINE_TABLES:
        table = catalog.table(asset)
        stems = [p.stem for p in table.files()]
        behind = (max(0, (judged - table.start(stems[-1]) - table.step) // table.step)
                  if stems else None)
        out[asset] = {"partitions": len(stems), "first": stems[0] if stems else None,
                      "latest": stems[-1] if stems else None, "behind": behind,
                      "path": str(table.dir)}
    return out


def latest_checks(paths: DataPaths, defs: dg.Definitions) -> list[dict]:
    """Latest evaluation per check from the Dagster instance under the data directory."""
    if not (paths.dagster_home / "history").exists():
        return []
    instance = open_instance(paths)
    out = []
    for checks_def in defs.asset_checks or []:
        for key in checks_def.check_keys:
            history = instance.event_log_storage.get_asset_check_execution_history(key, limit=1)
            if not history or history[0].event is None:
                continue
            evaluation = history[0].event.dagster_event.event_specific_data
            out.append({"asset": key.asset_key.to_user_string(), "check": key.name,
                        "passed": bool(getattr(evaluation, "passed", False)),
                        "severity": getattr(getattr(evaluation, "severity", None), "value", None),
                        "description": getattr(evaluation, "description", None)})
    return out


def status(ws: Workspace, defs: dg.Definitions) -> dict:
    """The ``ml-assets status`` payload of the workspace; ``defs`` names the checks to report."""
    from ml_assets.lib.release import rollback

    spec, paths, registry = ws.spec, ws.paths, ws.registry
    reverted = rollback.expire_drill_flip(registry)  # a dead drill's flip: undone, audited
    aliases = registry.aliases(spec.model_name)
    checks = latest_checks(paths, defs)
    judged = judged_at(spec, datetime.now(UTC))
    layouts = feed_layouts(paths, spec)
    return {
        "dataset": spec.name,
        "model_name": spec.model_name,
        "data_dir": str(paths.root),
        "champion": aliases["champion"],
        "aliases": aliases,
        "kill_switch": registry.get_setting("kill_switch", "off"),
        "rollout_stage": registry.get_setting("rollout_stage", "none"),
        "drill_flip": rollback.drill_flip(registry),
        "reverted_drill_flip": reverted,
        "feature_schema_version": spec.schema_version,
        "end": spec.end_utc.isoformat() if spec.end_utc else None,
        "freshness_judged_at": judged.isoformat(timespec="seconds"),
        "lake": lake_partitions(paths, judged),
        "late_landing_files": [f.as_dict() for f in late_files(paths, registry, spec, layouts)],
        "landing_notes": [n for _, layout in layouts for n in layout.notes],
        "checks": checks,
        "failing_checks": [c for c in checks if not c["passed"]],
    }
