"""Monitoring checks: per-feature PSI, score shift, early label reports, delayed AUC and
business thresholds.

Each check reads what its asset wrote for the run's days (the latest day when run alone) and
records one verdict per day under that day's partition key, so a range run shows every day's
state (not one worst day) and rerunning one day changes only that day: WARN and ERROR map to
Dagster severities; a pending evaluation day can never fail. None blocks: they are alarms, not
contracts."""

import json

import dagster as dg
import pandas as pd

from ml_assets.defs.contract_checks import checked_partitions, per_partition
from ml_assets.defs.metadata import known_metadata
from ml_assets.defs.partitions import daily
from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.lake import read_parquet_by_file, read_parquet_files
from ml_assets.lib.core.workspace import Workspace
from ml_assets.lib.monitoring import check_names as names
from ml_assets.lib.monitoring.feature_drift import monitored_periods

SEVERITY = {"warn": dg.AssetCheckSeverity.WARN, "error": dg.AssetCheckSeverity.ERROR}
RANK = {"ok": 0, "warn": 1, "error": 2}


def _by_day(context, project: dg.ResourceParam[Workspace], asset: str, daily_def
            ) -> list[tuple[str, pd.DataFrame]]:
    """What ``asset`` wrote for each day of the run: every day gets its own verdict. The days'
    files are read in one scan (``read_parquet_by_file``), not one per day; a day without a
    file fails as ``LakeTable.read`` does."""
    table = project.catalog.table(asset)
    days = [(k, table.files(lo, hi)) for k, lo, hi in checked_partitions(context, daily_def, table)]
    frames = read_parquet_by_file([f for _, files in days for f in files])
    out = []
    for key, files in days:
        if len(files) != 1:  # none (raises as a read of it would) or parts: read them as one
            out.append((key, read_parquet_files(files)))
        else:
            out.append((key, frames[files[0]]))
    return out


def _result(asset: str, check: str, rows: pd.DataFrame, describe, metadata) -> dg.AssetCheckResult:
    """One day's verdict; its worst row decides: passed when "ok", else WARN/ERROR with that
    row described. A day has a handful of rows (one per feature, version...), so they are
    judged as records: pandas' per-call cost on tiny frames was most of a monitoring run."""
    if rows.empty:
        return dg.AssetCheckResult(asset_key=asset, check_name=check, passed=True,
                                   description="nothing to check in this window",
                                   metadata={"days": 0})
    records = rows.to_dict("records")
    # the most severe row, the earliest day among those (an unknown severity ranks last)
    worst = min(records, key=lambda r: (-RANK.get(r["severity"], -1), r["day"]))
    level = str(worst["severity"])
    counts = {f"days_{lv}": len({r["day"] for r in records if r["severity"] == lv})
              for lv in ("warn", "error")}
    return dg.AssetCheckResult(
        asset_key=asset, check_name=check, passed=bool(level == "ok"),
        severity=SEVERITY.get(level, dg.AssetCheckSeverity.WARN),
        description=describe(worst),
        metadata=known_metadata({"day": str(pd.Timestamp(worst["day"]).date()),
                                 "days": len({r["day"] for r in records}), **counts,
                                 **metadata(worst)}))


def _business_rule(metric) -> str:
    """What pages and what warns on the business metric, as ``business.business_alerts``
    judges it, in words for the check's description."""
    errors = [f"{metric.decision_rate_name} above {metric.max_decision_rate:.1%}"]
    if metric.min_value_per_1k is not None:
        errors.append(f"realized {metric.name} per 1,000 events below {metric.min_value_per_1k:,g} "
                      f"{metric.unit} by more than {metric.floor_noise_sigmas:g} standard errors")
    if metric.max_missed_value_change is not None:
        errors.append(f"the value of missed positives per 1,000 events (`missed_value_per_1k`) "
                      f"up more than {metric.max_missed_value_change:.0%} over the trailing "
                      f"mature days, beyond {metric.floor_noise_sigmas:g} standard errors")
    return (f"ERROR (pages): {'; or '.join(errors)}. WARN: "
            + ("below the floor within that noise, or " if metric.min_value_per_1k is not None
               else "")
            + f"a move of {metric.decision_rate_name} over {metric.decision_rate_change:.0%} vs "
              "its trailing baseline, beyond its day-to-day variability. Value figures only on "
              "days whose labels are mature.")


def _unmonitored_is_warn(rows: pd.DataFrame) -> pd.DataFrame:
    """A feature whose threshold leaves it effectively unmonitored is a WARN of its own, never
    a silent "ok" (tables written before the flag existed have no ``unmonitored`` column)."""
    if rows.empty or "unmonitored" not in rows:
        return rows
    blind = rows["unmonitored"].astype(bool) & (rows["severity"] == "ok")
    return rows.assign(severity=rows["severity"].mask(blind, "warn"))


def _period_words(period) -> str:
    return {"day": "each day", "week": "each calendar week", "month": "each calendar month"}.get(
        period.kind, f"the trailing {period.days} days")


def build_monitoring_checks(spec: DatasetSpec) -> list:
    daily_def = daily(spec)
    periods = monitored_periods(spec)  # features declared "off" get no check
    features = list(periods)

    @dg.multi_asset_check(
        specs=[dg.AssetCheckSpec(names.psi_check(f), asset="feature_drift", partitions_def=daily_def,
                                 description=f"PSI of {f} over {_period_words(periods[f])} vs "
                                             "the champion's reference: WARN above "
                                             f"{spec.monitoring.psi_warn}, ERROR above "
                                             f"{spec.monitoring.psi_error} (raised to the "
                                             "feature's clean day-to-day noise, plus what a "
                                             "clean sample of the day's size reaches by "
                                             "chance); WARN when that leaves the feature "
                                             "effectively unmonitored. A period not yet "
                                             "complete is reported, never failed.")
               for f in features],
        can_subset=True)
    def feature_psi_checks(context: dg.AssetCheckExecutionContext, project: dg.ResourceParam[Workspace]):
        wanted = {k.name for k in context.selected_asset_check_keys}
        out = []
        for day, df in _by_day(context, project, "feature_drift", daily_def):
            df = _unmonitored_is_warn(df)  # once per day, then split by feature
            by_feature = dict(tuple(df.groupby("feature", sort=False))) if len(df) else {}
            out += [(day, psi_result(by_feature.get(f, df.iloc[0:0]), f))
                    for f in features if names.psi_check(f) in wanted]
        yield from per_partition(context, out)

    def psi_result(rows: pd.DataFrame, f: str) -> dg.AssetCheckResult:
        return _result(
            "feature_drift", names.psi_check(f), rows,
            lambda w, f=f: f"{f}: PSI {w['psi']:.3f} on {pd.Timestamp(w['day']).date()} "
                           f"({w['severity']}; warn>{w['warn_threshold']:.3f}, "
                           f"error>{w['error_threshold']:.3f})"
                           + (f"; {w['unmonitored_reason']}" if w.get("unmonitored") else "")
                           + (f"; not judged: {w['period_note']}" if w.get("period_note") else ""),
            lambda w, f=f: {"feature": f, "psi": float(w["psi"]),
                            "ks_stat": w["ks_stat"],
                            "missing_share": float(w["missing_share_cur"]),
                            "warn_threshold": float(w["warn_threshold"]),
                            "error_threshold": float(w["error_threshold"]),
                            "rows": w.get("n_cur"), "psi_null": w.get("psi_null"),
                            **({"period": str(w["period"]),
                                "period_complete": bool(w["period_complete"])}
                               if "period" in w else {}),
                            "unmonitored": bool(w.get("unmonitored", False)),
                            **({"unmonitored_reason": str(w["unmonitored_reason"])}
                               if w.get("unmonitored") else {}),
                            "top_bins": dg.MetadataValue.json(json.loads(w["top_bins"]))})

    @dg.asset_check(asset="prediction_drift", name=names.SCORE_SHIFT, partitions_def=daily_def,
                    description="Each live version's daily scores vs its trailing "
                                f"{spec.monitoring.baseline_days} days: score PSI above "
                                f"{spec.monitoring.prediction_psi_warn} (WARN) or "
                                f"{spec.monitoring.prediction_psi_error} (ERROR), raised to the "
                                "baseline days' own day-to-day PSI (x"
                                f"{spec.monitoring.prediction_noise_margin:g} for ERROR) plus what "
                                "a clean sample of the day's size reaches by chance; and the "
                                "decision share vs the baseline's, allowing its day-to-day "
                                f"dispersion: WARN at p<{spec.monitoring.decision_warn_p:g}, "
                                f"ERROR at p<{spec.monitoring.decision_error_p:g}.")
    def score_shift(context: dg.AssetCheckExecutionContext, project: dg.ResourceParam[Workspace]):
        yield from per_partition(context, [
            (day, _result("prediction_drift", names.SCORE_SHIFT, rows,
                           lambda w: f"{w['model_version']} ({w['role']}): "
                                     + (w.get("alert_message") or
                                        f"score PSI {w['psi']:.3f} vs baseline, p50 {w['p50']:.4g}"),
                           lambda w: {"model_version": str(w["model_version"]),
                                      "psi": w["psi"],
                                      "psi_error_threshold": w.get("psi_error_threshold"),
                                      "decision_share": float(w["decision_share"]),
                                      "decision_share_baseline": w.get("decision_share_baseline"),
                                      "decision_share_p_value": w.get("decision_share_p_value"),
                                      "p50": float(w["p50"])}))
            for day, rows in _by_day(context, project, "prediction_drift", daily_def)])

    @dg.asset_check(asset="delayed_evaluation", name=names.AUC_VS_HELD_OUT,
                    partitions_def=daily_def,
                    description="Realized AUC on mature days vs the version's held-out days: "
                                "the drop from the median per-day held-out AUC must pass "
                                f"{spec.monitoring.auc_drop_warn} (WARN) or "
                                f"{spec.monitoring.auc_drop_error} (ERROR) and exceed 2 standard "
                                "errors combining the day's AUC (Hanley-McNeil), the held-out "
                                "days' day-to-day spread and the median's own uncertainty. "
                                "Cards without a per-day baseline fall back to the pooled "
                                "held-out AUC and say so. Days whose labels are pending never "
                                "fail.")
    def auc_vs_held_out(context: dg.AssetCheckExecutionContext, project: dg.ResourceParam[Workspace]):
        yield from per_partition(context, [
            (day, _result("delayed_evaluation", names.AUC_VS_HELD_OUT, rows,
                           lambda w: f"{w['model_version']}: {w['alert_message']}",
                           lambda w, rows=rows: {"model_version": str(w["model_version"]),
                                                 "status": str(w["status"]),
                                                 "label_coverage": float(w["label_coverage"]),
                                                 "pending_days": int((rows["status"] == "pending").sum())}))
            for day, rows in _by_day(context, project, "delayed_evaluation", daily_def)])

    @dg.asset_check(asset="early_label_watch", name=names.MISSED_POSITIVE_REPORTS,
                    partitions_def=daily_def,
                    description="Positives reported early among passed events vs the reference "
                                f"at the same label age: WARN at p<{spec.monitoring.early_warn_p:g}, "
                                f"ERROR at p<{spec.monitoring.early_error_p:g} (and at least "
                                f"{spec.monitoring.early_min_count} and twice the expected).")
    def missed_positive_reports(context: dg.AssetCheckExecutionContext, project: dg.ResourceParam[Workspace]):
        yield from per_partition(context, [
            (day, _result("early_label_watch", names.MISSED_POSITIVE_REPORTS, rows,
                           lambda w: str(w["alert_message"]),
                           lambda w: {"reported_positives": int(w["reported_positives"]),
                                      "expected_positives": w["expected_positives"],
                                      "label_age_hours": float(w["label_age_hours"])}))
            for day, rows in _by_day(context, project, "early_label_watch", daily_def)])

    checks = [feature_psi_checks, score_shift, auc_vs_held_out]
    if spec.early_reports:
        checks.insert(2, missed_positive_reports)
    if spec.business_metric is not None:
        metric = spec.business_metric

        @dg.asset_check(asset="business_metric", name=names.BUSINESS_THRESHOLDS,
                        partitions_def=daily_def,
                        description=_business_rule(metric))
        def business_thresholds(context: dg.AssetCheckExecutionContext, project: dg.ResourceParam[Workspace]):
            yield from per_partition(context, [
                (day, _result("business_metric", names.BUSINESS_THRESHOLDS, rows,
                               lambda w: w["alert_message"] or "within thresholds",
                               lambda w: {metric.decision_rate_name:
                                          float(w[metric.decision_rate_name]),
                                          "status": str(w["status"]),
                                          # final days only: left out while labels are pending
                                          "value_per_1k": w.get("value_per_1k"),
                                          "missed_value_per_1k": w.get("missed_value_per_1k")}))
                for day, rows in _by_day(context, project, "business_metric", daily_def)])

        checks.insert(0, business_thresholds)
    return checks
