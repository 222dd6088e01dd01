"""Rerun a registered version's training from raw landing data and say whether it is identical.

The rebuild runs the pipeline's own steps (contracts + ingest, point-in-time features, the
as-of training set, hash splits, seeded training) in a scratch data directory, from copies of
the landing files that are checksummed on the way in; the live lake, artifacts and registry are
only read. The result compares the dataset SHA-256, the artifact SHA-256 and the predictions on
the frozen reference set with what the model card recorded, and when anything differs, lists
the causes found (landing data rewritten, feature definitions, seed, model config, splits,
the spec file, code, lockfile, library versions) - direct evidence first.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from ml_assets.lib.core import artifacts
from ml_assets.lib.core.catalog import EVENT_FEATURES, RAW_EVENTS, RAW_LABELS, Catalog
from ml_assets.lib.core.datasets import DatasetSpec, split_start
from ml_assets.lib.core.lake import day_floor, days_between, periods_in
from ml_assets.lib.core.paths import DataPaths
from ml_assets.lib.core.registry import Registry
from ml_assets.lib.core.workspace import Workspace
from ml_assets.lib.features.build import build_features, split_by_period
from ml_assets.lib.features.definitions import feature_fingerprint
from ml_assets.lib.ingest import integrity as landing_integrity
from ml_assets.lib.ingest.landing import LABELS, events_layout, ingest_events, ingest_labels
from ml_assets.lib.scoring.batch import load_live_model
from ml_assets.lib.training.candidate import train_candidate
from ml_assets.lib.training.train import (
    TrainingWindow,
    build_training_set,
    predict,
    training_splits,
)

DIRECT = "direct"  # the difference explains a mismatch by itself
ENVIRONMENT = "environment"  # may explain a mismatch; harmless when the rerun is identical


@dataclass
class Cause:
    """One difference that can explain a mismatch; ``evidence`` is DIRECT or ENVIRONMENT."""
    kind: str
    detail: str
    evidence: str = DIRECT


@dataclass
class ReproduceResult:
    """The verdict of ``reproduce``; ``seconds`` is wall-clock time."""
    version: str
    identical: bool
    dataset_sha256_match: bool
    artifact_sha256_match: bool
    frozen_reference_max_abs_diff: float | None
    seconds: float
    recorded: dict
    reproduced: dict
    causes: list[Cause] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    scratch_dir: str | None = None

    def as_dict(self) -> dict:
        """The result as plain dicts and lists (``dataclasses.asdict``)."""
        return asdict(self)


def _window(card: dict) -> TrainingWindow:
    w, held_out = card["training_window"], card.get("held_out_period")
    return TrainingWindow.from_dict({"start": w["start"], "end": w["end"],
                                     "label_cutoff": card["label_cutoff"]}
                                    | ({"test_start": held_out["start"], "test_end": held_out["end"]}
                                       if held_out else {}))


def stage_landing(live: DataPaths, registry: Registry, scratch: DataPaths, spec: DatasetSpec,
                  window: TrainingWindow) -> list[landing_integrity.FileProblem]:
    """Copy the landing files the rebuild reads into the scratch directory, checksumming each
    against the ledger/manifest on the way: the files covering every event partition from the
    dataset start (labels of the window can belong to any earlier event) to the end of the
    window or held-out period, and every label day before the cutoff (``landing_layout``; a
    period in parts with every part),
    plus, unchecked, what makes their file-less periods complete (a later file, markers).
    Returns one FileProblem per file rewritten, missing (a file name of those periods the
    ledger knows) or without a recorded checksum.

    Parameters
    ----------
    live, scratch : DataPaths
        Read from ``live``, written to ``scratch``.
    registry : Registry
        Holds the landing ledger (the expected checksums).
    spec : DatasetSpec
    window : TrainingWindow
    """
    periods = periods_in(spec.start_utc, _last_event(window), spec.partition_step)
    days = days_between(spec.start_utc, window.label_cutoff)
    feeds = [(events_layout(live, spec), periods),
             (LABELS.layout(live, spec), days)]
    # every name that could cover a period, and every part of those periods present or known
    # to the ledger (parts have no predictable name): one the ledger knows but that is gone
    # is "missing"
    names = list(dict.fromkeys(str((layout.folder.parent / name).relative_to(live.root))
                               for layout, starts in feeds for s in starts
                               for name in layout.candidates(s)))
    present = {str(p.relative_to(live.root)) for layout, _ in feeds
               for period in layout.files.values() for p in period}
    folders = {n.removesuffix(".parquet") for n in names}
    rels = list(dict.fromkeys(names + sorted(
        p for p in present | set(registry.landing_checksums())
        if not folders.isdisjoint(map(str, Path(p).parents)))))
    expected = landing_integrity.expected_checksums(live, registry, rels)
    problems = []
    for layout, starts in feeds:
        for src in layout.completing(starts[-1] + layout.partition) if starts else []:
            dst = scratch.root / src.relative_to(live.root)
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)
    for rel in rels:
        src = live.root / rel
        data = src.read_bytes() if rel in present else None
        actual = hashlib.sha256(data).hexdigest() if data is not None else None
        problem = landing_integrity.compare(rel, expected.get(rel), actual)
        if problem:
            problems.append(problem)
        if data is not None:
            dst = scratch.root / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_bytes(data)
    return problems


def _last_event(window: TrainingWindow) -> datetime:
    """The end of the last event range the training set reads."""
    return max(hi for _, hi in window.event_ranges())


def scratch_spec(spec: DatasetSpec, window: TrainingWindow) -> DatasetSpec:
    """The spec the scratch lake is built with: ``spec`` at daily partitions when it is hourly
    and the data's start and every event range of ``window`` fall on UTC midnights, else
    ``spec``. A scratch lake is read only by the rebuild, and a feature's value does not depend
    on how events are partitioned, so it writes and lists a 24th of the files (the training set,
    and its SHA-256, are the same: ``test_reproduce``)."""
    bounds = [spec.start_utc, *(t for r in window.event_ranges() for t in r)]
    if spec.partition_grain == "daily" or any(t != day_floor(t) for t in bounds):
        return spec
    return replace(spec, partition_grain="daily")


def rebuild_training_set(scratch: DataPaths, spec: DatasetSpec, window: TrainingWindow,
                         now: datetime, live: DataPaths | None = None) -> pd.DataFrame:
    """raw -> contracts -> lake -> point-in-time features -> as-of training set (scratch only).
    The scratch lake is partitioned as :func:`scratch_spec` says (daily where it can be).

    Parameters
    ----------
    scratch : DataPaths
    spec : DatasetSpec
    window : TrainingWindow
    now : datetime
        The contracts' clock for "in the future" (UTC).
    live : DataPaths, optional
        The live lake whose recorded label availability the rebuild keeps (a late label file
        stays late, so features equal the live ones).
    """
    spec = scratch_spec(spec, window)
    step = spec.partition_step
    events, _ = ingest_events(scratch, spec, periods_in(spec.start_utc, _last_event(window), step),
                              now)
    catalog = Catalog(scratch.lake, spec.partition_grain)
    catalog.table(RAW_EVENTS).write_many(events)
    labels, _ = ingest_labels(scratch, spec, days_between(spec.start_utc, window.label_cutoff), now,
                              recorded_in=live)
    catalog.table(RAW_LABELS).write_many(labels)
    features = catalog.table(EVENT_FEATURES)
    for start, end in window.event_ranges():
        for lo, hi, chunk in build_features(scratch, spec, start, end):
            features.write_many(split_by_period(chunk, spec.event_ts, periods_in(lo, hi, step),
                                                step))
    return build_training_set(scratch, spec, window)


def frozen_reference(live: DataPaths, registry: Registry, spec: DatasetSpec) -> pd.DataFrame:
    """The frozen reference set of ``spec``'s model, read through SHA-256 verification.

    Parameters
    ----------
    live : DataPaths
    registry : Registry
    spec : DatasetSpec
        Its ``model_name`` picks the reference set.

    Raises
    ------
    FileNotFoundError
        When no reference set was recorded yet.
    ArtifactIntegrityError
        When the stored file no longer matches its recorded SHA-256.
    """
    ref = registry.reference_set(spec.model_name)
    if ref is None:
        raise FileNotFoundError(f"no frozen reference set recorded for {spec.model_name}")
    path = artifacts.recorded_file(live, ref["path"], "reference set path")
    return pd.read_parquet(io.BytesIO(artifacts.read_verified(path, ref["sha256"])))


def reproduce(ws: Workspace, version: str, seed: int | None = None,
              scratch_dir: Path | None = None, keep: bool = False, threads: int = 1,
              ) -> ReproduceResult:
    """Retrain ``version`` from raw landing data with its recorded window, cutoff and seed
    and the current spec's definitions; the live data directory and registry are only read.

    Parameters
    ----------
    ws : Workspace
        The live deployment: its paths, its spec (whose definitions the rerun uses) and its
        registry (the model card, frozen reference set and landing ledger).
    version : str
        The registered version to retrain, e.g. ``fraud-v3``.
    seed : int, optional
        Overrides the recorded seed (to rehearse a wrong seed).
    scratch_dir : pathlib.Path, optional
        Where the temporary rebuild directory is created (default: the system temp dir).
    keep : bool, default False
        Keep the rebuild directory (its path is in ``scratch_dir`` of the result).
    threads : int, default 1
        Threads for training and prediction.

    Returns
    -------
    ReproduceResult
        Whether the rerun is identical (dataset SHA-256, artifact SHA-256, frozen-reference
        predictions), in how many seconds, and the causes found when it is not.

    Raises
    ------
    RegistryError
        When ``version`` is not registered.
    ArtifactIntegrityError
        When the live model artifact fails verification.
    """
    live, spec, registry = ws.paths, ws.spec, ws.registry
    t0 = time.perf_counter()
    card = registry.get_model(version)
    window = _window(card)
    seed = card["seed"] if seed is None else seed
    root = Path(tempfile.mkdtemp(prefix=f"reproduce-{version}-", dir=scratch_dir))
    scratch = DataPaths(root).ensure()
    new, error, max_diff, old_model, new_model = {"seed": seed}, None, None, None, None
    try:
        landing_problems = stage_landing(live, registry, scratch, spec, window)
        old_model = load_live_model(live, card)["model"]
        # A rewritten or broken landing file may stop the rebuild; the diagnosis still runs.
        training_set = rebuild_training_set(scratch, spec, window, datetime.now(UTC), live)
        dataset_sha = artifacts.dataset_sha256(training_set)
        splits = training_splits(training_set, spec, window)
        reference = frozen_reference(live, registry, spec)
        new = train_candidate(scratch, spec, training_set, splits, reference, window,
                              dataset_sha, seed=seed, threads=threads)
        new_model = artifacts.load_model(artifacts.recorded_file(scratch, new["artifact_path"]),
                                         new["artifact_sha256"])["model"]
        max_diff = _max_abs_diff(old_model, new_model, spec, reference, threads)
    except Exception as exc:  # reported as a failed rerun with its cause, not a traceback
        if old_model is None:
            raise
        error = f"{type(exc).__name__}: {exc}"
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
    dataset_ok = new.get("dataset_sha256") == card["dataset_sha256"]
    artifact_ok = new.get("artifact_sha256") == card["artifact_sha256"]
    identical = dataset_ok and artifact_ok and max_diff == 0.0
    causes = diagnose(card, new, spec, landing_problems, old_model, new_model)
    if error:
        causes.append(Cause("rerun_failed", error))
    notes = [f"{c.kind}: {c.detail} (the rerun is identical regardless)"
             for c in causes] if identical else []
    keys = ("dataset_sha256", "artifact_sha256", "seed", "feature_schema_version",
            "spec", "code_commit", "lockfile_sha256", "rows")
    return ReproduceResult(
        version=version, identical=identical, dataset_sha256_match=dataset_ok,
        artifact_sha256_match=artifact_ok, frozen_reference_max_abs_diff=max_diff,
        seconds=round(time.perf_counter() - t0, 3),
        recorded={k: card.get(k) for k in keys}, reproduced={k: new.get(k) for k in keys},
        causes=[] if identical else _rank(causes, dataset_ok), notes=notes,
        scratch_dir=str(root) if keep else None)


def _max_abs_diff(old_model, new_model, spec: DatasetSpec, reference: pd.DataFrame,
                  threads: int) -> float | None:
    try:
        a = predict(old_model, spec, reference, threads)
        b = predict(new_model, spec, reference, threads)
    except (KeyError, ValueError):  # the feature set itself changed: predictions not comparable
        return None
    return float(np.max(np.abs(a - b))) if len(a) else 0.0


def _rank(causes: list[Cause], dataset_ok: bool) -> list[Cause]:
    """Direct causes first; a mismatch with no cause found says so instead of guessing."""
    ordered = sorted(causes, key=lambda c: c.evidence != DIRECT)
    if not any(c.evidence == DIRECT for c in ordered):
        where = "the artifact" if dataset_ok else "the training set"
        ordered.append(Cause("unexplained", f"{where} differs although landing data, feature "
                             "definitions, seed, model config and splits match; suspect a "
                             "nondeterministic step or one of the environment differences"))
    return ordered


def diagnose(card: dict, new: dict, spec: DatasetSpec,
             landing_problems: list[landing_integrity.FileProblem], old_model, new_model,
             ) -> list[Cause]:
    """Every difference between the recorded run and the rerun that can change its output.

    Parameters
    ----------
    card, new : dict
        The recorded model card and the rerun's card.
    spec : DatasetSpec
    landing_problems : list of FileProblem
    old_model, new_model : fitted model or None
        Their hyperparameters are compared.
    """
    causes = []
    changed = [p for p in landing_problems if p.problem != "unrecorded"]
    if changed:
        shown = "; ".join(p.describe() for p in changed[:5])
        more = f" (+{len(changed) - 5} more)" if len(changed) > 5 else ""
        causes.append(Cause("landing_data_changed", shown + more))
    unrecorded = [p.path for p in landing_problems if p.problem == "unrecorded"]
    if unrecorded:
        causes.append(Cause("landing_data_unverified", f"{len(unrecorded)} landing file(s) have "
                            f"no recorded checksum, e.g. {unrecorded[0]}", ENVIRONMENT))
    recorded_fp = card.get("feature_fingerprints", {})
    current_fp = {f.name: feature_fingerprint(f) for f in spec.features}
    diff = sorted(n for n in set(recorded_fp) | set(current_fp)
                  if recorded_fp.get(n) != current_fp.get(n))
    if diff or card["feature_schema_version"] != spec.schema_version:
        causes.append(Cause("feature_definition_changed",
                            f"feature schema {card['feature_schema_version']} -> "
                            f"{spec.schema_version}; changed/added/removed: {diff}"))
    if new["seed"] != card["seed"]:
        causes.append(Cause("seed_changed", f"recorded seed {card['seed']}, rerun with "
                                            f"{new['seed']}"))
    params = _param_diff(old_model, new_model) if new_model is not None else {}
    if params:
        causes.append(Cause("model_config_changed", ", ".join(
            f"{k}: {a!r} -> {b!r}" for k, (a, b) in params.items())))
    if card.get("rows") and new.get("rows") and card["rows"] != new["rows"] \
            and new.get("dataset_sha256") == card["dataset_sha256"]:
        causes.append(Cause("split_changed", f"same rows split differently: {card['rows']} -> "
                                             f"{new['rows']} (split salt/fractions changed?)"))
    causes += environment_causes(card, new) if "code_commit" in new else []
    return causes


def _param_diff(old_model, new_model) -> dict:
    a, b = old_model.get_params(), new_model.get_params()
    return {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b))
            if k != "random_state" and not _same(a.get(k), b.get(k))}


def _same(x, y) -> bool:
    if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
        return np.array_equal(np.asarray(x), np.asarray(y))
    return x == y


def environment_causes(card: dict, new: dict) -> list[Cause]:
    """Code, spec file, lockfile and library-version differences of ``card`` (recorded) and
    ``new`` (rerun)."""
    out = []
    if card.get("code_commit") != new.get("code_commit") or card.get("code_dirty"):
        dirty = " (recorded from a dirty tree: uncommitted changes are not recoverable)" \
            if card.get("code_dirty") else ""
        out.append(Cause("code_changed", f"trained at commit {str(card.get('code_commit'))[:12]},"
                         f" rerun at {str(new.get('code_commit'))[:12]}{dirty}", ENVIRONMENT))
    old_spec, new_spec = card.get("spec") or {}, new.get("spec") or {}
    # the file's hash, and a start moved by the reference (``REF@YYYY-MM-DD``, not in the file)
    if old_spec and (old_spec.get("sha256") != new_spec.get("sha256") or split_start(
            old_spec.get("ref", ""))[1] != split_start(new_spec.get("ref") or "")[1]):
        out.append(Cause("spec_changed", f"spec {old_spec['ref']} {old_spec['sha256'][:12]} -> "
                         f"{new_spec.get('ref')} {str(new_spec.get('sha256'))[:12]}", ENVIRONMENT))
    if card.get("lockfile_sha256") != new.get("lockfile_sha256"):
        out.append(Cause("lockfile_changed", f"requirements.lock {card.get('lockfile_sha256', '')[:12]}"
                         f" -> {new.get('lockfile_sha256', '')[:12]}", ENVIRONMENT))
    old_libs, new_libs = card.get("library_versions", {}), new.get("library_versions", {})
    libs = {k: (old_libs.get(k), new_libs.get(k)) for k in set(old_libs) | set(new_libs)
            if old_libs.get(k) != new_libs.get(k)}
    if libs:
        out.append(Cause("library_versions_changed", ", ".join(
            f"{k} {a} -> {b}" for k, (a, b) in sorted(libs.items())), ENVIRONMENT))
    return out

