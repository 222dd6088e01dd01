"""Training: the as-of training set, hash splits, the frozen reference set and the candidate."""


import getpass
import io
from datetime import datetime, timedelta

import dagster as dg
import pandas as pd

from ml_assets.defs.freshness import NIGHTLY_TRAINING_FRESHNESS
from ml_assets.lib.core import artifacts
from ml_assets.lib.core.catalog import RAW_LABELS
from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.workspace import Workspace
from ml_assets.lib.training.candidate import train_candidate
from ml_assets.lib.training.splits import assign_splits
from ml_assets.lib.training.train import (
    TrainingWindow,
    build_training_set,
    reference_rows,
    split_frame,
    training_window,
)


class TrainingConfig(dg.Config):
    as_of: str | None = None
    """ISO time of the label cutoff and window end; default: end of the latest label partition."""
    window_days: int | None = None
    """Length of the training window; default from the dataset spec."""


class ModelConfig(dg.Config):
    seed: int | None = None
    """Overrides the spec's seed (every RNG derives from it)."""


def resolve_window(project: dg.ResourceParam[Workspace], spec: DatasetSpec, cfg: TrainingConfig) -> TrainingWindow:
    if cfg.as_of:
        as_of = datetime.fromisoformat(cfg.as_of)
        if as_of.tzinfo is None:
            raise dg.Failure(f"as_of {cfg.as_of!r} must carry a timezone, e.g. '+00:00'")
    else:
        last = project.catalog.table(RAW_LABELS).latest()
        if last is None:
            raise dg.Failure("no raw_labels partitions yet: materialize raw_labels first")
        as_of = last.replace(tzinfo=spec.start_utc.tzinfo) + timedelta(days=1)
    return training_window(spec, as_of, cfg.window_days)


def build_training_assets(spec: DatasetSpec) -> list:
    owners = [spec.owner]
    common = {"group_name": "training", "owners": owners,
              "freshness_policy": NIGHTLY_TRAINING_FRESHNESS}

    @dg.asset(name="training_set", deps=["event_features", "raw_labels"], kinds={"duckdb", "parquet"},
              description="Feature rows of the training window joined to labels known at the "
                          "cutoff (label_ts < cutoff). Unlabeled rows are excluded, never negatives. "
                          "Records the SHA-256 of the post-feature table.", **common)
    def training_set(context: dg.AssetExecutionContext, config: TrainingConfig,
                     project: dg.ResourceParam[Workspace]) -> pd.DataFrame:
        window = resolve_window(project, spec, config)
        df = build_training_set(project.paths, spec, window)
        sha = artifacts.dataset_sha256(df)
        df.attrs = {"window": window.as_dict(), "dataset_sha256": sha}
        context.add_output_metadata({
            "dataset_sha256": sha, "rows": len(df),
            "positives": int(df[spec.label].sum()),
            "positive_rate": float(df[spec.label].mean()) if len(df) else 0.0,
            "window_start": window.start.isoformat(), "window_end": window.end.isoformat(),
            "label_cutoff": window.label_cutoff.isoformat(),
        })
        return df

    @dg.asset(name="data_splits", kinds={"duckdb"},
              description="train/valid/test by md5(salt:event_id): the same row lands in the "
                          "same split forever, whatever data is added.", **common)
    def data_splits(context: dg.AssetExecutionContext, training_set: pd.DataFrame) -> pd.DataFrame:
        split = assign_splits(training_set[spec.event_id], spec.model.split_salt,
                              spec.model.split_fractions)
        out = pd.DataFrame({spec.event_id: training_set[spec.event_id], "split": split})
        counts = out["split"].value_counts().to_dict()
        context.add_output_metadata({f"rows_{k}": int(counts.get(k, 0))
                                     for k in ("train", "valid", "test")}
                                    | {"salt": spec.model.split_salt})
        return out

    @dg.asset(name="frozen_reference_set", kinds={"parquet"},
              description="A fixed evaluation set: frozen from the first training run's test "
                          "split, content-addressed, and reused unchanged by every later model.",
              **common)
    def frozen_reference_set(context: dg.AssetExecutionContext, project: dg.ResourceParam[Workspace],
                             training_set: pd.DataFrame, data_splits: pd.DataFrame) -> pd.DataFrame:
        registry = project.registry
        frozen = registry.reference_set(spec.model_name)
        if frozen is None:
            ref = reference_rows(split_frame(training_set, data_splits, spec)["test"], spec)
            sha, path = artifacts.store(project.paths.artifacts,
                                        artifacts.frame_to_parquet_bytes(ref), "parquet")
            frozen = registry.freeze_reference_set(spec.model_name, sha,
                                                   str(path.relative_to(project.paths.root)),
                                                   len(ref), actor=getpass.getuser())
        data = artifacts.read_verified(
            artifacts.recorded_file(project.paths, frozen["path"], "reference set path"),
            frozen["sha256"])
        df = pd.read_parquet(io.BytesIO(data))
        context.add_output_metadata({"sha256": frozen["sha256"], "rows": len(df),
                                     "frozen_at": frozen["created_at"]})
        return df

    @dg.asset(name="candidate_model", kinds={"scikitlearn", "sqlite"},
              description="Seeded HistGradientBoosting model trained on the train split, "
                          "evaluated on held-out test and the frozen reference set, stored "
                          "content-addressed and registered with its full model card. The "
                          "first version becomes champion; later ones challenger.", **common)
    def candidate_model(context: dg.AssetExecutionContext, config: ModelConfig, project: dg.ResourceParam[Workspace],
                        training_set: pd.DataFrame, data_splits: pd.DataFrame,
                        frozen_reference_set: pd.DataFrame) -> dg.MaterializeResult:
        w = training_set.attrs["window"]
        window = TrainingWindow(datetime.fromisoformat(w["start"]), datetime.fromisoformat(w["end"]),
                                datetime.fromisoformat(w["label_cutoff"]))
        card = train_candidate(project.paths, spec, training_set, data_splits, frozen_reference_set,
                               window, training_set.attrs["dataset_sha256"], seed=config.seed)
        version, created = project.registry.register_model(spec.model_name, card,
                                                           actor=getpass.getuser())
        m = card["metrics"]
        return dg.MaterializeResult(metadata={
            "version": version,
            "newly_registered": created,
            "artifact_sha256": card["artifact_sha256"],
            "dataset_sha256": card["dataset_sha256"],
            "seed": card["seed"],
            "held_out_auc": m["held_out"]["auc"],
            "held_out_pr_auc": m["held_out"]["pr_auc"],
            "frozen_reference_auc": m["frozen_reference"]["auc"],
            "held_out_days_with_auc": m["held_out_per_day"]["days"],
            **({"held_out_per_day_auc_p50": m["held_out_per_day"]["auc_p50"]}
               if "auc_p50" in m["held_out_per_day"] else {}),
            "train_rows": card["rows"]["train"],
            "code_commit": card["code_commit"],
        })

    return [training_set, data_splits, frozen_reference_set, candidate_model]
