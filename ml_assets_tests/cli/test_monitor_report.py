"""``ml-assets monitor`` on a spec without a business metric: the decision rate comes from the
recorded decisions in ``batch_scores``, never a made-up 0."""

import argparse
import dataclasses
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from ml_assets.cli.monitor_report import monitor
from ml_assets.cli.reports import cmd_monitor
from ml_assets.lib.core.catalog import BATCH_SCORES, BUSINESS_METRIC, FEATURE_DRIFT, Catalog
from ml_assets.lib.core.paths import write_parquet_atomic
from ml_assets.lib.core.workspace import Workspace
from ml_assets.lib.monitoring.feature_drift import feature_drift
from ml_assets.lib.monitoring.periods import period_report
from ml_assets.lib.monitoring.tables import business_metric
from ml_assets_tests.fixtures.serving_world import CFG, SPEC, world_copy


def test_monitor_reports_the_scored_decision_rate_without_a_business_metric(tmp_path, capsys):
    spec = dataclasses.replace(SPEC, business_metric=None)
    ws = Workspace.open(world_copy(tmp_path / "w").root, spec)
    lake = Catalog(ws.paths.lake)
    day = CFG.end - timedelta(days=1)
    for d, frame in feature_drift(ws, day, CFG.end).items():
        lake.table(FEATURE_DRIFT).write(d, frame)
    # The demo threshold acts on ~1% of events; record decisions on the top 11% of scores.
    files = lake.table(BATCH_SCORES).files(day, CFG.end)
    scores = pd.concat([pd.read_parquet(f) for f in files])
    cut = np.quantile(scores.loc[scores["acted"], "score"], 0.89)
    for f in files:
        df = pd.read_parquet(f)
        write_parquet_atomic(df.assign(decision=df["score"] >= cut), f)
    acted = scores[scores["acted"]]
    expected = float((acted["score"] >= cut).mean())
    assert 0.09 < expected < 0.13

    [reported] = monitor(spec, ws.paths, 1)["days"]
    assert reported["business_metric"] is None
    assert reported["decision_rate"] == expected

    args = argparse.Namespace(days=1, by=None, date_from=None, date_to=None, json=False)
    assert cmd_monitor(args, ws) == 0
    text = capsys.readouterr().out
    assert "no business metric" in text and f"decision rate {expected:.2%}" in text
    assert "0.00%" not in text


def test_with_a_business_metric_the_decision_rate_is_the_metrics_own(tmp_path, capsys):
    ws = Workspace.open(world_copy(tmp_path / "w").root, SPEC)
    day = CFG.end - timedelta(days=1)
    for d, frame in business_metric(ws, day, CFG.end).items():
        Catalog(ws.paths.lake).table(BUSINESS_METRIC).write(d, frame)
    [reported] = monitor(SPEC, ws.paths, 1)["days"]
    rate = reported["business_metric"][SPEC.business_metric.decision_rate_name]
    assert reported["decision_rate"] == rate
    args = argparse.Namespace(days=1, by=None, date_from=None, date_to=None, json=False)
    assert cmd_monitor(args, ws) == 0
    text = capsys.readouterr().out
    assert SPEC.business_metric.name in text and f"decision rate {rate:.2%}" in text


def test_monitor_and_monitor_by_day_give_a_day_the_same_figures(tmp_path):
    """Issue 16, item 2: ``monitor`` reads a day's rows from the lake, ``monitor --by day``
    computes them, with the same code (``periods.day_figures``): the same estimated value
    (calibrated as the asset does) and the same PSI (a feature judged over weeks has none on a
    day that does not close its week)."""
    weekly = "card_tx_count_24h"
    spec = dataclasses.replace(SPEC, monitoring=dataclasses.replace(
        SPEC.monitoring, drift_periods={weekly: "week"}))
    ws = Workspace.open(world_copy(tmp_path / "w").root, spec)
    lake = Catalog(ws.paths.lake)
    day = CFG.end - timedelta(days=8)
    day -= timedelta(days=day.weekday() == 6)  # not a Sunday: no week closes that day
    for f in lake.table(BATCH_SCORES).files(day - timedelta(days=5), day + timedelta(days=1)):
        df = pd.read_parquet(f)  # act on the top scores: a business figure to compare
        write_parquet_atomic(df.assign(decision=df["score"] >= df["score"].quantile(0.9)), f)
    for d, frame in feature_drift(ws, day, day + timedelta(days=1)).items():
        lake.table(FEATURE_DRIFT).write(d, frame)
    for d, frame in business_metric(ws, day, day + timedelta(days=1)).items():
        lake.table(BUSINESS_METRIC).write(d, frame)
    [read] = monitor(spec, ws.paths, 1)["days"]
    [computed] = period_report(ws, day, day + timedelta(days=1), "day")
    assert read["day"] == computed["period"] == f"{day:%Y-%m-%d}"
    assert read["business_metric"]["estimated_value"] != 0
    # equal up to summation order (DuckDB reads files in parallel)
    business = read["business_metric"]
    assert computed["business_metric"] == {k: pytest.approx(v, rel=1e-12) if isinstance(
        v, float) else v for k, v in business.items()}
    assert computed["psi"] == pytest.approx(read["psi"], rel=1e-12) and weekly not in read["psi"]
