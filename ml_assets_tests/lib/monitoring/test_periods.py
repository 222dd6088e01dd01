"""Monitoring pooled over calendar periods (issue 17 item 9): `ml-assets monitor --by week|month
--from --to` gives each period's AUC, PR-AUC, business metric and PSI, recomputed here
independently from the lake's files, and marks partial periods as incomplete."""

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from ml_assets.cli.main import main
from ml_assets.lib.monitoring.periods import period_start
from ml_assets.scenarios.synthetic import SyntheticConfig
from ml_assets.specs.fraud import FRAUD_SPEC
from ml_assets_tests.fixtures.monitoring_world import build_world

SPEC = FRAUD_SPEC  # the CLI's built-in spec: labels mature 30 days after a period ends
FIRST, DAYS = 30, 95  # scored from day 30 of a 95-day world starting 2026-07-01


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return build_world(tmp_path_factory.mktemp("periods"), SPEC,
                       SyntheticConfig(seed=4, days=DAYS, scale=0.03), (5, FIRST))


def monitor(world, capsys, *args) -> tuple[int, dict | str]:
    code = main(["--data-dir", str(world.paths.root), "monitor", *args])
    out = capsys.readouterr()
    return code, (json.loads(out.out) if "--json" in args and code == 0 else out.err)


def lake(world, table: str) -> pd.DataFrame:
    return pd.concat(pd.read_parquet(f) for f in sorted((world.paths.lake / table).glob("*.parquet")))


@pytest.mark.parametrize("start, by", [("2026-07-27", "day"), ("2026-08-03", "week"),
                                       ("2026-08-01", "month")])
def test_period_start_is_the_utc_calendar_period(start, by):
    ts = pd.Series(pd.to_datetime(["2026-08-09 23:59:59.999999"]).tz_localize("UTC"))
    expect = {"day": "2026-08-09", "week": "2026-08-03", "month": "2026-08-01"}[by]
    assert period_start(ts, by).iloc[0] == pd.Timestamp(expect, tz="UTC")


def test_monthly_figures_equal_an_independent_recomputation(world, capsys):
    code, report = monitor(world, capsys, "--by", "month", "--json")
    assert code == 0 and report["by"] == "month"
    periods = {p["period"]: p for p in report["periods"]}
    # scored from 2026-07-31 to the world's end (2026-10-04): July and October are partial
    assert list(periods) == ["2026-07-01", "2026-08-01", "2026-09-01", "2026-10-01"]
    assert [p["complete"] for p in periods.values()] == [False, True, True, False]
    august = periods["2026-08-01"]
    scores = lake(world, "batch_scores")
    scores = scores[(scores["event_ts"] >= "2026-08-01") & (scores["event_ts"] < "2026-09-01")]
    labels = lake(world, "raw_labels")[[SPEC.event_id, SPEC.label]]
    labelled = scores.merge(labels, on=SPEC.event_id)
    y, s = labelled[SPEC.label].to_numpy(int), labelled["score"].to_numpy()
    champion = august["models"][world.champion]
    assert august["events"] == len(scores) and champion["rows"] == len(scores)
    assert champion["labelled_rows"] == len(labelled) and champion["positives"] == y.sum() > 10
    assert champion["auc"] == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert champion["pr_auc"] == pytest.approx(average_precision_score(y, s), abs=1e-12)
    assert 0 < champion["auc_se"] < 0.1
    assert champion["decision_rate"] == pytest.approx(scores["decision"].mean())
    assert august["label_status"] == "final", august["label_why"]  # matured on 2026-10-01
    assert august["business_metric"]["events"] == len(scores)
    assert august["business_metric"]["value"] is not None
    assert set(august["psi"]) == {f.name for f in SPEC.features}
    assert all(np.isfinite(v) and v >= 0 for v in august["psi"].values())
    # September's labels are not mature yet: its business value is an estimate only
    assert periods["2026-09-01"]["label_status"] == "pending"
    assert periods["2026-09-01"]["business_metric"]["value"] is None
    assert periods["2026-09-01"]["business_metric"]["estimated_value"] is not None
    # and its AUC would be read off the quickly reported labels only: not given
    september = periods["2026-09-01"]["models"][world.champion]
    assert september["positives"] > 0 and "auc" not in september and "pr_auc" not in september


def test_weeks_partition_the_window_and_pool_its_rows(world, capsys):
    code, report = monitor(world, capsys, "--by", "week", "--from", "2026-08-03", "--to",
                           "2026-08-31", "--json")
    assert code == 0
    weeks = report["periods"]
    assert [w["period"] for w in weeks] == ["2026-08-03", "2026-08-10", "2026-08-17",
                                            "2026-08-24"]
    assert all(w["complete"] for w in weeks)
    scores = lake(world, "batch_scores")
    inside = scores[(scores["event_ts"] >= "2026-08-03") & (scores["event_ts"] < "2026-08-31")]
    assert sum(w["events"] for w in weeks) == len(inside)


def test_the_text_report_has_a_line_per_period_and_marks_partial_ones(world, capsys):
    assert main(["--data-dir", str(world.paths.root), "monitor", "--by", "month"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line[:10] for line in lines] == ["2026-07-01", "2026-08-01", "2026-09-01",
                                             "2026-10-01"]
    assert ["(incomplete)" in line for line in lines] == [True, False, False, True]
    assert "labels final" in lines[1] and "PR-AUC" in lines[1] and "max PSI" in lines[1]


def test_bad_arguments_are_refused_naming_the_problem(world, capsys):
    with pytest.raises(SystemExit):
        main(["--data-dir", str(world.paths.root), "monitor", "--by", "month", "--from",
              "2026-13-01"])
    assert "not a date YYYY-MM-DD" in capsys.readouterr().err
    code, err = monitor(world, capsys, "--by", "week", "--from", "2027-01-01")
    assert code == 1 and "no scored partition in the window" in err
    code, err = monitor(world, capsys, "--by", "week", "--from", "2026-08-10", "--to",
                        "2026-08-03")
    assert code == 1 and "empty window" in err
