"""``ml-assets export mlflow`` into an offline ``sqlite:///`` store: every registered version
with its card, dataset digest and signature, aliases mirrored, idempotent, and the champion
loaded back through MLflow scores the frozen reference exactly as our artifact does."""

import numpy as np
import pytest

from ml_assets.cli.main import main as cli_main
from ml_assets.export.mlflow_export import VERSION_TAG, card_tags, export_to_mlflow
from ml_assets.lib.core.artifacts import load_model
from ml_assets.lib.core.workspace import Workspace
from ml_assets.lib.release.rollback import promote
from ml_assets.lib.training.splits import assign_splits
from ml_assets.lib.training.train import (
    TrainingWindow,
    build_training_set,
    reference_rows,
    split_frame,
)
from ml_assets_tests.fixtures.serving_world import CFG, SPEC, world_copy

mlflow = pytest.importorskip("mlflow")  # the `mlflow` extra; locked with dev, so CI has it


def snapshot(client, name: str) -> dict:
    """Everything an export could change, with MLflow's own timestamps."""
    model = client.get_registered_model(name)
    versions = sorted(client.search_model_versions(f"name = '{name}'"), key=lambda v: v.version)
    runs = client.search_runs([client.get_experiment_by_name(f"ml_assets/{name}")
                               .experiment_id])
    return {"model": (model.last_updated_timestamp, dict(model.aliases)),
            "versions": [(v.version, v.last_updated_timestamp, dict(v.tags)) for v in versions],
            "runs": sorted(r.info.run_id for r in runs)}


def test_export_mirrors_the_registry_and_is_idempotent(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")  # no network from a test
    ws = Workspace(world_copy(tmp_path / "w"), SPEC)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    first = export_to_mlflow(ws, uri)
    assert first["exported"] == ["fraud-v1", "fraud-v2", "fraud-v3"]
    ours = ws.registry.aliases(SPEC.model_name)
    assert {a: first["versions"][v] for a, v in ours.items()} == first["aliases"]

    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    champion = client.get_model_version_by_alias(SPEC.model_name, "champion")
    card = ws.registry.get_model(ours["champion"])
    assert champion.tags[VERSION_TAG] == card["version"]
    assert champion.tags["ml_assets.artifact_sha256"] == card["artifact_sha256"]
    run = client.get_run(champion.run_id)
    assert run.data.params["seed"] == str(card["seed"])
    assert run.data.metrics["held_out_auc"] == card["metrics"]["held_out"]["auc"]
    assert [d.dataset.digest for d in run.inputs.dataset_inputs] == [card["dataset_sha256"][:36]]
    assert card["dataset_sha256"] in run.inputs.dataset_inputs[0].dataset.source
    assert run.data.tags["ml_assets.dataset_sha256"] == card["dataset_sha256"]
    # this world's spec is built in code (no file): no spec tag, never a placeholder
    assert card.get("spec") is None and not any(t.startswith("ml_assets.spec.")
                                                for t in champion.tags)

    before = snapshot(client, SPEC.model_name)
    second = export_to_mlflow(ws, uri)
    assert second["exported"] == [] and second["aliases_moved"] == []
    assert snapshot(client, SPEC.model_name) == before  # re-export changes nothing

    # The champion through MLflow scores the frozen reference exactly as our artifact does.
    loaded = mlflow.pyfunc.load_model(f"models:/{SPEC.model_name}@champion")
    assert loaded.metadata.signature.inputs.input_names() == list(SPEC.feature_names)
    training = build_training_set(ws.paths, SPEC, TrainingWindow(CFG.start, CFG.end, CFG.end))
    splits = training[[SPEC.event_id]].assign(split=assign_splits(
        training[SPEC.event_id], SPEC.model.split_salt, SPEC.model.split_fractions))
    reference = reference_rows(split_frame(training, splits, SPEC)["test"], SPEC)
    ours_scores = load_model(ws.paths.root / card["artifact_path"], card["artifact_sha256"])[
        "model"].predict_proba(reference[SPEC.feature_names].to_numpy("float64"))[:, 1]
    theirs = np.asarray(loaded.predict(reference[SPEC.feature_names].astype("float64")))
    assert len(reference) > 100 and np.array_equal(theirs.ravel(), ours_scores)

    # An alias moved in our registry moves in MLflow on the next export, via the CLI.
    promote(ws.registry, ws.paths, SPEC, ours["challenger"], actor="tests", reason="export")
    assert cli_main(["--data-dir", str(ws.paths.root), "--spec", SPEC.name, "export", "mlflow",
                     "--tracking-uri", uri, "--json"]) == 0
    now = ws.registry.aliases(SPEC.model_name)
    mirrored = client.get_registered_model(SPEC.model_name).aliases
    assert {a: str(v) for a, v in mirrored.items()} == {
        a: first["versions"][v] for a, v in now.items() if v}
    assert client.get_model_version_by_alias(SPEC.model_name, "champion").tags[VERSION_TAG] \
        == now["champion"]


def test_a_version_is_tagged_with_the_spec_file_that_trained_it():
    card = {"version": "m-v1", "library_versions": {"pandas": "2"},
            "spec": {"ref": "/teams/orders/spec.toml", "sha256": "ab" * 32}}
    tags = card_tags(card)
    assert (tags["ml_assets.spec.ref"], tags["ml_assets.spec.sha256"]) == (
        "/teams/orders/spec.toml", "ab" * 32)
    for old in ({k: v for k, v in card.items() if k != "spec"}, {**card, "spec": None}):
        assert not any(t.startswith("ml_assets.spec.") for t in card_tags(old))
