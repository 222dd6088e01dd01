"""An hourly schedule asks ``online_offline_parity`` about the same newest complete day 24 times.
The replay runs again only when something it reads has changed (the day's files, the look-back,
the models, the declarations, the code); otherwise the check gives the verdict of the run that
replayed it, and says which run that was. A change is never hidden behind an old verdict."""

from datetime import timedelta

import pandas as pd

from ml_assets.definitions import build_definitions
from ml_assets.defs.partitions import PARTITION_TAG, hour_key
from ml_assets.defs.scoring.definitions import EVENT_ASSETS
from ml_assets.lib.core.catalog import EVENT_FEATURES, Catalog
from ml_assets.scenarios.runner import dagster_instance, run
from ml_assets_tests.fixtures.reliability_world import copy_world, hours, shifted_hour


def _parity(result):
    [evaluation] = [e for e in result.get_asset_check_evaluations()
                    if e.check_name == "online_offline_parity"]
    return evaluation


def test_the_verdict_is_reused_until_an_input_changes(fraud_world, tmp_path):
    spec, end = fraud_world["spec"], fraud_world["end"]
    paths = copy_world(fraud_world, tmp_path / "w")
    new = hours(end, 3)  # hours of a day that is not complete: the parity day stays the last
    for i, h in enumerate(new):
        shifted_hour(paths, h - timedelta(days=1), h, 10_000_000 * (i + 1)).to_parquet(
            paths.landing_events_file(h), index=False)
    defs, instance = build_definitions(spec, str(paths.root)), dagster_instance(paths)

    def score(hour):
        result = run(defs, instance, list(EVENT_ASSETS), {PARTITION_TAG: hour_key(hour)})
        assert result.success
        return result.run_id, _parity(result)

    first_run, first = score(new[0])
    assert first.passed and first.metadata["replayed_in_run"].value == first_run
    day = first.metadata["day"].value

    _, again = score(new[1])  # the parity day's inputs are as they were
    assert again.passed and again.description == first.description
    assert again.metadata["replayed_in_run"].value == first_run
    assert again.metadata["inputs_fingerprint"] == first.metadata["inputs_fingerprint"]

    # a batch feature of the parity day is rewritten: the next run replays and sees the skew
    table = Catalog(paths.lake, spec.partition_grain).table(EVENT_FEATURES)
    hour = pd.Timestamp(day, tz="UTC").to_pydatetime() + timedelta(hours=12)
    frame = pd.read_parquet(table.path(hour))
    name = spec.feature_names[0]
    frame[name] = frame[name] + 1.0
    table.write(hour, frame)
    third_run, third = score(new[2])
    assert third.metadata["replayed_in_run"].value == third_run
    assert not third.passed and f"'{name}'" in third.description
