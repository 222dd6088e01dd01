"""Online/offline parity: replay a day of events through the realtime feature path and compare
with what the batch pipeline computed for the same events, feature by feature and score by
score. Any difference is training/serving skew."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

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
                  online_spec: DatasetSpec | None = None) -> ParityReport:
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

    Returns
    -------
    ParityReport

    Raises
    ------
    FileNotFoundError
        No ``raw_events`` or ``event_features`` partition for the day.
    """
    t0 = pd.Timestamp.now()
    online, batch = online_and_batch(paths, spec, day, online_spec)
    counts, examples = differences(online, batch, spec.feature_names, spec.event_id)
    report = ParityReport(day=f"{day:%Y-%m-%d}", events=len(online),
                          features_compared=len(online) * len(spec.feature_names),
                          feature_differences=counts, examples=examples,
                          missing_in_batch=int((~online[spec.event_id].isin(
                              batch[spec.event_id])).sum()))
    if models:
        _compare_scores(paths, spec, day, day + timedelta(days=1), online, models, report)
    report.seconds = float((pd.Timestamp.now() - t0).total_seconds())
    return report


def online_and_batch(paths: DataPaths, spec: DatasetSpec, day: datetime,
                     online_spec: DatasetSpec | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The day's features replayed through the realtime path, and as the batch built them.

    Parameters
    ----------
    paths : DataPaths
    spec : DatasetSpec
    day : datetime
        UTC day start.
    online_spec : DatasetSpec, optional
        Declarations the realtime path uses (default ``spec``).

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
    catalog = Catalog(paths.lake, spec.partition_grain)
    hist_files = catalog.table(RAW_EVENTS).files(lookback_start(spec, day), end)
    feat_files = catalog.table(EVENT_FEATURES).files(day, end)
    if not hist_files or not feat_files:
        raise FileNotFoundError(f"no raw_events/event_features partitions for {day:%Y-%m-%d}; "
                                "materialize them before checking parity")
    events_all = read_parquet_files(hist_files)
    today = events_all[(events_all[spec.event_ts] >= day) & (events_all[spec.event_ts] < end)]
    history = events_all[events_all[spec.event_ts] < day]
    label_files = catalog.table(RAW_LABELS).files(lookback_start(spec, day), end)
    labels = read_parquet_files(label_files) if label_files else None
    state = state_from_frames(online_spec or spec, history, labels)
    online = replay_online(state, today)
    return online, read_parquet_files(feat_files, [spec.event_id, *spec.feature_names])


def _compare_scores(paths: DataPaths, spec: DatasetSpec, day: datetime, end: datetime,
                    online: pd.DataFrame, models: dict[str, object], report: ParityReport) -> None:
    score_files = Catalog(paths.lake, spec.partition_grain).table(BATCH_SCORES).files(day, end)
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
