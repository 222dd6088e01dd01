"""Rerun training from raw: an older version after newer data, labels and models is
bit-identical; one rewritten landing byte, another seed or another feature definition each
make the rerun differ and are named as the cause. Plus the landing ledger's append-only rule."""

import dataclasses
import shutil
import sqlite3
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ml_assets.lib.core.paths import DataPaths
from ml_assets.lib.core.registry import Registry
from ml_assets.lib.core.workspace import Workspace
from ml_assets.lib.features.definitions import WindowAgg
from ml_assets.lib.ingest import integrity as landing_integrity
from ml_assets.lib.training.reproduce import _window, reproduce, scratch_spec
from ml_assets.lib.training.train import TrainingWindow


def _lake_state(paths: DataPaths) -> dict:
    return {str(p.relative_to(paths.root)): p.stat().st_mtime_ns
            for sub in ("lake", "artifacts") for p in (paths.root / sub).rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def first_version(fraud_world):
    registry = Registry(fraud_world["paths"].control_db)
    models = registry.list_models("fraud")
    assert len(models) >= 2, "the world must hold a later model than the one reproduced"
    return models[0]


@pytest.fixture(scope="module")
def baseline(fraud_world, first_version):
    """The untouched rerun of the older version (also proves the live state is only read)."""
    paths = fraud_world["paths"]
    before = _lake_state(paths), len(Registry(paths.control_db).list_models("fraud"))
    result = reproduce(Workspace(paths, fraud_world["spec"]), first_version["version"])
    assert (_lake_state(paths), len(Registry(paths.control_db).list_models("fraud"))) == before
    return result


def test_an_older_version_reproduces_bit_identically_after_newer_data_and_labels(
        fraud_world, first_version, baseline):
    cutoff = first_version["label_cutoff"]
    labels = sorted((fraud_world["paths"].lake / "raw_labels").glob("*.parquet"))
    assert labels[-1].stem > cutoff[:10], "later labels must have landed after the cutoff"
    assert baseline.identical, baseline.causes
    assert baseline.dataset_sha256_match and baseline.artifact_sha256_match
    assert baseline.frozen_reference_max_abs_diff == 0.0
    assert baseline.reproduced["dataset_sha256"] == first_version["dataset_sha256"]
    assert baseline.causes == []
    # ... through a scratch lake of daily partitions, although the live one is hourly
    spec = fraud_world["spec"]
    assert spec.partition_grain == "hourly"
    assert scratch_spec(spec, _window(first_version)).partition_grain == "daily"


def test_the_scratch_lake_is_daily_only_when_every_bound_is_a_midnight(fraud_world):
    spec, day = fraud_world["spec"], datetime(2026, 7, 20, tzinfo=UTC)
    week = timedelta(days=7)
    assert scratch_spec(spec, TrainingWindow(day, day + week, day + week)).partition_grain == "daily"
    for window in (TrainingWindow(day + timedelta(hours=5), day + week, day + week),
                   TrainingWindow(day, day + week, day + week, day + week,
                                  day + week + timedelta(hours=3))):
        assert scratch_spec(spec, window) is spec  # an hour boundary needs hourly partitions
    daily = dataclasses.replace(spec, partition_grain="daily")
    assert scratch_spec(daily, TrainingWindow(day, day + week, day + week)) is daily


def test_a_rewritten_landing_file_is_reported_as_the_cause(fraud_world, first_version, tmp_path):
    root = tmp_path / "world"
    shutil.copytree(fraud_world["paths"].root, root, ignore=shutil.ignore_patterns("dagster_home"))
    paths = DataPaths(root)
    # One amount of one event inside the training window changes by one cent.
    hour = fraud_world["cfg"].start + timedelta(days=10, hours=12)
    path = paths.landing_events_file(hour)
    table = pq.read_table(path)
    amounts = table["amount"].to_pylist()
    amounts[0] = round(amounts[0] + 0.01, 2)
    table = table.set_column(table.schema.get_field_index("amount"), "amount",
                             pa.array(amounts, table.schema.field("amount").type))
    pq.write_table(table, path, compression="zstd")

    result = reproduce(Workspace(paths, fraud_world["spec"]), first_version["version"])
    assert not result.identical and not result.dataset_sha256_match
    assert result.causes[0].kind == "landing_data_changed"
    assert path.name in result.causes[0].detail
    problems = landing_integrity.verify(paths, Registry(paths.control_db),
                                        [str(path.relative_to(root))])
    assert [p.problem for p in problems] == ["rewritten"]

    # A single flipped byte in a label file (the file may no longer even parse).
    label = paths.landing_labels_file(fraud_world["cfg"].start + timedelta(days=12))
    data = bytearray(label.read_bytes())
    data[len(data) // 2] ^= 0x01
    label.write_bytes(bytes(data))
    result = reproduce(Workspace(paths, fraud_world["spec"]), first_version["version"])
    assert not result.identical and result.causes[0].kind == "landing_data_changed"
    assert label.name in result.causes[0].detail


def test_another_seed_is_reported_as_the_cause(fraud_world, first_version):
    result = reproduce(Workspace(fraud_world["paths"], fraud_world["spec"]),
                       first_version["version"], seed=first_version["seed"] + 1)
    # Without early stopping or subsampling the boosted trees ignore the seed, so the scores
    # may agree; the artifact (which records random_state) must not, and the seed is named.
    assert result.dataset_sha256_match and not result.artifact_sha256_match
    assert not result.identical
    assert result.causes[0].kind == "seed_changed"
    assert str(first_version["seed"]) in result.causes[0].detail


def test_a_changed_feature_definition_is_reported_as_the_cause(fraud_world, first_version):
    spec = fraud_world["spec"]
    features = tuple(dataclasses.replace(f, window="12h") if f.name == "card_tx_count_24h" else f
                     for f in spec.features)
    assert any(isinstance(f, WindowAgg) and f.window == "12h" for f in features)
    changed = Workspace(fraud_world["paths"], dataclasses.replace(spec, features=features))
    result = reproduce(changed, first_version["version"])
    assert not result.identical and not result.dataset_sha256_match
    assert result.causes[0].kind == "feature_definition_changed"
    assert "card_tx_count_24h" in result.causes[0].detail


def test_landing_ledger_keeps_the_first_checksum_and_refuses_rewrites(tmp_path):
    paths = DataPaths(tmp_path).ensure()
    registry = Registry(paths.control_db)
    f = paths.landing / "events" / "2026-07-01T00.parquet"
    f.write_bytes(b"first delivery")
    assert landing_integrity.record(paths, registry, [f], actor="test") == []
    f.write_bytes(b"second delivery")
    rewritten = landing_integrity.record(paths, registry, [f], actor="test")
    assert [p.problem for p in rewritten] == ["rewritten"]
    # the ledger still holds the first checksum, and cannot be edited
    rel = "landing/events/2026-07-01T00.parquet"
    assert landing_integrity.verify(paths, registry, [rel])[0].source == "ledger"
    con = sqlite3.connect(paths.control_db)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        con.execute("UPDATE landing_checksums SET sha256 = 'x'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        con.execute("DELETE FROM landing_checksums")
    f.unlink()
    assert landing_integrity.verify(paths, registry, [rel])[0].problem == "missing"


def test_six_weeks_ago_the_champion_of_then_reproduces_after_later_models(tmp_path):
    """The scenario at small scale: retrain-and-promote every 14 days through Dagster for 62 days,
    then the model that served 42 days before the end is rebuilt from raw."""
    from ml_assets.definitions import build_definitions
    from ml_assets.lib.core.workspace import Workspace
    from ml_assets.scenarios.six_weeks import six_weeks_ago
    from ml_assets.scenarios.synthetic import SyntheticConfig
    from ml_assets.specs.fraud import FRAUD_SPEC

    paths = DataPaths(tmp_path).ensure()
    out = six_weeks_ago(Workspace(paths, FRAUD_SPEC), SyntheticConfig(seed=5, days=62, scale=0.1),
                        build_definitions(FRAUD_SPEC, str(tmp_path)), first_model_day=20,
                        every_days=14, log=lambda *_: None)
    assert out["champion_on"] == "2026-07-21" and out["version"] == "fraud-v1"
    assert out["later_models"] >= 2 and out["current_champion"] != out["version"]
    assert out["identical"], out["causes"]
    assert out["frozen_reference_max_abs_diff"] == 0.0
