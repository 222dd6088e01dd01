"""Online/offline parity: replay a day of events through the realtime feature path and compare
with what the batch pipeline computed for the same events, feature by feature and score by
score. Any difference is training/serving skew."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

from ml_assets.lib.core.catalog import BATCH_SCORES, EVENT_FEATURES, RAW_EVENTS, RAW_LABELS, Catalog
from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.lake import read_parquet_files
from ml_assets.lib.core.paths import DataPaths
from ml_assets.lib.features.online import OnlineState, lookback_start, state_from_frames

# Two doubles "agree" within this relative/absolute tolerance (DuckDB and numpy may sum in a
# different order); a null on one side and a value on the other is always a difference.
RTOL = 1e-9
ATOL = 1e-9


@dataclass
class ParityReport:
    """Online-vs-batch parity of one day: differing values per feature (count of events) and per
    model version (scores beyond ``ATOL``), up to three examples per feature, events missing from
    the batch table and the run time in seconds.
    """
    day: str
    events: int
    features_compared: int
    feature_differences: dict[str, int]
    examples: dict[str, list[dict]] = field(default_factory=dict)
    score_differences: dict[str, int] = field(default_factory=dict)
    max_abs_score_difference: float = 0.0
    missing_in_batch: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Whether events were compared and nothing differed or was missing."""
        return (self.events > 0 and not any(self.feature_differences.values())
                and not any(self.score_differences.values()) and self.missing_in_batch == 0)

    def as_dict(self) -> dict:
        """The report as a dict, with ``ok``."""
        return {**asdict(self), "ok": self.ok}


def replay_online(state: OnlineState, events: pd.DataFrame) -> pd.DataFrame:
    """Each event in time order: features from the state as of its time, then the event joins
    the state (exactly what the serving app does per request).

    Parameters
    ----------
    state : OnlineState
        Loaded with the history before the first event; it is mutated.
    events : DataFrame, one row per raw event

    Returns
    -------
    DataFrame, one row per event
        The event id and one column per feature, in time order.
    """
    spec = state.spec
    ordered = events.sort_values([spec.event_ts, spec.event_id], kind="stable")
    rows = []
    for event in ordered.to_dict("records"):
        rows.append({spec.event_id: event[spec.event_id], **state.features(event)})
        state.add_event(event)
    return pd.DataFrame(rows, columns=[spec.event_id, *spec.feature_names])


def differences(online: pd.DataFrame, batch: pd.DataFrame, names: list[str], key: str,
                ) -> tuple[dict[str, int], dict[str, list[dict]]]:
    """Values that differ between two feature tables, per feature.

    Equal means both null or ``numpy.isclose`` with ``RTOL``/``ATOL``.

    Parameters
    ----------
    online, batch : DataFrame, one row per event
    names : list of str
        Feature columns compared.
    key : str
        Event id column joining the two (one to one).

    Returns
    -------
    counts : dict of str to int
        Differing events per feature.
    examples : dict of str to list of dict
        Up to three ``{"event_id", "online", "batch"}`` per differing feature.
    """
    both = online.merge(batch, on=key, suffixes=("_online", "_batch"), validate="one_to_one")
    counts, examples = {}, {}
    for name in names:
        a = both[f"{name}_online"].to_numpy(dtype="float64")
        b = both[f"{name}_batch"].to_numpy(dtype="float64")
        same = (np.isnan(a) & np.isnan(b)) | np.isclose(a, b, rtol=RTOL, atol=ATOL)
        counts[name] = int((~same).sum())
        if counts[name]:
            bad = both.loc[~same, [key, f"{name}_online", f"{name}_batch"]].head(3)
            examples[name] = [{"event_id": str(r[0]), "online": r[1], "batch": r[2]}
                              for r in bad.itertuples(index=False)]
    return counts, examples


def replay_parity(paths: DataPaths, spec: DatasetSpec, day: datetime,
                  models: dict[str, object] | None = None,
                  online_spec: DatasetSpec | None = None,
                  inputs: dict[str, list[Path]] | None = None) -> ParityReport:
    """Compare realtime and batch features (and scores of ``models``) for the events of one day.

    Parameters
    ----------
    paths : DataPaths
    spec : DatasetSpec
    day : datetime
        UTC day start; the window is ``[day, day + 1 day)``.
    models : dict of str to fitted model, optional
        Version to model; its online scores are compared with ``batch_scores``.
    online_spec : DatasetSpec, optional
        Lets a test serve skewed declarations; by default both paths use ``spec``.
    inputs : dict of str to list of Path, optional
        The files to read (``replay_inputs``), when the caller has listed them already (to
        fingerprint them); listed here otherwise.

    Returns
    -------
    ParityReport

    Raises
    ------
    FileNotFoundError
        No ``raw_events`` or ``event_features`` partition for the day.
    """
    t0 = pd.Timestamp.now()
    inputs = inputs if inputs is not None else replay_inputs(paths, spec, day)
    online, batch = online_and_batch(paths, spec, day, online_spec, inputs)
    counts, examples = differences(online, batch, spec.feature_names, spec.event_id)
    report = ParityReport(day=f"{day:%Y-%m-%d}", events=len(online),
                          features_compared=len(online) * len(spec.feature_names),
                          feature_differences=counts, examples=examples,
                          missing_in_batch=int((~online[spec.event_id].isin(
                              batch[spec.event_id])).sum()))
    if models:
        _compare_scores(spec, inputs[BATCH_SCORES], online, models, report)
    report.seconds = float((pd.Timestamp.now() - t0).total_seconds())
    return report


def online_and_batch(paths: DataPaths, spec: DatasetSpec, day: datetime,
                     online_spec: DatasetSpec | None = None,
                     inputs: dict[str, list[Path]] | None = None,
                     ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The day's features replayed through the realtime path, and as the batch built them.

    Parameters
    ----------
    paths : DataPaths
    spec : DatasetSpec
    day : datetime
        UTC day start.
    online_spec : DatasetSpec, optional
        Declarations the realtime path uses (default ``spec``).
    inputs : dict of str to list of Path, optional
        The files to read (``replay_inputs``); listed here if not given.

    Returns
    -------
    online, batch : DataFrame, one row per event
        Event id and one column per feature.

    Raises
    ------
    FileNotFoundError
        No ``raw_events`` or ``event_features`` partition for the day.
    """
    end = day + timedelta(days=1)
    inputs = inputs if inputs is not None else replay_inputs(paths, spec, day)
    hist_files, feat_files = inputs[RAW_EVENTS], inputs[EVENT_FEATURES]
    if not hist_files or not feat_files:
        raise FileNotFoundError(f"no raw_events/event_features partitions for {day:%Y-%m-%d}; "
                                "materialize them before checking parity")
    events_all = read_parquet_files(hist_files)
    today = events_all[(events_all[spec.event_ts] >= day) & (events_all[spec.event_ts] < end)]
    history = events_all[events_all[spec.event_ts] < day]
    labels = read_parquet_files(inputs[RAW_LABELS]) if inputs[RAW_LABELS] else None
    state = state_from_frames(online_spec or spec, history, labels)
    online = replay_online(state, today)
    return online, read_parquet_files(feat_files, [spec.event_id, *spec.feature_names])


def _compare_scores(spec: DatasetSpec, score_files: list[Path], online: pd.DataFrame,
                    models: dict[str, object], report: ParityReport) -> None:
    if not score_files:
        return
    scores = read_parquet_files(score_files, [spec.event_id, "model_version", "score"])
    worst = 0.0
    for version, model in models.items():
        batch = scores[scores["model_version"] == version]
        if batch.empty:
            continue
        x = online[spec.feature_names].to_numpy(dtype="float64")
        mine = pd.DataFrame({spec.event_id: online[spec.event_id],
                             "online": model.predict_proba(x)[:, 1]})
        both = mine.merge(batch, on=spec.event_id, validate="one_to_one")
        gap = np.abs(both["online"].to_numpy() - both["score"].to_numpy())
        report.score_differences[version] = int((gap > ATOL).sum())
        worst = max(worst, float(gap.max()) if len(gap) else 0.0)
    report.max_abs_score_difference = worst


def replay_inputs(paths: DataPaths, spec: DatasetSpec, day: datetime) -> dict[str, list[Path]]:
    """The lake files a replay of ``day`` reads, per table: the events and labels of the
    look-back (``lookback_start``) through the day, and the day's features and scores.

    Returns
    -------
    dict of str to list of Path
        ``raw_events``, ``raw_labels``, ``event_features``, ``batch_scores``; a list may be
        empty.
    """
    catalog = Catalog(paths.lake, spec.partition_grain)
    end, back = day + timedelta(days=1), lookback_start(spec, day)
    return {RAW_EVENTS: catalog.table(RAW_EVENTS).files(back, end),
            RAW_LABELS: catalog.table(RAW_LABELS).files(back, end),
            EVENT_FEATURES: catalog.table(EVENT_FEATURES).files(day, end),
            BATCH_SCORES: catalog.table(BATCH_SCORES).files(day, end)}


def replay_fingerprint(inputs: dict[str, list[Path]], spec: DatasetSpec, day: datetime,
                       model_sha256: dict[str, str]) -> str:
    """SHA-256 (hex) of everything a parity replay of ``day`` depends on: the day, the
    declarations, the models, the code of both feature paths and each input file's name, size,
    modification time and inode. Two replays with one fingerprint give the same report, so a
    verdict can be reused while it holds (an hourly schedule asks about the same day 24 times).

    A lake write replaces a file (a new inode and modification time), so a rewritten partition
    changes the fingerprint. This is make's rule, not a content hash: it does not defend
    against a writer who restores the old modification time on purpose (the lake's integrity
    checks are about that).

    Parameters
    ----------
    inputs : dict of str to list of Path
        The files the replay reads (``replay_inputs``).
    spec : DatasetSpec
    day : datetime
        UTC day start.
    model_sha256 : dict of str to str
        Live version to the SHA-256 of its artifact.

    Returns
    -------
    str
        64 hex characters.
    """
    files = []
    for table, found in inputs.items():
        for f in found:
            st = f.stat()
            files.append([table, f.name, st.st_size, st.st_mtime_ns, st.st_ino])
    payload = json.dumps({"day": f"{day:%Y-%m-%d}", "spec": repr(spec), "code": _code_sha256(),
                          "models": sorted(model_sha256.items()), "files": files})
    return hashlib.sha256(payload.encode()).hexdigest()


@cache
def _code_sha256() -> str:
    """SHA-256 of the package's ``lib`` sources: a deploy that changes either feature path (or
    anything they call) replays again."""
    lib = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for source in sorted(lib.rglob("*.py")):
        digest.update(source.relative_to(lib).as_posix().encode() + b"\0" + source.read_bytes())
    return digest.hexdigest()
