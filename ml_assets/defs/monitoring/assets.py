"""Daily monitoring assets: business metric first, then the diagnostics that explain it.

Each asset computes a whole partition range in one pass (``lib/monitoring/tables.py``), writes one
Parquet file per day, and records per-day numbers as plain int/float metadata so the UI plots
them over partitions, plus a short Markdown summary."""

import dagster as dg
import pandas as pd

from ml_assets.defs.metadata import by_version, known_metadata
from ml_assets.defs.partitions import daily, day_key
from ml_assets.lib.core.catalog import MONITORING_TABLES
from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.markdown import table
from ml_assets.lib.core.workspace import Workspace
from ml_assets.lib.monitoring import tables as monitoring
from ml_assets.lib.monitoring.early_labels import early_label_watch
from ml_assets.lib.monitoring.feature_drift import feature_drift
from ml_assets.lib.monitoring.prediction_drift import prediction_drift

MONITORING_ASSETS = MONITORING_TABLES
LABEL_DRIVEN_ASSETS = ("business_metric", "early_label_watch", "delayed_evaluation")


def monitoring_asset_names(spec: DatasetSpec) -> list[str]:
    """The monitoring assets this dataset has (some need a business metric or early reports)."""
    needs = {"business_metric": spec.business_metric is not None,
             "early_label_watch": spec.early_reports}
    return [a for a in MONITORING_ASSETS if needs.get(a, True)]


def _num(value) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def _table(df: pd.DataFrame, columns: list[str]) -> str:
    return table(columns, df[columns].itertuples(index=False), empty="_no rows_")


def _emit(context: dg.AssetExecutionContext, by_day: dict, metadata_of) -> dict[str, pd.DataFrame]:
    """Per-partition metadata, then the ``{partition_key: frame}`` the lake IO manager writes."""
    out = {}
    for day, frame in by_day.items():
        key = day_key(day)
        numbers, summary = metadata_of(frame)
        context.add_asset_metadata(
            known_metadata(numbers) | {"summary": dg.MetadataValue.md(summary)},
            partition_key=key)
        out[key] = frame
    return out


def _business_meta(spec: DatasetSpec):
    metric = spec.business_metric

    def meta(df: pd.DataFrame):
        r = df.iloc[0]
        shown = r["value"] if r["status"] == "final" else r["estimated_value"]
        label = "realized" if r["status"] == "final" else "ESTIMATE (labels pending)"
        return ({metric.decision_rate_name: _num(r[metric.decision_rate_name]),
                 "decisions": int(r["decisions"]), "events": int(r["events"]),
                 metric.name: _num(r["value"]), f"estimated_{metric.name}": _num(r["estimated_value"]),
                 "value_per_1k": _num(r["value_per_1k"]),
                 "value_per_1k_se": _num(r["value_per_1k_se"]),
                 "missed_value_per_1k": _num(r["missed_value_per_1k"]),
                 "missed_value_per_1k_se": _num(r["missed_value_per_1k_se"]),
                 "label_coverage": _num(r["label_coverage"]),
                 "labelable_events": int(r["labelable_events"]),
                 "unlabelable_events": int(r["unlabelable_events"]),
                 "final": int(r["status"] == "final")},
                f"**{metric.name}** ({label}): {shown:,.2f} {metric.unit}  \n"
                f"{metric.decision_rate_name}: {r[metric.decision_rate_name]:.3%} "
                f"({int(r['decisions'])} of {int(r['events'])})  \n"
                f"status: {r['status']} - {r['status_reason']}  \n"
                f"alert: {r['severity']} {r['alert_message'] or ''}")
    return meta


def _drift_meta(df: pd.DataFrame):
    if "feature" not in df:
        return {}, "_no scored events in this run: nothing to compare_"
    # keyed by the champion's version: its reference profile is what PSI and KS compare against,
    # so after a promotion the new champion's series starts beside the old one's, not spliced
    version = str(df["model_version"].iloc[0])
    numbers = {f"{version}/psi/{r.feature}": float(r.psi) for r in df.itertuples()}
    numbers |= {f"{version}/ks/{r.feature}": float(r.ks_stat) for r in df.itertuples()
                if r.kind == "continuous" and pd.notna(r.ks_stat)}
    blind = df[df["unmonitored"]]  # thresholds so high that drift would pass unflagged
    waiting = df[~df["period_complete"]]  # periods still open: reported, never alarmed
    day_rows = df.loc[df["period"] == "day", "n_cur"]
    numbers |= {f"{version}/max_psi": float(df["psi"].max()) if len(df) else None,
                f"{version}/role": "champion", "champion": version,
                "features_warn": int((df["severity"] == "warn").sum()),
                "features_error": int((df["severity"] == "error").sum()),
                "features_unmonitored": len(blind),
                "features_period_incomplete": len(waiting),
                **({"rows": int(day_rows.max())} if len(day_rows) else {})}
    top = df.sort_values("psi", ascending=False).head(5)
    notes = "".join(f"\n\n**WARN** `{r.feature}`: {r.unmonitored_reason}" for r in blind.itertuples())
    notes += "".join(f"\n\n_not judged yet_ `{r.feature}`: {r.period_note}"
                     for r in waiting.itertuples())
    return numbers, (f"Champion `{version}` vs its reference profile "
                     f"`{df['profile_sha256'].iloc[0][:12]}`{notes}\n\n"
                     + _table(top, ["feature", "period", "psi", "ks_stat", "missing_share_cur",
                                    "error_threshold", "severity"]))


def _prediction_meta(df: pd.DataFrame):
    numbers = by_version(df, {"p10": "p10", "p50": "p50", "p90": "p90", "mean": "mean",
                              "decision_share": "decision_share", "psi_vs_baseline": "psi",
                              "psi_error_threshold": "psi_error_threshold",
                              "decision_share_baseline": "decision_share_baseline"})
    cols = ["model_version", "role", "p10", "p50", "p90", "decision_share", "psi", "severity"]
    alerts = "".join(f"\n\n`{r.model_version}` ({r.role}): {r.alert_message}"
                     for r in df.itertuples() if getattr(r, "alert_message", ""))
    return numbers, (_table(df, cols) + alerts) if len(df) else "_no scores_"


def _evaluation_meta(df: pd.DataFrame):
    if not len(df):
        return {}, "_no scored events on this day_"
    numbers = by_version(df.assign(final=(df["status"] == "final").astype(int)),
                         {c: c for c in ("label_coverage", "labelable_events",
                                         "unlabelable_events", "estimated_auc", "auc", "pr_auc",
                                         "brier", "final")})
    cols = ["model_version", "role", "status", "label_coverage", "auc", "estimated_auc"]
    shown = df.assign(auc=df["auc"].astype("float64"),
                      estimated_auc=df["estimated_auc"].astype("float64"))
    return numbers, ("`estimated_auc` is a confidence-based ESTIMATE from calibrated scores; "
                     "`auc` appears only once labels are mature.\n\n" + _table(shown, cols))


def _early_meta(df: pd.DataFrame):
    r = df.iloc[0]
    return ({"label_age_hours": float(r["label_age_hours"]), "passed": int(r["passed"]),
             "reported_positives": int(r["reported_positives"]),
             "expected_positives": _num(r["expected_positives"]), "p_value": _num(r["p_value"])},
            f"status: {r['status']}  \nalert: {r['severity']} {r['alert_message']}")


def build_monitoring_assets(spec: DatasetSpec) -> list:
    common = {"group_name": "monitoring", "owners": [spec.owner], "partitions_def": daily(spec),
              "backfill_policy": dg.BackfillPolicy.single_run()}
    all_labels = dg.AssetDep("raw_labels", partition_mapping=dg.AllPartitionMapping())

    def asset_fn(name, compute, meta, deps, kinds, description):
        @dg.asset(name=name, deps=deps, kinds=kinds, description=description, **common)
        def _asset(context: dg.AssetExecutionContext, project: dg.ResourceParam[Workspace]) -> dict[str, pd.DataFrame]:
            start, end = context.partition_time_window
            return _emit(context, compute(project, start, end), meta)
        return _asset

    assets = [
        asset_fn("feature_drift", feature_drift, _drift_meta,
                 ["event_features", "batch_scores", "candidate_model"], {"scipy", "duckdb"},
                 "Daily PSI per feature (reference-quantile bins, explicit missing bin, "
                 "categories with an 'other' bin) and two-sample KS for continuous features, "
                 "against the acting champion's training-window profile (built once per "
                 "version, content-addressed)."),
        asset_fn("prediction_drift", prediction_drift, _prediction_meta,
                 ["batch_scores"], {"duckdb"},
                 "Daily p10/p50/p90, mean and decision share of each live version's scores, "
                 "with the PSI against the same version's trailing baseline."),
        asset_fn("early_label_watch", early_label_watch, _early_meta,
                 ["batch_scores", dg.AssetDep("raw_early_reports",
                                              partition_mapping=dg.AllPartitionMapping())],
                 {"scipy", "duckdb"},
                 "For the first days of a prediction day's labels: positives already reported "
                 "among the events the acting model let through, vs the count the trailing "
                 "reference days had at the same label age (quasi-Poisson p-value). Catches a "
                 "change in what is positive days before chargebacks and AUC can."),
        asset_fn("delayed_evaluation", monitoring.delayed_evaluation, _evaluation_meta,
                 ["batch_scores", all_labels], {"scikitlearn", "duckdb"},
                 "By prediction date: AUC, PR-AUC, Brier and calibration error of each version "
                 "once the day's labels are mature; 'pending' with coverage and a clearly "
                 "marked confidence-based AUC estimate before that. Pending never alarms."),
    ]
    assets = [a for a in assets if a.key.path[-1] in monitoring_asset_names(spec)]
    if spec.business_metric is not None:
        m = spec.business_metric
        assets.insert(0, asset_fn(
            "business_metric", monitoring.business_metric, _business_meta(spec),
            ["batch_scores", "raw_events", all_labels], {"duckdb"},
            f"The first dashboard: {m.name} ({m.unit}) - {m.description} Plus "
            f"{m.decision_rate_name}. Realized once labels are mature, an estimate before."))
    return assets
