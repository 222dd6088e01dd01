"""What `ml-assets monitor` reports: the last N monitored days, business metric first, read from
the monitoring tables in the lake (the same rows the Dagster checks judge)."""

from datetime import UTC, datetime, timedelta

import pandas as pd

from ml_assets.lib.core.catalog import BATCH_SCORES, MONITORING_TABLES, Catalog
from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.lake_store import read_source
from ml_assets.lib.core.paths import DataPaths
from ml_assets.lib.monitoring import check_names as names
from ml_assets.lib.monitoring.periods import day_figures, json_value

ASSETS = MONITORING_TABLES


def _num(v):
    return None if v is None or pd.isna(v) else float(v)


def _read(paths: DataPaths, asset: str, days: list[str]) -> pd.DataFrame:
    table = Catalog(paths.lake).table(asset)
    files = [table.path(d) for d in days]
    frames = [pd.read_parquet(read_source(f)) for f in files if f.exists()]
    if not frames:
        return pd.DataFrame({"_day": pd.Series(dtype=str)})
    df = pd.concat(frames, ignore_index=True)
    return df.assign(_day=df["day"].dt.strftime("%Y-%m-%d"))


def _scored_decision_rate(paths: DataPaths, spec: DatasetSpec, day: str) -> float | None:
    """Share of ``day``'s acted-on scores whose decision was positive, read from
    ``batch_scores``: the rate the business metric reports, for a spec that has none.

    Parameters
    ----------
    paths : DataPaths
    spec : DatasetSpec
        Its partition grain names the batch_scores files.
    day : str
        ``YYYY-MM-DD`` (UTC).

    Returns
    -------
    float or None
        0-1; None when the day has no acted-on score.
    """
    lo = datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC)
    acted = Catalog(paths.lake, spec.partition_grain).table(BATCH_SCORES).read(
        lo, lo + timedelta(days=1), columns=["acted", "decision"]).query("acted")
    return float(acted["decision"].astype(bool).mean()) if len(acted) else None


def monitor(spec: DatasetSpec, paths: DataPaths, days: int) -> dict:
    """The last ``days`` monitored days, newest last.

    Parameters
    ----------
    spec : DatasetSpec
    paths : DataPaths
    days : int
        How many of the newest days with any monitoring partition.

    Returns
    -------
    dict
        ``dataset``, ``data_dir``, ``hint`` (None when there are days) and ``days``: per day
        the business metric row (None without one), ``decision_rate`` (0-1: the business
        metric's, else from the day's acted-on batch scores; None without scores), PSI and KS
        per feature, prediction quantiles and delayed evaluation per model version, the early
        label watch and the checks that fired.
    """
    catalog = Catalog(paths.lake)
    stems = sorted({p.stem for a in ASSETS for p in catalog.table(a).files()})[-days:]
    tables = {a: _read(paths, a, stems) for a in ASSETS}
    out = []
    for day in stems:
        drift = tables["feature_drift"].query("_day == @day")
        preds = tables["prediction_drift"].query("_day == @day")
        evals = tables["delayed_evaluation"].query("_day == @day")
        biz = tables["business_metric"].query("_day == @day")
        early = tables["early_label_watch"].query("_day == @day")
        checks = [{"check": names.psi_check(r.feature), "severity": r.severity, "value": float(r.psi)}
                  for r in drift.itertuples() if r.severity != "ok"]
        # The psi check's own WARN: a threshold that leaves the feature effectively unmonitored.
        checks += [{"check": names.psi_check(r.feature), "severity": "warn", "value": float(r.psi),
                    "message": r.unmonitored_reason} for r in drift.itertuples()
                   if r.severity == "ok" and getattr(r, "unmonitored", False)]
        checks += [{"check": f"{names.SCORE_SHIFT}/{r.model_version}", "severity": r.severity,
                    "value": _num(r.psi)} for r in preds.itertuples() if r.severity != "ok"]
        checks += [{"check": f"{names.AUC_VS_HELD_OUT}/{r.model_version}", "severity": r.severity,
                    "message": r.alert_message} for r in evals.itertuples() if r.severity != "ok"]
        checks += [{"check": names.MISSED_POSITIVE_REPORTS, "severity": r.severity,
                    "message": r.alert_message} for r in early.itertuples() if r.severity != "ok"]
        checks += [{"check": names.BUSINESS_THRESHOLDS, "severity": r.severity,
                    "message": r.alert_message} for r in biz.itertuples() if r.severity != "ok"]
        business, psi = day_figures(biz, drift)  # the figures `monitor --by day` computes
        out.append({
            "day": day,
            "business_metric": business,
            "decision_rate": (business[spec.business_metric.decision_rate_name]
                              if business and spec.business_metric
                              else _scored_decision_rate(paths, spec, day)),
            "psi": psi,
            # why a day with rows has no PSI: its periods are not complete yet (a partial day)
            "psi_note": None if psi else next(
                (n for n in drift.get("period_note", pd.Series(dtype=object)) if n), None),
            "ks": {r.feature: {"statistic": float(r.ks_stat), "pvalue": float(r.ks_pvalue)}
                   for r in drift.itertuples() if r.kind == "continuous" and pd.notna(r.ks_stat)},
            "prediction_quantiles": {r.model_version: {"role": r.role, "p10": float(r.p10),
                                                       "p50": float(r.p50), "p90": float(r.p90)}
                                     for r in preds.itertuples()},
            "evaluation": {r.model_version: {
                "role": r.role, "status": r.status, "label_coverage": _num(r.label_coverage),
                **({"auc": _num(r.auc)} if r.status == "final" else
                   {"estimated_auc": _num(r.estimated_auc), "estimate": True})}
                for r in evals.itertuples()},
            "early_labels": None if early.empty else {
                k: json_value(early.iloc[0][k]) for k in (
                    "status", "label_age_hours", "passed", "reported_positives",
                    "expected_positives", "p_value")},
            "checks": checks,
        })
    return {"dataset": spec.name, "data_dir": str(paths.root), "days": out,
            "hint": None if out else "no monitoring partitions yet: run `make demo` or "
                                     "materialize the monitoring group"}
