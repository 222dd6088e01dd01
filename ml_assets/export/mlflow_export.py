"""Mirror the registry into MLflow: each registered version becomes an MLflow run and model
version, the aliases ``champion``/``challenger``/``previous`` are mirrored. Our registry stays
the source of truth; MLflow is a read-only view for the tools that look there.

Per version: the model card's scalar fields and its spec's ref and SHA-256 as tags
(``ml_assets.*``) and parameters, its metrics (``<split>_<metric>``), the training-set SHA-256
as the dataset digest (MLflow keeps 36 hex digits; the dataset source and a tag keep all 64), a
signature of the spec's feature columns, the serving contract's input schema as model metadata, and the verified artifact
wrapped as a pyfunc model (:mod:`ml_assets.export.mlflow_model`).

Idempotent: a version already exported (found by its ``ml_assets.version`` tag) is left alone
and an alias is written only when it points elsewhere, so a second export changes nothing.
MLflow is imported only here, inside :func:`export_to_mlflow` (the ``mlflow`` extra).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

from ml_assets.lib.core.artifacts import recorded_file
from ml_assets.lib.core.workspace import Workspace
from ml_assets.lib.docs.interface_contract import load_contract

ALIASES = ("champion", "challenger", "previous")
VERSION_TAG = "ml_assets.version"
_CARD_TAGS = ("version", "artifact_sha256", "dataset_sha256", "code_commit", "code_dirty",
              "lockfile_sha256", "owner", "trained_at", "registered_at",
              "feature_schema_version")


class ExportError(RuntimeError):
    """The export cannot run (MLflow not installed, an unusable tracking URI)."""


def card_params(card: dict) -> dict[str, str]:
    """The card's training settings as MLflow parameters (strings).

    Parameters
    ----------
    card : dict
        A model card as ``Registry.get_model`` returns it.

    Returns
    -------
    dict
        Seed, decision threshold, training window, label cutoff, split sizes (rows) and the
        feature schema version.
    """
    params = {"seed": card["seed"], "decision_threshold": card["decision_threshold"],
              "training_window_start": card["training_window"]["start"],
              "training_window_end": card["training_window"]["end"],
              "label_cutoff": card["label_cutoff"],
              "feature_schema_version": card["feature_schema_version"],
              "n_features": len(card["feature_names"])}
    params.update({f"rows_{split}": n for split, n in card["rows"].items()})
    return {k: str(v) for k, v in params.items()}


def card_tags(card: dict) -> dict[str, str]:
    """Provenance fields of the card as ``ml_assets.*`` tags: library versions, and the spec
    file that trained it (``ml_assets.spec.ref``/``ml_assets.spec.sha256``) when the card
    records one (older cards and specs built in code do not: no tag then)."""
    tags = {f"ml_assets.{k}": str(card[k]) for k in _CARD_TAGS if k in card}
    tags.update({f"ml_assets.library.{k}": str(v) for k, v in card["library_versions"].items()})
    tags.update({f"ml_assets.spec.{k}": str(v) for k, v in (card.get("spec") or {}).items()})
    return tags


def card_metrics(card: dict) -> dict[str, float]:
    """Card metrics flattened to ``<split>_<metric>``; undefined ones (None) are omitted."""
    return {f"{split}_{name}": float(v) for split, values in card["metrics"].items()
            for name, v in values.items() if v is not None}


def default_artifact_root(tracking_uri: str) -> str | None:
    """Beside a ``sqlite:///path/mlflow.db`` store, ``path/mlartifacts``; else MLflow's own."""
    parsed = urlparse(tracking_uri)
    if parsed.scheme != "sqlite":
        return None
    return (Path(parsed.path).resolve().parent / "mlartifacts").as_uri()


def export_to_mlflow(ws: Workspace, tracking_uri: str,
                     artifact_root: str | None = None) -> dict:
    """Write every registered version of the workspace's model to an MLflow registry.

    Parameters
    ----------
    ws : Workspace
        Paths (for the artifacts), spec (model name, features) and registry.
    tracking_uri : str
        MLflow tracking and registry URI, e.g. ``sqlite:///mlflow.db`` (offline).
    artifact_root : str, optional
        Where new experiments keep artifacts; default :func:`default_artifact_root`.

    Returns
    -------
    dict
        ``model``, ``exported`` and ``unchanged`` (our versions), ``versions`` (ours ->
        MLflow's), ``aliases`` (alias -> MLflow version) and ``aliases_moved``.

    Raises
    ------
    ExportError
        MLflow is not installed (``pip install 'ml_assets[mlflow]'``).
    """
    try:
        import mlflow
        from mlflow import MlflowClient
    except ImportError as exc:
        raise ExportError("MLflow is not installed: pip install 'ml_assets[mlflow]'") from exc
    name = ws.spec.model_name
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    experiment = client.get_experiment_by_name(f"ml_assets/{name}")
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(
        f"ml_assets/{name}", artifact_location=artifact_root or default_artifact_root(
            tracking_uri), tags={"ml_assets.source_of_truth": "ml_assets registry"})
    if not client.search_registered_models(filter_string=f"name = '{name}'"):
        client.create_registered_model(name, tags={"ml_assets.source_of_truth":
                                                   "ml_assets registry"},
                                       description=f"Mirror of the ml_assets registry of {name}")
    present = {mv.tags.get(VERSION_TAG): str(mv.version)
               for mv in client.search_model_versions(f"name = '{name}'")}
    exported, unchanged = [], []
    for card in ws.registry.list_models(name):
        if card["version"] in present:
            unchanged.append(card["version"])
            continue
        present[card["version"]] = _log_version(mlflow, ws, card, experiment_id)
        exported.append(card["version"])
    moved = _mirror_aliases(client, name, ws.registry.aliases(name), present)
    aliases = _aliases(client, name)
    return {"model": name, "tracking_uri": tracking_uri, "exported": exported,
            "unchanged": unchanged, "versions": present, "aliases": aliases,
            "aliases_moved": moved}


def _log_version(mlflow, ws: Workspace, card: dict, experiment_id: str) -> str:
    """One run with the card, the dataset digest and the pyfunc model; returns the MLflow
    model version registered from it."""
    from mlflow.data.code_dataset_source import CodeDatasetSource
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    from ml_assets.export.mlflow_model import BUNDLE, VerifiedBundleModel

    spec, tags = ws.spec, card_tags(card)
    signature = ModelSignature(inputs=Schema([ColSpec("double", f) for f in spec.feature_names]),
                               outputs=Schema([ColSpec("double", "score")]))
    # MLflow caps a dataset digest at 36 characters: the SHA-256's first 36 hex digits go
    # there, the whole digest into the source (and the run's ml_assets.dataset_sha256 tag).
    dataset = MetaDataset(CodeDatasetSource({"builder": "ml_assets training set",
                                             "sha256": card["dataset_sha256"],
                                             "start": card["training_window"]["start"],
                                             "end": card["training_window"]["end"]}),
                          name=f"{spec.name}-training", digest=card["dataset_sha256"][:36])
    with mlflow.start_run(experiment_id=experiment_id, run_name=card["version"], tags=tags):
        mlflow.log_params(card_params(card))
        mlflow.log_metrics(card_metrics(card))
        mlflow.log_input(dataset, context="training")
        info = mlflow.pyfunc.log_model(
            name="model", python_model=VerifiedBundleModel(spec.feature_names),
            artifacts={BUNDLE: str(recorded_file(ws.paths, card["artifact_path"]))},
            signature=signature,
            # Pinned from the card: no environment inference (it would load the model).
            pip_requirements=[f"{k}=={v}" for k, v in card["library_versions"].items()
                              if k != "python"],
            metadata={"ml_assets_version": card["version"],
                      "feature_schema_version": card["feature_schema_version"],
                      "serving_input_schema": load_contract(spec).input_schema()})
    mv = mlflow.register_model(info.model_uri, spec.model_name,
                               tags={**tags, VERSION_TAG: card["version"]})
    return str(mv.version)


def _aliases(client, name: str) -> dict[str, str]:
    """MLflow's aliases of the model; versions as strings (MLflow returns them as numbers)."""
    return {a: str(v) for a, v in client.get_registered_model(name).aliases.items()}


def _mirror_aliases(client, name: str, ours: dict[str, str | None],
                    present: dict[str, str]) -> list[str]:
    """Point MLflow's aliases where ours point; touch only those that differ."""
    current = _aliases(client, name)
    moved = []
    for alias in ALIASES:
        target = present.get(ours.get(alias)) if ours.get(alias) else None
        if current.get(alias) == target:
            continue
        if target is None:
            client.delete_registered_model_alias(name, alias)
        else:
            client.set_registered_model_alias(name, alias, target)
        moved.append(alias)
    return moved
