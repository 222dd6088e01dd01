"""Rollout group: the daily shadow report of the challenger and the staged-rollout state.

Both wrap ``lib/release/shadow.py`` and ``lib/release/rollout.py``; a range run computes every day in one
pass, and ``rollout_state`` walks all stages the new data allows in one run (not one run per
day)."""

import getpass

import dagster as dg
import pandas as pd

from ml_assets.defs.metadata import known_metadata
from ml_assets.defs.partitions import daily, day_key
from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.markdown import table
from ml_assets.lib.core.workspace import Workspace
from ml_assets.lib.monitoring.tables import label_horizon
from ml_assets.lib.release import rollout, shadow

DAILY_NUMBERS = ("events", "paired_events", "disagreement_rate", "score_psi", "rank_correlation",
                 "champion_decision_rate", "challenger_decision_rate", "error_rate",
                 "nan_inf_rate")


def checklist_md(report: dict) -> str:
    lines = [f"**{report['challenger']}** vs champion **{report['champion']}**, "
             f"{report['days_of_data']} days of shadow data, gate "
             f"**{'PASSED' if report['gate_passed'] else 'FAILED'}**", "",
             table(["item", "measured", "threshold", "status"],
                   [[i["item"], i["value"], i["threshold"], i["status"]]
                    for i in report["checklist"]])]
    return "\n".join(lines)


def _pair(registry, spec: DatasetSpec) -> tuple[str, str] | None:
    aliases = registry.aliases(spec.model_name)
    if not aliases["challenger"]:
        return None
    return aliases["champion"], aliases["challenger"]


def _judged(period: dict) -> str:
    first, last = period.get("first_event"), period.get("last_event")
    span = f"{first[:16]} .. {last[:16]}" if first else f"{period['start'][:16]} (no events)"
    return f"{span}, {period['events']:,} events, {period['labeled']:,} labeled"


def promotion_marker(before: str | None, after: str | None, st: dict) -> dict:
    """Metadata marking a champion change made by this run (empty when none was).

    Parameters
    ----------
    before, after : str or None
        The champion version before and after the run.
    st : dict
        The rollout state after the run (``rollout.advance``); its last history entry is the
        ``"100"`` transition when this run promoted.

    Returns
    -------
    dict
        ``promotion`` (``"<old> -> <new>"``) and ``promoted_at_data_time`` (ISO 8601, UTC: the
        data time the final stage was judged at), or ``{}``.
    """
    if before == after or after is None:
        return {}
    last = (st.get("history") or [{}])[-1]
    return {"promotion": f"{before} -> {after}",
            "promoted_at_data_time": last.get("since") if last.get("stage") == "100" else None}


def build_rollout_assets(spec: DatasetSpec) -> list:
    owners = [spec.owner]

    @dg.asset(
        name="shadow_report", group_name="rollout", owners=owners, partitions_def=daily(spec),
        backfill_policy=dg.BackfillPolicy.single_run(), kinds={"duckdb", "scipy"},
        deps=["batch_scores", "event_features",
              dg.AssetDep("raw_labels", partition_mapping=dg.AllPartitionMapping())],
        description="Challenger vs champion on the same traffic, per day and cumulative from "
                    "the challenger's cutoff: disagreement at the decision threshold, score "
                    "PSI and rank correlation, offline-vs-online match (possible leakage), "
                    "latency p50/p95/p99, error and NaN/inf rate, edge cases. The cumulative "
                    "report and its promotion-gate checklist are recorded for the gate and docs.")
    def shadow_report(context: dg.AssetExecutionContext, project: dg.ResourceParam[Workspace]) -> dict[str, pd.DataFrame]:
        start, end = context.partition_time_window
        days = pd.date_range(start, end, freq="D", inclusive="left")
        empty = {day_key(d): pd.DataFrame({"day": pd.Series(dtype="datetime64[us, UTC]")})
                 for d in days}
        pair = _pair(project.registry, spec)
        if pair is None:
            context.log.info("no challenger registered: nothing to shadow")
            return empty
        paths = project.paths
        try:
            report = shadow.shadow_report(paths, spec, project.registry, *pair, end,
                                          label_horizon(paths))
        except shadow.ShadowDataMissing as exc:
            context.log.info(str(exc))
            return empty
        shadow.record(paths, report)
        daily_rows = pd.DataFrame(report["daily"])
        daily_rows["day"] = pd.to_datetime(daily_rows["day"], utc=True)
        out = dict(empty)
        for d, row in daily_rows.groupby("day"):
            if not start <= d.to_pydatetime() < end:
                continue
            key = day_key(d)
            out[key] = row.assign(champion=pair[0], challenger=pair[1])
            # the pair by version: the role-named rates refer to these two models
            numbers = known_metadata({k: row[k].iloc[0] for k in DAILY_NUMBERS}
                                     | {"champion": pair[0], "challenger": pair[1]})
            context.add_asset_metadata(numbers, partition_key=key)
        last = day_key(days[-1])
        context.add_asset_metadata({
            "gate_passed": int(report["gate_passed"]),
            "cumulative_days": float(report["days_of_data"]),
            "checklist": dg.MetadataValue.md(checklist_md(report)),
        }, partition_key=last)
        return out

    @dg.asset(
        name="rollout_state", group_name="rollout", owners=owners, kinds={"sqlite"},
        deps=["shadow_report", "batch_scores"],
        description="Walks the challenger's staged rollout (1 -> 5 -> 25 -> 50 -> 100% of "
                    "entities by stable hash) through the data scored so far: each stage "
                    "dwells its minimum, compares the business metric per arm, pauses on a "
                    "regression and promotes at 100%; a stage too small to measure holds. "
                    "Transitions are audited with the data period they judged; `champion` names "
                    "the acting model and `promotion` marks the run that changed it. "
                    "`ml-assets rollout 1` starts a rollout once the gate passes.")
    def rollout_state(context: dg.AssetExecutionContext, project: dg.ResourceParam[Workspace]) -> dg.MaterializeResult:
        paths, registry = project.paths, project.registry
        before = registry.aliases(spec.model_name)["champion"]
        until = rollout.data_end(paths, spec)
        st = rollout.advance(registry, paths, spec, f"dagster:{getpass.getuser()}", until,
                             label_horizon(paths)) if until else rollout.current(registry, spec)
        walk = st.get("walk", [])
        rows = [[e["stage"], e["outcome"], None, None, None, None, None, e["reason"]]
                if "challenger_arm" not in e else
                [e["stage"], e["outcome"], _judged(e["data_period"]), e["measurable"],
                 f"{e['dwell_hours']:.0f}", e["challenger_arm"]["value_per_1k"],
                 e["control_arm"]["value_per_1k"], f"{e['adjusted_delta_per_1k']:.2f}"]
                for e in walk]
        aliases = registry.aliases(spec.model_name)
        return dg.MaterializeResult(metadata=known_metadata({
            "version": st.get("version"), "stage": str(st["stage"]),
            "percent": rollout.pct(st["stage"]), "evaluations": len(walk),
            "champion": aliases["champion"], "previous": aliases["previous"],
            **promotion_marker(before, aliases["champion"], st),
            "walk": dg.MetadataValue.md(table(
                ["stage", "outcome", "data judged", "measurable", "dwell h", "challenger arm",
                 "control arm", "adjusted delta per 1k"], rows,
                empty=f"stage {st['stage']}: nothing to evaluate yet")),
            "aliases": dg.MetadataValue.json(aliases),
        }))

    return [shadow_report, rollout_state]


def build_rollout_checks(spec: DatasetSpec) -> list:
    # Not partitioned like shadow_report: the gate reads the current challenger's cumulative
    # report (all its days), which no single day partition owns.
    @dg.asset_check(asset="shadow_report", name="promotion_gate",
                    description="Every shadow checklist item of the current challenger passes "
                                "(duration, errors, disagreement, overlap, offline-vs-online, "
                                "latency, edge cases). WARN: it blocks `rollout 1`, not runs.")
    def promotion_gate(project: dg.ResourceParam[Workspace]) -> dg.AssetCheckResult:
        challenger = project.registry.aliases(spec.model_name)["challenger"]
        report = shadow.recorded(project.paths, challenger) if challenger else None
        if report is None:
            return dg.AssetCheckResult(passed=True, description="no challenger report to gate",
                                       metadata={"items": 0})
        failed = [i["item"] for i in report["checklist"] if not i["passed"]]
        return dg.AssetCheckResult(
            passed=bool(report["gate_passed"]), severity=dg.AssetCheckSeverity.WARN,
            description="all items pass" if not failed else "failing: " + ", ".join(failed),
            metadata={"challenger": challenger, "items": len(report["checklist"]),
                      "failed_items": len(failed)})

    return [promotion_gate]
