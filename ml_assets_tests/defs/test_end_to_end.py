"""End to end through Dagster: landing -> raw -> features -> training -> batch scores, then the
CLI a user runs. Plus the same pipeline on a second, non-fraud spec."""

import dataclasses
import json
import subprocess
import sys
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from ml_assets.definitions import build_definitions
from ml_assets.lib.core.artifacts import sha256_file
from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.lake import read_parquet_files
from ml_assets.lib.core.paths import DataPaths
from ml_assets.lib.core.registry import Registry
from ml_assets.lib.core.workspace import Workspace
from ml_assets.lib.features.definitions import LabelAgg, TimeSincePrevious, WindowAgg
from ml_assets.lib.features.parity import replay_parity
from ml_assets.lib.scoring.batch import load_live_model
from ml_assets.lib.training.provenance import code_commit
from ml_assets.lib.training.reproduce import reproduce
from ml_assets.scenarios.demo import run_pipeline
from ml_assets.specs.loading import load_spec
from ml_assets_tests.fixtures.example_specs import SUPPORT_TICKETS


def test_every_stage_wrote_its_outputs(fraud_world):
    paths, cfg = fraud_world["paths"], fraud_world["cfg"]
    hours = cfg.days * 24
    assert len(list((paths.lake / "raw_events").glob("*.parquet"))) == hours
    assert len(list((paths.lake / "event_features").glob("*.parquet"))) == hours
    assert len(list((paths.lake / "raw_labels").glob("*.parquet"))) == cfg.days
    raw = read_parquet_files(sorted((paths.lake / "raw_events").glob("*.parquet")))
    feats = read_parquet_files(sorted((paths.lake / "event_features").glob("*.parquet")))
    assert sorted(raw["event_id"]) == sorted(feats["event_id"])  # one feature row per event
    manifest = json.loads((paths.landing / "_manifest.json").read_text())
    assert manifest["events"] == len(raw)  # the clean demo quarantines nothing


def test_batch_scores_carry_a_version_on_every_row_and_every_live_model_scores(fraud_world):
    paths = fraud_world["paths"]
    files = sorted((paths.lake / "batch_scores").glob("*.parquet"))
    assert files
    for f in files:
        df = pd.read_parquet(f)
        assert df["model_version"].notna().all(), f
    scores = read_parquet_files(files)
    assert set(scores["model_version"]) == {"fraud-v1", "fraud-v2"}
    per_event = scores.groupby("event_id")["model_version"].nunique()
    assert (per_event == 2).all()
    champion = scores[scores["role"] == "champion"]
    assert set(champion["model_version"]) == {"fraud-v1"} and champion["acted"].all()
    assert not scores.loc[scores["role"] == "challenger", "acted"].any()
    assert scores["score"].between(0, 1).all()


def _cli(*args, data_dir) -> str:
    return subprocess.run([sys.executable, "-m", "ml_assets.cli.main", "--data-dir", str(data_dir), *args],
                          check=True, capture_output=True, text=True).stdout


def test_cli_models_and_status_json(fraud_world):
    root = fraud_world["paths"].root
    models = json.loads(_cli("models", "--json", data_dir=root))
    assert [m["version"] for m in models] == ["fraud-v1", "fraud-v2"]
    for m in models:
        assert {"version", "artifact_sha256", "dataset_sha256", "training_window", "label_cutoff",
                "seed", "feature_schema_version", "code_commit", "lockfile_sha256"} <= set(m)
        assert m["metrics"]["held_out"]["auc"] and m["metrics"]["frozen_reference"]["auc"]
    status = json.loads(_cli("status", "--json", data_dir=root))
    assert status["champion"] == "fraud-v2"  # the demo promotes the later model
    assert status["aliases"]["previous"] == "fraud-v1"
    # The only failing checks may be features whose noise-raised threshold leaves them
    # effectively unmonitored (issue 17, item 1): in this 30-day world the reference window is
    # mostly warm-up (trailing 7d/30d windows still filling), so those features' clean reference
    # days differ by PSI 1.6-3.7. Each says so and why; none is a drift alarm (item 6 removes
    # the cause).
    assert all(c["asset"] == "feature_drift" and c["severity"] == "WARN"
               and "effectively unmonitored" in c["description"]
               for c in status["failing_checks"]), status["failing_checks"]
    assert {c["check"] for c in status["checks"]} >= {"event_contract", "feature_contract",
                                                       "score_contract"}
    assert "fraud-v1" in _cli("models", data_dir=root)


def write_ticket_landing(paths: DataPaths, start: datetime, days: int, seed: int = 5) -> None:
    """A toy support-ticket stream, one landing file per day: busy customers with long messages
    escalate more; about a third of the tickets have no agent yet (``agent_id`` null)."""
    rng = np.random.default_rng(seed)
    n = days * 24 * 6
    ts = start + pd.to_timedelta(np.sort(rng.integers(0, days * 86_400, n)), unit="s")
    customer = rng.integers(0, 60, n)
    chars = rng.gamma(2.0, 300.0, n).round()
    prio = rng.choice(["low", "normal", "high", "urgent"], n)
    agent = rng.integers(-4, 8, n)
    escalated = (rng.random(n) < 0.05 + 0.3 * (chars > 1200) + 0.2 * (prio == "high")).astype("int8")
    events = pd.DataFrame({"ticket_id": [f"T-{i:06d}" for i in range(n)],
                           "opened_at": pd.DatetimeIndex(ts).astype("datetime64[us, UTC]"),
                           "customer_id": [f"C{c:03d}" for c in customer],
                           "agent_id": [f"A{a}" if a >= 0 else None for a in agent],
                           "priority": prio, "message_chars": chars})
    paths.ensure()
    for day in pd.date_range(start, periods=days, freq="D"):
        part = events[(events["opened_at"] >= day) & (events["opened_at"] < day + pd.Timedelta(days=1))]
        part.to_parquet(paths.landing / "events" / f"{day:%Y-%m-%d}.parquet", index=False)
    labels = pd.DataFrame({"ticket_id": events["ticket_id"], "escalated": escalated,
                           "resolved_at": events["opened_at"] + pd.to_timedelta(
                               rng.integers(3600, 3 * 86_400, n), unit="s")})
    for day in pd.date_range(start, periods=days, freq="D"):
        part = labels[(labels["resolved_at"] >= day) & (labels["resolved_at"] < day + pd.Timedelta(days=1))]
        part.to_parquet(paths.landing_labels_file(day.to_pydatetime()), index=False)


def with_nullable_agent(spec: DatasetSpec) -> DatasetSpec:
    """The tickets spec plus a second entity key ``agent_id``, null while a ticket is
    unassigned (``nullable_keys``), and features over it."""
    return dataclasses.replace(
        spec, entity_keys=(*spec.entity_keys, "agent_id"), nullable_keys=("agent_id",),
        features=(*spec.features,
                  WindowAgg("agent_tickets_1d", entity="agent_id", agg="count", window="1d"),
                  TimeSincePrevious("agent_seconds_since_prev", entity="agent_id", within="1d"),
                  LabelAgg("agent_escalations_14d", entity="agent_id", agg="positives",
                           window="14d")))


def test_pipeline_runs_on_a_second_non_fraud_spec(tmp_path):
    # from examples/, the way a user's spec loads; with a nullable key and daily partitions
    # (partition_grain) it runs end to end too
    spec = dataclasses.replace(with_nullable_agent(load_spec(SUPPORT_TICKETS)),
                               partition_grain="daily")
    start = spec.start_utc
    days = 12
    paths = DataPaths(tmp_path)
    write_ticket_landing(paths, start, days)
    run_pipeline(Workspace(paths, spec), build_definitions(spec, str(tmp_path)), start,
                 start + timedelta(days=days), first_model_at=0.6, log=lambda *_: None)
    registry = Registry(paths.control_db)
    assert registry.aliases("escalation")["champion"] == "escalation-v1"
    card = registry.get_model("escalation-v1")
    assert card["spec"] == {"ref": str(SUPPORT_TICKETS), "sha256": sha256_file(SUPPORT_TICKETS)}
    assert card["code_dirty"] == code_commit()[1]  # the spec adds nothing to the tree's state
    scores = read_parquet_files(sorted((paths.lake / "batch_scores").glob("*.parquet")))
    assert scores["ticket_id"].str.startswith("T-").all()
    assert scores["model_version"].str.startswith("escalation-v").all()
    feats = read_parquet_files(sorted((paths.lake / "event_features").glob("*.parquet")))
    # the unknown priority "urgent" lands in the explicit unknown bucket (index 3)
    assert feats["priority"].max() == 3.0
    # unassigned tickets are neither quarantined nor one shared "null agent": scored, with an
    # empty agent history, and counted in their customer's windows
    raw = read_parquet_files(sorted((paths.lake / "raw_events").glob("*.parquet")))
    assert len(raw) == days * 24 * 6 and raw["agent_id"].isna().mean() > 0.25
    unassigned = feats[feats["agent_id"].isna()]
    assert (unassigned["agent_tickets_1d"] == 0).all()
    assert (unassigned["agent_escalations_14d"] == 0).all()
    assert unassigned["agent_seconds_since_prev"].isna().all()
    assert feats.loc[feats["agent_id"].notna(), "agent_tickets_1d"].max() > 0
    for _, row in unassigned.tail(20).iterrows():  # customer windows count unassigned tickets
        seen = raw[(raw["customer_id"] == row["customer_id"]) & (raw["opened_at"] < row["opened_at"])
                   & (raw["opened_at"] >= row["opened_at"] - pd.Timedelta(days=7))]
        assert row["customer_tickets_7d"] == len(seen) and seen["agent_id"].isna().any()
    scored_from = unassigned["opened_at"] >= scores["opened_at"].min()
    assert scored_from.any() and set(unassigned.loc[scored_from, "ticket_id"]) <= set(scores["ticket_id"])
    assert scores["agent_id"].isna().any()
    # training/serving parity on a scored day, unassigned tickets included
    models = {v: load_live_model(paths, registry.get_model(v))["model"]
              for v in registry.aliases("escalation").values() if v}
    report = replay_parity(paths, spec, start + timedelta(days=days - 1), models)
    assert report.ok and report.events > 100, report.as_dict()
    # a rebuild from raw at the daily grain gives the model trained from the live lake
    rerun = reproduce(Workspace(paths, spec), "escalation-v1")
    assert rerun.identical, rerun.causes
