"""The serving read path in plain Python (the HTTP app is a thin shell around it).

- Precomputed scores are served from an in-memory index (a dict from event id to a row, one
  score array per model version), rebuilt in the background when new score files land and
  swapped in with one reference assignment, so a lookup never waits for a reload.
- Which version answers is decided per request from the control plane: the ``champion`` alias,
  or ``previous`` while the kill switch is on (one SQLite read, tens of microseconds).
- Models are cached by version and loaded only through SHA-256 verification. A version whose
  artifact fails verification is refused; the last good model keeps answering and every
  response says so (``degraded``).
- Realtime requests share model calls: requests that arrive together are scored with one
  ``predict_proba`` per model, so concurrency costs one model call per batch, not per request.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from ml_assets.lib.core.artifacts import ArtifactIntegrityError, load_model, sha256_file
from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.identifiers import quote
from ml_assets.lib.core.lake import connect, read_parquet_files
from ml_assets.lib.core.paths import HOUR_FILE_FORMAT, DataPaths
from ml_assets.lib.core.registry import Registry, RegistryError
from ml_assets.lib.core.workspace import Workspace
from ml_assets.lib.features.online import OnlineState
from ml_assets.lib.release import rollout
from ml_assets.lib.release.rollback import KILL_SWITCH
from ml_assets.lib.serving.tree_predictor import compile_trees

SCORE_SOURCES = ("batch_scores", "microbatch_scores")
RETRY_FAILED_LOAD = timedelta(seconds=30)


class NoServableModel(RuntimeError):
    """Neither the resolved version nor any earlier verified model can be served."""


# -- control plane, read on every request -----------------------------------------------------
class ControlReader:
    """Aliases, kill switch and rollout state of one model, read on every request.

    The read is the registry's one-query snapshot on a per-thread read-only connection; the
    rollout state's JSON is parsed only when its text changed.

    Parameters
    ----------
    registry : Registry
        The control plane.
    model_name : str
        The served model.
    """

    def __init__(self, registry: Registry, model_name: str):
        self._snapshot = registry.snapshot_reader(model_name, (KILL_SWITCH, rollout.STATE_KEY))
        self._rollout_raw: str | None = None
        self._rollout: dict | None = None

    def read(self) -> tuple[dict[str, str], bool, dict | None]:
        """(aliases, kill switch on?, rollout state or None)."""
        aliases, settings = self._snapshot.read()
        raw = settings.get(rollout.STATE_KEY)
        if raw != self._rollout_raw:  # parse the JSON only when it changed
            self._rollout_raw, self._rollout = raw, json.loads(raw) if raw else None
        return aliases, settings.get(KILL_SWITCH, "off") == "on", self._rollout


@dataclass(frozen=True)
class Resolved:
    version: str
    role: str
    kill_switch: bool
    bundle: dict
    degraded: str | None = None


# -- model cache ------------------------------------------------------------------------------
class ModelCache:
    """Verified model bundles by version; refuses tampered artifacts, keeps the last good."""

    def __init__(self, paths: DataPaths, registry: Registry):
        self.paths, self.registry = paths, registry
        self._models: dict[str, tuple[dict, dict]] = {}  # version -> (card, bundle)
        self._failed: dict[str, tuple[datetime, str]] = {}
        self._lock = threading.Lock()
        self.last_good: str | None = None

    def get(self, version: str) -> tuple[dict | None, str | None]:
        """(bundle, None) or (None, why it cannot be served)."""
        hit = self._models.get(version)
        if hit is not None:
            return hit[1], None
        failed = self._failed.get(version)
        if failed and datetime.now(UTC) - failed[0] < RETRY_FAILED_LOAD:
            return None, failed[1]
        with self._lock:
            if version in self._models:
                return self._models[version][1], None
            try:
                card = self.registry.get_model(version)
                bundle = load_model(self.paths.root / Path(card["artifact_path"]),
                                    card["artifact_sha256"])
            except (ArtifactIntegrityError, RegistryError) as exc:
                self._failed[version] = (datetime.now(UTC), str(exc))
                return None, str(exc)
            bundle = {**bundle, "compiled": compile_trees(bundle["model"])}
            self._models[version] = (card, bundle)
            self._failed.pop(version, None)
            return bundle, None

    def mark_good(self, version: str) -> None:
        self.last_good = version

    def verify_on_disk(self) -> dict[str, str]:
        """Re-hash the artifacts of cached models: a changed file is reported (the verified
        copy in memory keeps serving; it will not be reloaded from the bad bytes)."""
        problems = {}
        for version, (card, _) in list(self._models.items()):
            path = self.paths.root / Path(card["artifact_path"])
            if not path.exists():
                problems[version] = f"artifact {card['artifact_path']} is missing on disk"
            elif sha256_file(path) != card["artifact_sha256"]:
                problems[version] = (f"artifact {card['artifact_path']} no longer matches its "
                                     "sha256 (tampered); serving the verified in-memory copy")
        return problems

    def loaded(self) -> dict[str, tuple[dict, dict]]:
        return dict(self._models)

    def failures(self) -> dict[str, str]:
        return {v: why for v, (_, why) in self._failed.items()}


# -- precomputed scores -----------------------------------------------------------------------
class ScoreIndex:
    """Event id -> row; per version a score and a decision array aligned with the rows."""

    def __init__(self, spec: DatasetSpec, df: pd.DataFrame, signature: tuple = ()):
        self.signature = signature
        self.loaded_at = datetime.now(UTC)
        eid = spec.event_id
        codes, uniques = pd.factorize(df[eid])
        n = len(uniques)
        self.rows: dict = dict(zip(uniques.tolist(), range(n), strict=True))
        self.event_ts = np.empty(n, dtype="datetime64[us]")
        self.event_ts[codes] = df[spec.event_ts].dt.tz_convert("UTC").dt.tz_localize(None) \
            .to_numpy(dtype="datetime64[us]")
        self.source = np.empty(n, dtype=object)
        self.source[codes] = df["source"].to_numpy(dtype=object)
        self.scores: dict[str, np.ndarray] = {}
        self.decisions: dict[str, np.ndarray] = {}
        for version, idx in df.groupby("model_version", sort=False).indices.items():
            score = np.full(n, np.nan)
            decision = np.zeros(n, dtype=bool)
            score[codes[idx]] = df["score"].to_numpy(dtype="float64")[idx]
            decision[codes[idx]] = df["decision"].to_numpy(dtype=bool)[idx]
            self.scores[str(version)], self.decisions[str(version)] = score, decision
        latest = df.assign(_row=codes).sort_values(spec.event_ts, kind="stable")
        self.latest_by_entity = {
            key: dict(zip(*(lambda d: (d[key].tolist(), d["_row"].tolist()))(
                latest.drop_duplicates(key, keep="last")), strict=True))
            for key in spec.entity_keys}
        self.ids = uniques.tolist()
        # The rollout arm is decided by the first entity key (``rollout.entity_key``).
        arm_key = spec.entity_keys[0]
        arm = np.empty(n, dtype=object)
        arm[codes] = df[arm_key].to_numpy(dtype=object)
        self.arm_entity = arm.tolist()

    def __len__(self) -> int:
        return len(self.rows)

    def lookup(self, row: int, version: str) -> dict | None:
        scores = self.scores.get(version)
        if scores is None or np.isnan(scores[row]):
            return None
        return {"score": float(scores[row]), "decision": bool(self.decisions[version][row]),
                "event_ts": pd.Timestamp(self.event_ts[row], tz="UTC").isoformat(),
                "source": "batch" if self.source[row] == "batch_scores" else "microbatch"}


def score_files(paths: DataPaths) -> list[Path]:
    return [p for src in SCORE_SOURCES for p in sorted((paths.lake / src).glob("*.parquet"))]


def files_signature(files: list[Path]) -> tuple:
    return tuple((p.name, p.stat().st_mtime_ns) for p in files)


def load_score_index(paths: DataPaths, spec: DatasetSpec) -> ScoreIndex:
    files = score_files(paths)
    cols = [spec.event_id, spec.event_ts, *spec.entity_keys, "model_version", "score", "decision"]
    if not files:
        empty = pd.DataFrame({c: pd.Series(dtype="object") for c in cols})
        empty[spec.event_ts] = pd.Series(dtype="datetime64[us, UTC]")
        return ScoreIndex(spec, empty.assign(source=pd.Series(dtype="object")))
    select = ", ".join(quote(c) for c in cols)  # validated spec identifiers, paths we built
    listed = ", ".join(_lit(p) for p in files)
    sql = (f"SELECT {select}, regexp_extract(filename, '(batch_scores|microbatch_scores)') "  # noqa: S608
           f"AS source FROM read_parquet([{listed}], union_by_name = true, filename = true)")
    df = connect().execute(sql).df()
    return ScoreIndex(spec, df, files_signature(files))


def _lit(p: Path) -> str:
    return "'" + str(p).replace("'", "''") + "'"


# -- online state from the lake ---------------------------------------------------------------
class OnlineStateLoader:
    """Feeds the online state the latest look-back of raw events and labels, and then each
    newly landed partition (the state skips event ids it already holds)."""

    def __init__(self, paths: DataPaths, spec: DatasetSpec, state: OnlineState):
        self.paths, self.spec, self.state = paths, spec, state
        self._loaded: set[Path] = set()

    def refresh(self) -> int:
        lake = self.paths.lake
        raw = sorted((lake / "raw_events").glob("*.parquet"))
        labels = sorted((lake / "raw_labels").glob("*.parquet"))
        if raw:  # only the look-back before the newest partition matters
            newest = datetime.strptime(raw[-1].stem, HOUR_FILE_FORMAT)
            cutoff = (newest - self.spec.lookback - timedelta(days=1)).strftime("%Y-%m-%d")
            raw = [p for p in raw if p.stem[:10] >= cutoff]
            labels = [p for p in labels if p.stem[:10] >= cutoff]
        events = raw + sorted((lake / "microbatch_events").glob("*.parquet"))
        new_ev = [p for p in events if p not in self._loaded]
        new_lb = [p for p in labels if p not in self._loaded]
        added = self.state.add_events(read_parquet_files(new_ev)) if new_ev else 0
        if new_lb:
            self.state.add_labels(read_parquet_files(new_lb))
        self._loaded.update(new_ev + new_lb)
        return added


# -- shared model calls for realtime requests -------------------------------------------------
class BatchStats:
    def __init__(self):
        self.batches = 0
        self.rows = 0
        self.largest = 0


FAST_MAX_ROWS = 32  # above this, predict_proba's fixed cost is amortized and it is as fast


def predict_grouped(items: list[tuple[dict, np.ndarray]], stats: BatchStats) -> list:
    """Score many single-row requests with one model call per model bundle. Small batches use
    the compiled tree evaluator (bit-identical to ``predict_proba``, verified when loaded).
    Returns a score or the exception per item, in order."""
    out: list = [None] * len(items)
    by_model: dict[int, list[int]] = {}
    for i, (bundle, _) in enumerate(items):
        by_model.setdefault(id(bundle), []).append(i)
    for idx in by_model.values():
        bundle = items[idx[0]][0]
        fast = bundle.get("compiled")
        model = fast if fast is not None and len(idx) <= FAST_MAX_ROWS else bundle["model"]
        try:
            scores = model.predict_proba(np.vstack([items[i][1] for i in idx]))[:, 1]
            for i, s in zip(idx, scores.tolist(), strict=True):
                out[i] = s
        except Exception as exc:  # each request gets the error; the server keeps running
            for i in idx:
                out[i] = exc
        stats.batches += 1
        stats.rows += len(idx)
        stats.largest = max(stats.largest, len(idx))
    return out


# -- the service ------------------------------------------------------------------------------
class ScoringService:
    """The read path of one deployment: score index, online state, verified models and the
    per-request control-plane read.

    Parameters
    ----------
    ws : Workspace
        Paths, spec and registry of the deployment (built once by the serving entry point).
    reload_seconds : float, default 2.0
        Seconds between checks for new score files and landed partitions.
    """

    def __init__(self, ws: Workspace, reload_seconds: float = 2.0):
        paths, spec = ws.paths, ws.spec
        self.paths, self.spec, self.registry = paths, spec, ws.registry
        self.control = ControlReader(self.registry, spec.model_name)
        self.models = ModelCache(paths, self.registry)
        self.state = OnlineState(spec)
        self.state_loader = OnlineStateLoader(paths, spec, self.state)
        self.index = ScoreIndex(spec, _empty_scores(spec))
        self.batch_stats = BatchStats()
        self.reload_seconds = reload_seconds
        self.integrity: dict[str, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._reload_loop, name="reloader", daemon=True)

    def start(self) -> ScoringService:
        self.index = load_score_index(self.paths, self.spec)
        self.state_loader.refresh()
        aliases, _, _ = self.control.read()
        for version in aliases.values():  # warm: a flip must not wait for a model load
            self.models.get(version)
        if aliases.get("champion") and self.models.get(aliases["champion"])[0] is not None:
            self.models.mark_good(aliases["champion"])  # the fallback until something serves
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()

    def _reload_loop(self) -> None:
        last_verify = time.monotonic()
        while not self._stop.wait(self.reload_seconds):
            try:
                self.reload()
                if time.monotonic() - last_verify > 30:
                    self.integrity = self.models.verify_on_disk()
                    last_verify = time.monotonic()
            except Exception as exc:  # keep serving the current index
                self.integrity["reload"] = f"{type(exc).__name__}: {exc}"

    def reload(self) -> bool:
        """Swap in a new index if score files changed; feed new partitions to the state."""
        self.state_loader.refresh()
        if files_signature(score_files(self.paths)) == self.index.signature:
            return False
        self.index = load_score_index(self.paths, self.spec)  # one atomic reference swap
        return True

    def resolve(self, entity=None) -> Resolved:
        """Which version answers this request: ``previous`` while the kill switch is on; else
        the challenger for entities in its rollout arm; else the champion."""
        aliases, kill, state = self.control.read()
        role = "champion"
        if kill and aliases.get("previous"):
            role = "previous"
        elif entity is not None:
            share = rollout.acting_share(state, aliases.get("challenger"))
            if share and rollout.entity_in_challenger_arm(entity, share,
                                                          rollout.arm_salt(state, self.spec)):
                role = "challenger"
        version = aliases.get(role)
        if version is None:
            raise NoServableModel("no champion is registered; train and register a model")
        bundle, why = self.models.get(version)
        if bundle is not None:
            if role == "champion" or role == "previous":
                self.models.mark_good(version)
            return Resolved(version, role, kill, bundle)
        last = self.models.last_good
        fallback, _ = self.models.get(last) if last and last != version else (None, None)
        if fallback is None:
            raise NoServableModel(f"{version} cannot be served ({why}) and no earlier model "
                                  "was verified")
        return Resolved(last, "last_good", kill, fallback,
                        degraded=f"{version} ({role}) refused: {why}; serving last good {last}")

    def lookup(self, event_id) -> dict | None:
        index = self.index
        row = index.rows.get(event_id)
        r = self.resolve(index.arm_entity[row] if row is not None else None)
        hit = index.lookup(row, r.version) if row is not None else None
        return None if hit is None else self._answer(r, event_id, hit)

    def lookup_entity(self, key: str, value) -> dict | None:
        index = self.index
        row = index.latest_by_entity.get(key, {}).get(value)
        r = self.resolve(index.arm_entity[row] if row is not None else None)
        hit = index.lookup(row, r.version) if row is not None else None
        return None if hit is None else self._answer(r, index.ids[row], hit)

    @staticmethod
    def _answer(r: Resolved, event_id, hit: dict) -> dict:
        return {"event_id": event_id, "model_version": r.version, "role": r.role, **hit,
                "kill_switch": r.kill_switch, "degraded": r.degraded}

    def features_row(self, event: dict) -> tuple[np.ndarray, dict, list[str]]:
        feats = self.state.features(event)
        x = np.array([[feats[n] for n in self.spec.feature_names]], dtype="float64")
        return x, feats, self.state.unknown_entities(event)

    def health(self) -> dict:
        aliases, kill, state = self.control.read()
        r = self.resolve()
        return {"status": "degraded" if r.degraded or self.integrity else "ok",
                "model_version": r.version, "role": r.role, "kill_switch": kill,
                "aliases": aliases, "degraded": r.degraded,
                "rollout": {"challenger": aliases.get("challenger"),
                            "percent": rollout.acting_share(state, aliases.get("challenger"))},
                "integrity_problems": {**self.models.failures(), **self.integrity},
                "index": {"events": len(self.index), "versions": sorted(self.index.scores),
                          "loaded_at": self.index.loaded_at.isoformat()},
                "online_state_events": self.state.events_held,
                "compiled_evaluator": {v: b.get("compiled") is not None
                                       for v, (_, b) in self.models.loaded().items()},
                "predict_batches": {"batches": self.batch_stats.batches,
                                    "rows": self.batch_stats.rows,
                                    "largest": self.batch_stats.largest},
                "pid": os.getpid()}


def _empty_scores(spec: DatasetSpec) -> pd.DataFrame:
    df = pd.DataFrame({c: pd.Series(dtype="object")
                       for c in [spec.event_id, *spec.entity_keys, "model_version", "score",
                                 "decision", "source"]})
    df[spec.event_ts] = pd.Series(dtype="datetime64[us, UTC]")
    return df

