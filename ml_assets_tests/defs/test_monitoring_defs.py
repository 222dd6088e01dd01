"""The monitoring assets, checks and sensors through Dagster, on a small scored world written
straight into a temp lake, with a real (temporary, persistent) Dagster instance."""

import json
import shutil
from dataclasses import replace

import dagster as dg
import pandas as pd
import pytest

from ml_assets.definitions import build_definitions
from ml_assets.defs.partitions import day_key, range_tags
from ml_assets.lib.monitoring.alerts import read_alerts
from ml_assets.scenarios.synthetic import SyntheticConfig
from ml_assets.specs.fraud import FRAUD_SPEC
from ml_assets_tests.fixtures.dagster_contexts import call_sensor
from ml_assets_tests.fixtures.monitoring_world import build_world, corrupt_features

# Short label maturity so one small world has final and pending days.
SPEC = replace(FRAUD_SPEC, monitoring=replace(FRAUD_SPEC.monitoring, label_maturity_days=8,
                                              min_label_coverage=0.05))
MONITORING = ["business_metric", "feature_drift", "prediction_drift", "early_label_watch",
              "delayed_evaluation"]
FIRST, LAST, LABELS_UNTIL = 25, 39, 38  # scored days; label files stop one day early


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("monitoring_world")
    w = build_world(root, SPEC, SyntheticConfig(seed=4, days=LAST + 1, scale=0.05), (5, FIRST),
                    labels_until=LABELS_UNTIL)
    corrupt_features(w, day=33, column="distance_km", share=0.6)  # a NaN spike on one day
    with dg.instance_for_test() as instance:
        defs = build_definitions(SPEC, str(root))
        yield w, defs, instance


def run(defs, instance, selection, tags):
    return dg.materialize([*defs.assets, *defs.asset_checks], selection=selection,
                          instance=instance, resources=defs.resources, tags=tags,
                          raise_on_error=True)


@pytest.fixture(scope="module")
def materialized(world):
    w, defs, instance = world
    tags = range_tags(day_key(w.day(FIRST)), day_key(w.day(LAST)))
    return run(defs, instance, MONITORING, tags)


def test_one_range_run_writes_a_file_and_plottable_metadata_per_day(world, materialized):
    w, _, instance = world
    for asset in MONITORING:
        assert len(list((w.paths.lake / asset).glob("*.parquet"))) == LAST - FIRST + 1
    events = instance.fetch_materializations(dg.AssetKey("feature_drift"), limit=100).records
    by_day = {e.partition_key: e.asset_materialization.metadata for e in events}
    assert len(by_day) == LAST - FIRST + 1
    # keyed by the champion's version (the reference profile), as the other monitoring series
    version = by_day[day_key(w.day(33))]["champion"].value
    assert by_day[day_key(w.day(33))][f"{version}/role"].value == "champion"
    assert not any(name.startswith("psi/") for md in by_day.values() for name in md)
    psi = by_day[day_key(w.day(33))][f"{version}/psi/distance_km"].value
    assert isinstance(psi, float) and psi > 0.25
    assert by_day[day_key(w.day(32))][f"{version}/psi/distance_km"].value < 0.1  # one per day
    assert "summary" in by_day[day_key(w.day(33))]


def test_checks_flag_the_nan_spike_and_never_the_pending_days(world, materialized):
    w = world[0]
    # one verdict per check and day, under the day's partition key
    by_day = {(e.check_name, e.partition): e for e in materialized.get_asset_check_evaluations()}
    failed = {(c, p) for (c, p), e in by_day.items() if not e.passed}
    assert {p for c, p in failed if c == "psi_distance_km"} == {day_key(w.day(33))}
    assert not {c for c, _ in failed} & {"psi_amount", "auc_vs_held_out", "missed_positive_reports"}
    nan = by_day["psi_distance_km", day_key(w.day(33))]
    assert nan.severity == dg.AssetCheckSeverity.ERROR
    assert nan.metadata["day"].value == day_key(w.day(33))
    assert nan.metadata["days_error"].value == 1
    results = {c: e for (c, p), e in by_day.items() if p == day_key(w.day(LAST))}
    evaluation = pd.read_parquet(w.paths.lake / "delayed_evaluation")
    statuses = evaluation.set_index(evaluation["day"].dt.strftime("%Y-%m-%d"))["status"]
    assert statuses[day_key(w.day(FIRST))] == "final"
    assert statuses[day_key(w.day(LAST))] == "pending"
    assert results["auc_vs_held_out"].passed  # a good model; pending days cannot fail it
    early_check = results["missed_positive_reports"]
    assert early_check.passed, early_check.description
    early = pd.read_parquet(w.paths.lake / "early_label_watch")
    status = early.set_index(early["day"].dt.strftime("%Y-%m-%d"))["status"]
    # Labels are known up to the end of day 37: it is judged at label age 0 against the
    # reference days at age 0, not against mature days; days 38-39 cannot have labels yet.
    assert status[day_key(w.day(37))] == status[day_key(w.day(31))] == "early"
    assert status[day_key(w.day(38))] == "no labels can exist yet"
    assert status[day_key(w.day(FIRST))] == "past early window"
    assert (early["severity"] == "ok").all()


def test_pending_days_cannot_alarm_even_when_the_model_ranks_backwards(world, materialized):
    w, defs, instance = world
    day = w.day(LAST - 1)  # recent: labels not mature
    for path in (w.paths.lake / "batch_scores").glob(f"{day:%Y-%m-%d}T*.parquet"):
        df = pd.read_parquet(path)
        df.assign(score=1 - df["score"]).to_parquet(path, index=False)
    result = run(defs, instance, ["delayed_evaluation"], {"dagster/partition": day_key(day)})
    check = result.get_asset_check_evaluations()[0]
    assert check.passed, check.description
    assert check.metadata["status"].value == "pending"


def test_label_sensor_requests_exactly_the_days_new_labels_touch(world, materialized):
    w, defs, instance = world
    sensor = defs.get_repository_def().get_sensor_def("label_arrival_sensor")
    first = call_sensor(sensor, instance=instance, definitions=defs, resources=defs.resources)
    assert first.run_requests  # every label file is new at first
    assert isinstance(call_sensor(sensor, instance=instance, definitions=defs,
                                  cursor=first.cursor, resources=defs.resources), dg.SkipReason)

    # The next day's label file lands: it holds labels of events from a few earlier days.
    labels = pd.read_parquet(next((w.paths.lake / "raw_labels").glob("*.parquet")))
    new_day = w.day(LABELS_UNTIL)
    expected = {w.day(d) for d in (FIRST + 2, FIRST + 5, FIRST + 6)}
    landed = labels.head(3).assign(**{SPEC.event_ts: [pd.Timestamp(d) + pd.Timedelta(hours=3)
                                                      for d in sorted(expected)]})
    landed.to_parquet(w.paths.lake / "raw_labels" / f"{new_day:%Y-%m-%d}.parquet", index=False)
    result = call_sensor(sensor, instance=instance, definitions=defs, cursor=first.cursor,
                         resources=defs.resources)
    requested = {(r.tags["dagster/asset_partition_range_start"],
                  r.tags["dagster/asset_partition_range_end"]) for r in result.run_requests}
    assert requested == {(day_key(w.day(FIRST + 2)), day_key(w.day(FIRST + 2))),
                         (day_key(w.day(FIRST + 5)), day_key(w.day(FIRST + 6)))}
    again = call_sensor(sensor, instance=instance, definitions=defs, cursor=first.cursor,
                        resources=defs.resources)
    assert [r.run_key for r in again.run_requests] == [r.run_key for r in result.run_requests]
    assert json.loads(result.cursor)["files"][f"raw_labels/{new_day:%Y-%m-%d}.parquet"]


def test_alert_sensor_writes_each_failed_check_once(world, materialized):
    w, defs, instance = world
    sensor = defs.get_repository_def().get_sensor_def("check_alert_sensor")
    shutil.rmtree(w.paths.root / "alerts", ignore_errors=True)
    result = call_sensor(sensor, instance=instance, definitions=defs, resources=defs.resources)
    alerts = read_alerts(w.paths.root / "alerts")
    nan = [a for a in alerts if a["check"] == "psi_distance_km"]
    assert nan and nan[0]["level"] == "error" and nan[0]["category"] == "diagnostic"
    assert nan[0]["route"] == "ticket" and nan[0]["metadata"]["feature"] == "distance_km"
    assert isinstance(call_sensor(sensor, instance=instance, definitions=defs,
                                  cursor=result.cursor, resources=defs.resources), dg.SkipReason)
    assert len(read_alerts(w.paths.root / "alerts")) == len(alerts)


def test_a_surge_of_early_reports_among_passed_events_fails_the_early_label_watch(world,
                                                                                 materialized):
    """Concept drift: events the model let through on day 37 start being reported as fraud
    within hours (the early reports feed). Nothing in the features moves; the early label
    watch flags the day."""
    w, defs, instance = world
    day = w.day(37)
    scores = pd.concat(pd.read_parquet(p) for p in
                       (w.paths.lake / "batch_scores").glob(f"{day:%Y-%m-%d}T*.parquet"))
    reported = pd.read_parquet(w.paths.lake / "raw_early_reports")
    passed = scores[scores["acted"] & ~scores["decision"]
                    & ~scores[SPEC.event_id].isin(reported[SPEC.event_id])].head(12)
    path = w.paths.lake / "raw_early_reports" / f"{day:%Y-%m-%d}.parquet"
    day_labels = pd.read_parquet(path)
    events = pd.read_parquet(w.paths.lake / "raw_events")
    reports = events[events[SPEC.event_id].isin(passed[SPEC.event_id])].assign(**{
        SPEC.label: 1, SPEC.label_ts: lambda e: e[SPEC.event_ts] + pd.Timedelta(minutes=30)})
    reports = reports[reports[SPEC.label_ts] < day + pd.Timedelta(days=1)][day_labels.columns]
    pd.concat([day_labels, reports.astype(day_labels.dtypes)]).to_parquet(path, index=False)
    result = run(defs, instance, ["early_label_watch"], {"dagster/partition": day_key(day)})
    check = result.get_asset_check_evaluations()[0]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR, check.description
    assert check.metadata["reported_positives"].value >= len(reports) >= 10
    assert check.metadata["expected_positives"].value < 3


def test_an_effectively_unmonitored_feature_is_a_warn_of_its_own(world, materialized):
    """Issue 17, item 1: on the demo, one dominant merchant's daily value crosses bin edges, so
    the merchant features' clean days vary by PSI ~2 and their error threshold exceeds 1: the
    row, the asset summary and the check say "effectively unmonitored" instead of "ok"."""
    w, _, instance = world
    rows = pd.read_parquet(w.paths.lake / "feature_drift")
    blind = rows[rows["unmonitored"] & (rows["severity"] == "ok")]
    assert len(blind) and (blind["unmonitored_reason"].str.startswith("effectively unmonitored")).all()
    assert (rows.loc[~rows["unmonitored"], "unmonitored_reason"] == "").all()
    r = blind.iloc[0]
    key = day_key(r["day"].to_pydatetime())
    evals = {(e.check_name, e.partition): e for e in materialized.get_asset_check_evaluations()}
    check = evals[f"psi_{r['feature']}", key]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert "effectively unmonitored" in check.description and check.metadata["unmonitored"].value
    events = instance.fetch_materializations(dg.AssetKey("feature_drift"), limit=100).records
    meta = {e.partition_key: e.asset_materialization.metadata for e in events}[key]
    assert meta["features_unmonitored"].value >= 1
    assert f"**WARN** `{r['feature']}`: effectively unmonitored" in meta["summary"].value


def test_the_psi_check_reports_an_effectively_unmonitored_feature_as_warn():
    """Issue 17, item 1: never a silent "ok" for a feature no realistic drift could alarm on."""
    from ml_assets.defs.monitoring.checks import _unmonitored_is_warn

    rows = pd.DataFrame({"severity": ["ok", "ok", "error"], "unmonitored": [True, False, True]})
    assert _unmonitored_is_warn(rows)["severity"].tolist() == ["warn", "ok", "error"]
    legacy = pd.DataFrame({"severity": ["ok"]})  # a table written before the flag existed
    assert _unmonitored_is_warn(legacy)["severity"].tolist() == ["ok"]
