"""The serving read path in plain Python (the HTTP app is a thin shell around it).

- Precomputed scores are served from an in-memory index (a dict from event id to a row, one
  score array per model version), rebuilt in the background when new score files land and
  swapped in with one reference assignment, so a lookup never waits for a reload.
- Which version answers is decided per request from the control plane: the ``champion`` alias,
  or ``previous`` while the kill switch is on (a change token, and one query when it moved).
- Models are cached by version and loaded only through SHA-256 verification. A version whose
  artifact fails verification is refused; a model the control plane still designates (the
  ``previous`` rollback target) may keep answering and every response says so
  (``degraded``), never a switched-off champion: with the kill switch on and ``previous``
  unservable the answer is 503 ``no_servable_model`` (fail closed).
- Realtime requests share model calls: requests that arrive together are scored with one
  ``predict_proba`` per model, so concurrency costs one model call per batch, not per request.

The score index lives in ``score_index.py``, the model cache and grouped model calls in
``models.py``; this module holds the per-request control-plane read and the service.
"""

from __future__ import annotations

import gc
import json
import os
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np

from ml_assets.lib.core.catalog import (
    MICROBATCH_EVENTS,
    RAW_EVENTS,
    RAW_LABELS,
    SCORE_TABLES,
    Catalog,
)
from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.file_times import settled
from ml_assets.lib.core.lake import day_floor, read_parquet_files
from ml_assets.lib.core.lake_table import Grain
from ml_assets.lib.core.paths import DataPaths
from ml_assets.lib.core.registry import ControlPlaneUnavailable, Registry
from ml_assets.lib.core.workspace import Workspace
from ml_assets.lib.features.online import OnlineState
from ml_assets.lib.release import arms, rollout
from ml_assets.lib.release.rollback import KILL_SWITCH, drill_flip
from ml_assets.lib.serving.models import BatchStats, ModelCache
from ml_assets.lib.serving.score_index import (
    empty_score_index,
    files_signature,
    load_score_index,
    score_files,
)


class NoServableModel(RuntimeError):
    """Neither the resolved version nor any earlier verified model can be served."""


# -- control plane, read on every request -----------------------------------------------------
class ControlReader:
    """Aliases, kill switch and rollout state of one model, read on every request.

    Every ``read`` first takes the backend's change token - on SQLite a stat of the database
    and its write-ahead log (~2 us, every commit writes the log), on PostgreSQL the change
    counter every write transaction bumps (one primary-key read). While it equals the token of
    the last query, the last answer stands; otherwise (or while an mtime is under a second old)
    it runs the registry's one-query snapshot on a per-thread read-only connection. A flip
    takes effect on the next request either way. The rollout state's JSON is parsed only when
    its text changed.

    Parameters
    ----------
    registry : Registry
        The control plane.
    model_name : str
        The served model.

    Raises
    ------
    NoServableModel
        From ``read`` when the control plane's database cannot be reached (fail closed: 503).
    """

    def __init__(self, registry: Registry, model_name: str):
        self._snapshot = registry.snapshot_reader(model_name, (KILL_SWITCH, rollout.STATE_KEY))
        self._backend = registry.backend
        self._token: tuple | None = None
        self._last: tuple[dict[str, str], bool, dict | None] | None = None
        self._rollout_raw: str | None = None
        self._rollout: dict | None = None

    def read(self) -> tuple[dict[str, str], bool, dict | None]:
        """(aliases, kill switch on?, rollout state or None)."""
        try:
            token = self._backend.change_token()  # before the query: a later commit shows next
            if token is not None and token == self._token:
                return self._last
            aliases, settings = self._snapshot.read()
        except ControlPlaneUnavailable as exc:
            raise NoServableModel(f"{exc}; the kill switch cannot be read, refusing to "
                                  "serve") from exc
        raw = settings.get(rollout.STATE_KEY)
        if raw != self._rollout_raw:  # parse the JSON only when it changed
            self._rollout_raw, self._rollout = raw, json.loads(raw) if raw else None
        self._last = aliases, settings.get(KILL_SWITCH, "off") == "on", self._rollout
        self._token = token
        return self._last


@dataclass(frozen=True)
class Resolved:
    """The model answering one request: version, its role (``champion``, ``challenger``,
    ``previous`` or ``last_good``), the kill switch, the bundle and why it is degraded."""

    version: str
    role: str
    kill_switch: bool
    bundle: dict
    degraded: str | None = None


# -- online state from the lake ---------------------------------------------------------------
class OnlineStateLoader:
    """Feeds the online state the latest look-back of raw events and labels, and then each
    newly landed partition (the state skips event ids it already holds)."""

    def __init__(self, paths: DataPaths, spec: DatasetSpec, state: OnlineState):
        self.paths, self.spec, self.state = paths, spec, state
        self._loaded: set[Path] = set()

    def refresh(self) -> int:
        """Read the partitions not fed yet (raw events within the look-back, micro-batch
        events, labels); return how many new events the state took."""
        catalog = Catalog(self.paths.lake, self.spec.partition_grain)
        events_table, labels_table = catalog.table(RAW_EVENTS), catalog.table(RAW_LABELS)
        raw, labels = events_table.files(), labels_table.files()
        if raw:  # only the look-back before the newest partition matters
            newest = events_table.start(raw[-1].stem)
            cutoff = day_floor(newest - self.spec.lookback - timedelta(days=1))
            raw = [p for p in raw if events_table.start(p.stem) >= cutoff]
            labels = [p for p in labels if labels_table.start(p.stem) >= cutoff]
        events = raw + catalog.table(MICROBATCH_EVENTS).files()
        new_ev = [p for p in events if p not in self._loaded]
        new_lb = [p for p in labels if p not in self._loaded]
        added = self.state.add_events(read_parquet_files(new_ev)) if new_ev else 0
        if new_lb:
            self.state.add_labels(read_parquet_files(new_lb))
        self._loaded.update(new_ev + new_lb)
        return added


# -- change tokens of the lake's listings ------------------------------------------------------
#: Seconds between full checks even while no watched directory changed: a file rewritten in
#: place (not through an atomic rename) leaves its directory's mtime alone.
FULL_RELOAD_SECONDS = 30.0
#: The tables the reloader reads: the online state's inputs and the score index's.
WATCHED_TABLES = (RAW_EVENTS, RAW_LABELS, MICROBATCH_EVENTS, *SCORE_TABLES)


def listing_token(catalog: Catalog, tables: tuple[str, ...] = WATCHED_TABLES) -> tuple | None:
    """A cheap change token of the tables' file listings: ``(directory, mtime_ns)`` of each
    table directory, and of every directory below it for tables without a grain (their files
    may be nested); ``mtime_ns`` is None for a directory that does not exist.

    Adding, removing or atomically replacing a file (temp file + rename) changes its
    directory's mtime, so an unchanged token means an unchanged listing. Listing the lake
    instead (thousands of paths sorted and parsed) costs ~60 ms of CPU, holding the GIL the
    request loop needs: every 2 s that delayed a few percent of requests by milliseconds.

    Parameters
    ----------
    catalog : Catalog
        The lake.
    tables : tuple of str
        Table names.

    Returns
    -------
    tuple or None
        None when a directory changed within the last second (``settled``): a file added
        later in the same clock tick would go unseen. Callers then list the lake.
    """
    now, out = time.time_ns(), []
    stack = [(t.dir, t.grain is Grain.NONE) for t in map(catalog.table, tables)]
    while stack:
        d, nested = stack.pop()
        try:
            mtime = d.stat().st_mtime_ns
            if nested:
                with os.scandir(d) as entries:
                    stack += [(Path(e.path), True) for e in entries if e.is_dir()]
        except FileNotFoundError:
            mtime = None
        if mtime is not None and not settled(mtime, now):
            return None
        out.append((d, mtime))
    return tuple(out)


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
        self.index = empty_score_index(spec)
        self.batch_stats = BatchStats()
        self.reload_seconds = reload_seconds
        self.integrity: dict[str, str] = {}
        self._catalog = Catalog(paths.lake, spec.partition_grain)
        self._listed: tuple | None = None  # listing_token at the last full check
        self._full_due = 0.0  # time.monotonic() of the next full check
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._reload_loop, name="reloader", daemon=True)

    def start(self) -> ScoringService:
        """Load the index and online state, warm the aliased models, start the reloader."""
        self._listed = listing_token(self._catalog)  # before listing: later changes show
        self._full_due = time.monotonic() + FULL_RELOAD_SECONDS
        self.index = load_score_index(self.paths, self.spec)
        self.state_loader.refresh()
        aliases, kill, _ = self.control.read()
        for version in aliases.values():  # warm: a flip must not wait for a model load
            self.models.get(version)
        # The fallback until something serves, only if the control plane still designates it.
        for role in ("previous",) if kill else ("champion", "previous"):
            if aliases.get(role) and self.models.get(aliases[role])[0] is not None:
                self.models.mark_good(aliases[role])
                break
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop the reloader thread after its current wait (it is a daemon thread)."""
        self._stop.set()

    def _reload_loop(self) -> None:
        last_verify = time.monotonic()
        while not self._stop.wait(self.reload_seconds):
            try:
                if self.reload():
                    gc.freeze()  # the new index joins the objects the collector skips (app.py)
                if time.monotonic() - last_verify > 30:
                    self.integrity = self.models.verify_on_disk()
                    last_verify = time.monotonic()
            except Exception as exc:  # keep serving the current index
                self.integrity["reload"] = f"{type(exc).__name__}: {exc}"

    def reload(self) -> bool:
        """Swap in a new index if score files changed; feed new partitions to the state.

        The lake is listed only when :func:`listing_token` changed (or could not be trusted)
        since the last full check, or ``FULL_RELOAD_SECONDS`` passed.

        Returns
        -------
        bool
            True when a new index was swapped in.
        """
        token = listing_token(self._catalog)  # taken before listing: later changes show
        if token is not None and token == self._listed and time.monotonic() < self._full_due:
            return False
        self.state_loader.refresh()
        changed = files_signature(score_files(self.paths)) != self.index.signature
        if changed:
            self.index = load_score_index(self.paths, self.spec)  # one atomic reference swap
        self._listed, self._full_due = token, time.monotonic() + FULL_RELOAD_SECONDS
        return changed

    def resolve(self, entity=None) -> Resolved:
        """Which version answers this request: ``previous`` while the kill switch is on; else
        the challenger for entities in its rollout arm; else the champion.

        Fails closed: only a version the control plane designates right now may answer. While
        the kill switch is on that is ``previous`` alone (the switched-off champion never
        answers, not even as a fallback); a challenger that cannot load falls back to the
        champion; a champion that cannot load falls back to ``previous`` (the designated
        rollback target) only if it was verified. Anything else raises ``NoServableModel``
        (HTTP 503 ``no_servable_model``) so callers use their own fallback.

        Parameters
        ----------
        entity : optional
            The value of the first entity key (the rollout arm key); None: the champion path.

        Raises
        ------
        NoServableModel
            As above.
        """
        aliases, kill, state = self.control.read()
        if kill:
            role = "previous"
            if not aliases.get("previous"):
                raise NoServableModel("the kill switch is on and no previous model is set; "
                                      "the switched-off champion does not answer")
        else:
            role = "champion"
            if entity is not None:
                share = arms.acting_share(state, aliases.get("challenger"))
                if share and arms.entity_in_challenger_arm(entity, share,
                                                           arms.arm_salt(state, self.spec)):
                    role = "challenger"
        version = aliases.get(role)
        if version is None:
            raise NoServableModel("no champion is registered; train and register a model")
        bundle, why = self.models.get(version)
        if bundle is not None:
            if role in ("champion", "previous"):
                self.models.mark_good(version)
            return Resolved(version, role, kill, bundle)
        if kill:
            raise NoServableModel(f"the kill switch is on and {version} (previous) cannot be "
                                  f"served ({why}); the switched-off champion does not answer")
        if role == "challenger":
            champion, _ = self.models.get(aliases["champion"])
            if champion is not None:
                return Resolved(aliases["champion"], "champion", kill, champion,
                                degraded=f"{version} (challenger) refused: {why}")
        last = self.models.last_good
        # The fallback must still be a model the control plane designates: the rollback target.
        allowed = last is not None and last != version and last == aliases.get("previous")
        fallback, _ = self.models.get(last) if allowed else (None, None)
        if fallback is None:
            raise NoServableModel(f"{version} ({role}) cannot be served ({why}) and no "
                                  "designated rollback model was verified")
        return Resolved(last, "last_good", kill, fallback,
                        degraded=f"{version} ({role}) refused: {why}; serving last good {last}")

    def lookup(self, event_id) -> dict | None:
        """The precomputed score of one event from the version that answers now.

        Parameters
        ----------
        event_id : int or str
            In the spec's ``id_type``.

        Returns
        -------
        dict or None
            ``event_id``, ``model_version``, ``role``, ``score`` (0-1), ``decision``,
            ``event_ts`` (UTC), ``source``, ``kill_switch``, ``degraded``; None if not scored
            by that version.

        Raises
        ------
        NoServableModel
            See ``resolve``.
        """
        index = self.index
        row = index.row(event_id)
        r = self.resolve(index.arm(row) if row is not None else None)
        hit = index.lookup(row, r.version) if row is not None else None
        return None if hit is None else self._answer(r, event_id, hit)

    def lookup_entity(self, key: str, value) -> dict | None:
        """As ``lookup``, for the latest scored event (by event time) of one entity.

        Parameters
        ----------
        key : str
            An entity key of the spec.
        value : int or str
            The entity, in the spec's ``id_type``.
        """
        index = self.index
        row = index.latest_row(key, value)
        r = self.resolve(index.arm(row) if row is not None else None)
        hit = index.lookup(row, r.version) if row is not None else None
        return None if hit is None else self._answer(r, index.event_id(row), hit)

    @staticmethod
    def _answer(r: Resolved, event_id, hit: dict) -> dict:
        return {"event_id": event_id, "model_version": r.version, "role": r.role, **hit,
                "kill_switch": r.kill_switch, "degraded": r.degraded}

    def features_row(self, event: dict) -> tuple[np.ndarray, dict, list[str]]:
        """Online features of one realtime event.

        Parameters
        ----------
        event : dict
            A validated request event (spec event columns).

        Returns
        -------
        x : ndarray of float64, shape (1, n_features)
            In ``spec.feature_names`` order.
        feats : dict
            ``{feature: value}``.
        unknown : list of str
            Entity keys the online state has never seen.
        """
        feats = self.state.features(event)
        x = np.array([[feats[n] for n in self.spec.feature_names]], dtype="float64")
        return x, feats, self.state.unknown_entities(event)

    def health(self) -> dict:
        """Status for ``/health``: ``"degraded"`` when a model was refused, an artifact changed
        on disk, the reloader failed or a drill's flip expired, else ``"ok"``.

        Raises
        ------
        NoServableModel
            No model can answer (see ``resolve``).
        """
        aliases, kill, state = self.control.read()
        r = self.resolve()
        flip = drill_flip(self.registry)  # a dead drill's flip must not look like "ok"
        stale_flip = flip is not None and flip["expired"]
        return {"status": "degraded" if r.degraded or self.integrity or stale_flip else "ok",
                "model_version": r.version, "role": r.role, "kill_switch": kill,
                "drill_flip": flip,
                "aliases": aliases, "degraded": r.degraded,
                "rollout": {"challenger": aliases.get("challenger"),
                            "percent": arms.acting_share(state, aliases.get("challenger"))},
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
