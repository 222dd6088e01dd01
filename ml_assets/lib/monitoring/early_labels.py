"""Early label watch: early positive reports (e.g. cardholder/issuer fraud reports, the
``raw_early_reports`` feed) among the events the model let through, compared with the same
count *at the same report age* on the trailing reference days.

Reports of a prediction day keep arriving for days, and chargebacks for weeks, so a young day
always looks clean next to a mature one - the trap of judging partial labels against
complete ones. Counting, for every reference day, only the reports that had landed by the
same age as today's evaluated day compares like with like: a surge of reported positives the
model missed is a change in P(label | features) (concept drift) visible the morning after,
weeks before chargebacks make a day's AUC final.

The count is tested against a quasi-Poisson model of the reference: expected = reference rate
per passed event x today's passed events, with the reference's own day-to-day overdispersion
(fraud arrives in bursts) widening it. Loops only over evaluated and reference days.
"""

# ruff: noqa: S608  (identifiers pass through quote(), file lists through parquet_relation())
from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from scipy.stats import poisson

from ml_assets.lib.core.catalog import BATCH_SCORES, Catalog
from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.identifiers import quote
from ml_assets.lib.core.lake import connect, parquet_relation
from ml_assets.lib.core.paths import DataPaths
from ml_assets.lib.core.workspace import Workspace
from ml_assets.lib.features.build import MissingUpstreamError
from ml_assets.lib.ingest.landing import EARLY_REPORTS
from ml_assets.lib.monitoring.drift_stats import pearson_dispersion
from ml_assets.lib.monitoring.tables import label_horizon

DAY = timedelta(days=1)


def _passed_and_reports(paths: DataPaths, spec: DatasetSpec, lo: datetime, hi: datetime,
                        horizon: datetime) -> tuple[pd.Series, pd.DataFrame]:
    """(events let through per day, one row per positive reported for such an event with its
    day and its label age in hours after the day's end). Only the rows whose decisions acted."""
    catalog = Catalog(paths.lake, spec.partition_grain)
    score_files = catalog.table(BATCH_SCORES).files(lo, hi)
    if not score_files:
        return pd.Series(dtype="int64"), pd.DataFrame(columns=["day", "age_h"])
    eid, ets = quote(spec.event_id), quote(spec.event_ts)
    con = connect()
    # Read the score files once: the counts and the join below both use this table.
    con.execute(f"CREATE TEMP TABLE passed AS SELECT {eid} AS event_id, "
                f"date_trunc('day', {ets}) AS day FROM {parquet_relation(score_files)} "
                "WHERE acted AND NOT decision")
    passed = con.execute("SELECT day, count(*) AS n FROM passed GROUP BY day").df()
    label_files = catalog.table(EARLY_REPORTS.asset).files(lo, horizon)
    if not label_files:
        return passed.set_index("day")["n"], pd.DataFrame(columns=["day", "age_h"])
    reports = con.execute(
        f"SELECT p.day, epoch(l.{quote(spec.label_ts)} - (p.day + INTERVAL 1 DAY)) / 3600.0 "
        f"AS age_h FROM passed p JOIN {parquet_relation(label_files)} l "
        f"ON l.{eid} = p.event_id WHERE l.{quote(spec.label)} = 1 "
        f"AND l.{quote(spec.label_ts)} < $horizon", {"horizon": horizon}).df()
    return passed.set_index("day")["n"], reports


def surprise(observed: int, expected: float, dispersion: float) -> float:
    """Upper-tail p-value of ``observed`` under a quasi-Poisson with this mean and dispersion.

    The counts are scaled by the dispersion phi (floored at 1) and read off a Poisson tail, the
    usual quasi-Poisson approximation (McCullagh & Nelder 1989).

    Parameters
    ----------
    observed : int
        Positives reported.
    expected : float
        Expected count.
    dispersion : float
        Pearson dispersion of the reference days.

    Returns
    -------
    float
        P(X >= observed), in [0, 1].
    """
    phi = max(dispersion, 1.0)
    return float(poisson.sf(np.ceil(observed / phi) - 1, expected / phi))


def early_label_watch(ws: Workspace, lo: datetime, hi: datetime) -> dict[datetime, pd.DataFrame]:
    """Early positive reports per prediction day, against the reference days at the same label age.

    Days whose labels are older than the early window are left to the delayed evaluation
    ("past early window", never alarms). The expected count is the reference rate (with half a
    pseudo-count) times the day's passed events; overdispersion is the Pearson statistic over
    the reference days (quasi-Poisson, McCullagh & Nelder 1989).

    Parameters
    ----------
    ws : Workspace
    lo, hi : datetime
        Prediction days in [lo, hi), UTC.

    Returns
    -------
    dict of datetime to DataFrame
        Per day one row: ``label_age_hours``, ``passed`` (events), ``reported_positives``,
        ``expected_positives``, ``reference_days``, ``dispersion``, ``p_value``, ``severity``,
        ``status`` and ``alert_message``.

    Raises
    ------
    MissingUpstreamError
        No early-report partition has landed yet.
    """
    paths, spec = ws.paths, ws.spec
    cfg = spec.monitoring
    horizon = label_horizon(paths, EARLY_REPORTS.asset)
    if horizon is None:
        raise MissingUpstreamError(f"no {EARLY_REPORTS.asset} partitions yet: materialize "
                                   f"{EARLY_REPORTS.asset} first")
    ref_lo = max(lo - timedelta(days=cfg.early_reference_days), spec.start_utc)
    passed, reports = _passed_and_reports(paths, spec, ref_lo, hi, horizon)
    passed.index = pd.DatetimeIndex(passed.index)
    report_day = pd.DatetimeIndex(reports["day"])
    age_h = reports["age_h"].to_numpy(dtype="float64")
    out = {}
    for day in pd.date_range(lo, hi, freq="D", inclusive="left"):
        age = (pd.Timestamp(horizon) - (day + DAY)).total_seconds() / 3600
        row = {"day": day, "label_age_hours": age, "passed": int(passed.get(day, 0)),
               "reported_positives": 0, "expected_positives": np.nan, "reference_days": 0,
               "dispersion": np.nan, "p_value": np.nan, "severity": "ok"}
        # Age 0 = labels known up to the day's own end (same-day reports only).
        if age > cfg.early_label_days * 24 or age <= -24:
            why = "past early window" if age > 0 else "no labels can exist yet"
            out[day.to_pydatetime()] = pd.DataFrame([row | {"status": why, "alert_message": why}])
            continue
        # Positives landed by this age, per day: the same cut for today and every reference day.
        counts = pd.Series(age_h < age).groupby(report_day).sum()
        ref_days = passed.index[(passed.index >= day - timedelta(days=cfg.early_reference_days))
                                & (passed.index < day)]
        ref_n = passed.loc[ref_days].to_numpy(dtype="float64")
        ref_obs = counts.reindex(ref_days, fill_value=0).to_numpy(dtype="float64")
        observed = int(counts.get(day, 0))
        # Half a pseudo-count keeps a reference without any early positive from making one
        # report infinitely surprising.
        rate = (ref_obs.sum() + 0.5) / max(ref_n.sum(), 1.0)
        expected = rate * row["passed"]
        ref_expected = rate * ref_n
        dispersion = pearson_dispersion(ref_obs, ref_expected)
        p = surprise(observed, expected, dispersion)
        big = observed >= cfg.early_min_count and observed >= 2 * expected
        level = ("error" if big and p < cfg.early_error_p else
                 "warn" if big and p < cfg.early_warn_p else "ok")
        message = (f"{observed} positives reported by the day's end + {age:.0f} h among "
                   f"{row['passed']} passed events vs {expected:.1f} expected at that age from "
                   f"{len(ref_n)} reference days (p={p:.2g}, dispersion {max(dispersion, 1):.2f})")
        out[day.to_pydatetime()] = pd.DataFrame([row | {
            "reported_positives": observed, "expected_positives": float(expected),
            "reference_days": len(ref_n), "dispersion": dispersion, "p_value": p,
            "severity": level, "status": "early", "alert_message": message}])
    return out
