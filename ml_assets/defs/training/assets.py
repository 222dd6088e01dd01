"""Training: the as-of training set, hash splits, the frozen reference set and the candidate."""


import getpass
import io
from datetime import timedelta

import dagster as dg
import pandas as pd
from pydantic import Field

from ml_assets.defs.freshness import NIGHTLY_TRAINING_FRESHNESS, freshness_policy
from ml_assets.defs.metadata import known_metadata
from ml_assets.lib.core import artifacts
from ml_assets.lib.core.catalog import RAW_LABELS
from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.workspace import Workspace
from ml_assets.lib.training.candidate import train_candidate
from ml_assets.lib.training.train import (
    TrainingWindow,
    WindowError,
    build_training_set,
    explicit_window,
    parse_time,
    reference_rows,
    split_frame,
    training_splits,
)


def _described(text: str):
    """An optional config field whose description the launchpad shows (Dagster reads field
    descriptions, not attribute docstrings)."""
    return Field(default=None, description=text)


class TrainingConfig(dg.Config):
    """The training window, its label cutoff and an optional held-out period; times are
    ISO-8601 with a UTC offset, e.g. ``2026-08-01T00:00:00+00:00``. Nothing set: the window
    of the spec's length ending at the latest label partition."""

    start: str | None = _described(
        "Window start (events with start <= event_ts < end). Default: window_days before end, "
        "not before the data nor (once the history reaches past it) the warm-up.")
    end: str | None = _described("Window end, exclusive. Default: label_cutoff (the latest "
                                 "raw_labels partition's day end when label_cutoff defaults).")
    label_cutoff: str | None = _described(
        "Only labels dated and available before it are known (window and held-out period). "
        "Default: as_of, else when the latest raw_labels partition's labels became available "
        "(its day's end plus the spec's label_ingest_delay).")
    as_of: str | None = _described(
        "Shorthand for label_cutoff (and so the window end); give it or label_cutoff.")
    window_days: int | None = _described(
        "Window length in days when start is not given. Default: the dataset spec's.")
    test_start: str | None = _described(
        "Held-out period start: its rows form the test split instead of the hashed one, and "
        "the window gives train and validation only. Give with test_end; must not overlap "
        "the window.")
    test_end: str | None = _described("Held-out period end, exclusive; at most label_cutoff.")


class ModelConfig(dg.Config):
    seed: int | None = None
    """Overrides the spec's seed (every RNG derives from it)."""


def resolve_window(project: dg.ResourceParam[Workspace], spec: DatasetSpec,
                   cfg: TrainingConfig) -> TrainingWindow:
    """The validated training window a ``TrainingConfig`` asks for (``explicit_window``).

    Parameters
    ----------
    project : Workspace
        Its catalog gives the default cutoff: when the latest ``raw_labels`` partition's labels
        became available (its day's end plus ``spec.label_ingest_delay``); the default window
        end is that day's end.
    spec : DatasetSpec
    cfg : TrainingConfig

    Returns
    -------
    TrainingWindow

    Raises
    ------
    WindowError
        A time without offset, an invalid combination (see ``explicit_window``), both
        ``as_of`` and ``label_cutoff``, or no cutoff given and no ``raw_labels`` partition yet.
    """
    t = {name: parse_time(name, getattr(cfg, name))
         for name in ("as_of", "label_cutoff", "start", "end", "test_start", "test_end")}
    if t["as_of"] and t["label_cutoff"]:
        raise WindowError("as_of: give as_of or label_cutoff, not both")
    cutoff, end = t["label_cutoff"] or t["as_of"], t["end"]
    if cutoff is None:
        last = project.catalog.table(RAW_LABELS).latest()
        if last is None:
            raise WindowError("label_cutoff: no raw_labels partitions yet; materialize "
                              "raw_labels first or give label_cutoff")
        # the last label file's labels count: they are available its ingest delay after its
        # day ends; the window still ends with that day
        end = end or last.replace(tzinfo=spec.start_utc.tzinfo) + timedelta(days=1)
        cutoff = last.replace(tzinfo=spec.start_utc.tzinfo) + timedelta(days=1) + \
            spec.label_ingest_delay
    return explicit_window(spec, cutoff, t["start"], end, cfg.window_days,
                           t["test_start"], t["test_end"])


def build_training_assets(spec: DatasetSpec) -> list:
    owners = [spec.owner]
    common = {"group_name": "training", "owners": owners,
              "freshness_policy": freshness_policy(spec, NIGHTLY_TRAINING_FRESHNESS)}

    @dg.asset(name="training_set", deps=["event_features", "raw_labels"], kinds={"duckdb", "parquet"},
              description="Feature rows of the training window joined to labels known at the "
                          "cutoff (label_ts < cutoff). Unlabeled rows are excluded, never negatives. "
                          "Records the SHA-256 of the post-feature table.", **common)
    def training_set(context: dg.AssetExecutionContext, config: TrainingConfig,
                     project: dg.ResourceParam[Workspace]) -> pd.DataFrame:
        try:
            window = resolve_window(project, spec, config)
        except WindowError as exc:  # a config mistake: its message, not a traceback
            raise dg.Failure(str(exc)) from None
        df = build_training_set(project.paths, spec, window)
        sha = artifacts.dataset_sha256(df)
        df.attrs = {"window": window.as_dict(), "dataset_sha256": sha}
        context.add_output_metadata(known_metadata({
            "dataset_sha256": sha, "rows": len(df),
            "positives": int(df[spec.label].sum()),
            "positive_rate": float(df[spec.label].mean()) if len(df) else None,
            "window_start": window.start.isoformat(), "window_end": window.end.isoformat(),
            "label_cutoff": window.label_cutoff.isoformat(),
            **({"test_start": window.test_start.isoformat(),
                "test_end": window.test_end.isoformat()} if window.held_out else {}),
        }))
        return df

    @dg.asset(name="data_splits", kinds={"duckdb"},
              description="train/valid/test by md5(salt:event_id): the same row lands in the "
                          "same split forever, whatever data is added. With a held-out "
                          "period, its rows are test and the window's train/valid.", **common)
    def data_splits(context: dg.AssetExecutionContext, training_set: pd.DataFrame) -> pd.DataFrame:
        out = training_splits(training_set, spec,
                              TrainingWindow.from_dict(training_set.attrs["window"]))
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
        window = TrainingWindow.from_dict(training_set.attrs["window"])
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
