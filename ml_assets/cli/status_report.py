"""What `ml-assets status` reports: aliases, kill switch, rollout stage, lake partitions, late
or future-dated landing files and every asset check's verdict over all its partitions."""

from datetime import UTC, datetime, timedelta

import dagster as dg

from ml_assets.defs.freshness import judged_at
from ml_assets.lib.core.catalog import PIPELINE_TABLES, Catalog
from ml_assets.lib.core.lake import periods_in
from ml_assets.lib.core.paths import DataPaths
from ml_assets.lib.core.workspace import Workspace
from ml_assets.lib.ingest.integrity import late_files
from ml_assets.lib.ingest.landing import feed_layouts
from ml_assets.scenarios.runner import open_instance


def lake_partitions(catalog: Catalog, judged: datetime) -> dict:
    """Each pipeline table's partitions, how many are missing between its first and latest
    (``gaps``, e.g. a range whose ingest failed; ``first_gap`` names one), and how many whole
    periods its latest one ends before ``judged`` (the freshness reference: now, or a
    historical dataset's end)."""
    out = {}
    for asset in PIPELINE_TABLES:
        table = catalog.table(asset)
        stems = [p.stem for p in table.files()]
        starts = [table.start(s) for s in stems]
        gaps = sorted(set(periods_in(starts[0], starts[-1] + table.step, table.step))
                      - set(starts)) if starts else []
        behind = (max(0, (judged - starts[-1] - table.step) // table.step) if stems else None)
        out[asset] = {"partitions": len(stems), "first": stems[0] if stems else None,
                      "latest": stems[-1] if stems else None, "gaps": len(gaps),
                      "first_gap": table.stem(gaps[0]) if gaps else None, "behind": behind,
                      "period": "day" if table.step == timedelta(days=1) else "hour",
                      "path": str(table.dir)}
    return out


FAILING_NAMED = 3  # failing partitions named per check; the rest are counted
WORST_OF = 100  # failing partitions read for their severity (an ERROR among WARNs)


def _evaluation(record) -> dict:
    """``severity`` and ``description`` of an execution record's evaluation."""
    evaluation = record.event.dagster_event.event_specific_data if record.event else None
    return {"severity": getattr(getattr(evaluation, "severity", None), "value", None),
            "description": getattr(evaluation, "description", None)}


def latest_checks(paths: DataPaths, defs: dg.Definitions) -> list[dict]:
    """Every evaluated check's verdict over all its partitions, from the Dagster instance under
    the data directory: a check passes only when the latest evaluation of each of its
    partitions passed (an earlier failed hour is not hidden by a later clean one).

    One storage query per check for the per-partition statuses
    (``get_asset_check_partition_info``), and per failing check one per failing partition
    read for its severity (until an ERROR, at most :data:`WORST_OF`).

    Parameters
    ----------
    paths : DataPaths
    defs : dagster.Definitions
        Names the checks reported.

    Returns
    -------
    list of dict
        Per check: ``asset``, ``check``, ``passed``, ``partitions`` (evaluated; None for a
        check without partitions), ``failing_partitions`` (count), ``first_failing`` (the first
        :data:`FAILING_NAMED` failing partition keys, sorted), ``latest_partition``, and
        ``severity``/``description`` of the first failing partition whose evaluation is an
        ERROR, else of the first failing one (of the latest evaluation when none fails).
    """
    from dagster._core.event_api import PartitionKeyFilter
    from dagster._core.storage.asset_check_execution_record import (
        AssetCheckExecutionRecordStatus as Status,
    )

    if not (paths.dagster_home / "history").exists():
        return []
    storage = open_instance(paths).event_log_storage
    keys = [key for checks_def in defs.asset_checks or [] for key in checks_def.check_keys]
    infos: dict[dg.AssetCheckKey, list] = {}
    for info in storage.get_asset_check_partition_info(keys):
        infos.setdefault(info.check_key, []).append(info)
    out = []
    for key in keys:
        evaluated = [i for i in infos.get(key, []) if i.latest_execution_status != Status.PLANNED]
        if not evaluated:
            continue
        failing = sorted(i.partition_key or "" for i in evaluated
                         if i.latest_execution_status == Status.FAILED)
        latest = max(evaluated, key=lambda i: i.latest_check_event_storage_id)
        partitioned = latest.partition_key is not None

        def evaluation(partition: str | None, key=key) -> dict:
            [record] = storage.get_asset_check_execution_history(
                key, limit=1, partition_filter=PartitionKeyFilter(key=partition))
            return _evaluation(record)

        # the worst failing partition speaks for the check: an ERROR day among WARN days
        # makes it FAILING (one query per failing partition, at most WORST_OF of them)
        read = [evaluation(latest.partition_key)] if not failing else []
        for p in failing[:WORST_OF]:
            read.append(evaluation(p or None))
            if read[-1]["severity"] == "ERROR":
                break
        # an ERROR if one was read, else the first failing partition's (or the latest's)
        shown = read[-1] if read[-1]["severity"] == "ERROR" else read[0]
        out.append({"asset": key.asset_key.to_user_string(), "check": key.name,
                    "passed": not failing, **shown,
                    "partitions": len(evaluated) if partitioned else None,
                    "failing_partitions": len(failing),
                    "first_failing": failing[:FAILING_NAMED] if partitioned else [],
                    "latest_partition": latest.partition_key})
    return out


def check_line(check: dict) -> str:
    """One line for a failing check of :func:`latest_checks`: ``FAILING`` (an ERROR) or
    ``WARNING`` (a WARN, a finding that stops nothing), how many of its partitions fail, the
    first ones named, and the first failing partition's description."""
    where = ""
    if check["partitions"] is not None:
        more = check["failing_partitions"] - len(check["first_failing"])
        where = (f" ({check['failing_partitions']} of {check['partitions']} partition(s) "
                 f"failing: {', '.join(check['first_failing'])}"
                 + (f" and {more} more" if more else "") + ")")
    label = "WARNING" if check["severity"] == "WARN" else "FAILING"
    return f"{label} {check['asset']}:{check['check']}{where} - {check['description']}"


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
        "spec_ref": spec.origin.ref if spec.origin else None,
        "start": spec.start_utc.isoformat(),
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
        "lake": lake_partitions(ws.catalog, judged),
        "late_landing_files": [f.as_dict() for f in late_files(paths, registry, spec, layouts)],
        "landing_notes": [n for _, layout in layouts for n in layout.notes],
        "checks": checks,
        "failing_checks": [c for c in checks if not c["passed"]],
    }
