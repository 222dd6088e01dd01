"""Training set as of a cutoff, seeded training, and held-out / frozen-reference evaluation."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score
from threadpoolctl import threadpool_limits

from ml_assets.lib.core.catalog import EVENT_FEATURES, RAW_LABELS, Catalog
from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.lake import connect, parquet_relation
from ml_assets.lib.core.paths import DataPaths
from ml_assets.lib.features.build import MissingUpstreamError, files_available_sql
from ml_assets.lib.training.splits import assign_splits


@dataclass(frozen=True)
class TrainingWindow:
    """The events ``start <= event_ts < end`` (UTC) and the labels known before ``label_cutoff``
    (``label_ts`` and ``available_at`` both before it). With a held-out period
    ``[test_start, test_end)`` its events are read too and form the test split
    (``training_splits``); the window then gives train and validation only."""

    start: datetime  # events with start <= event_ts < end
    end: datetime
    label_cutoff: datetime  # only labels with label_ts and available_at < cutoff are known
    test_start: datetime | None = None
    test_end: datetime | None = None

    @property
    def held_out(self) -> tuple[datetime, datetime] | None:
        """``(test_start, test_end)``, or None when the test split is hashed from the window."""
        return (self.test_start, self.test_end) if self.test_start is not None else None

    def event_ranges(self) -> list[tuple[datetime, datetime]]:
        """The ``[start, end)`` ranges of events read: the window, then the held-out period."""
        return [(self.start, self.end), *([self.held_out] if self.held_out else [])]

    def as_dict(self) -> dict:
        """The bounds as ISO-8601 strings; the held-out ones only when set."""
        return {k: v.isoformat() for k, v in vars(self).items() if v is not None}

    @classmethod
    def from_dict(cls, d: dict) -> TrainingWindow:
        """The inverse of ``as_dict``."""
        return cls(**{k: datetime.fromisoformat(v) for k, v in d.items()})


class WindowError(ValueError):
    """A training window setting is invalid or cannot be defaulted; the message starts with
    the setting's name (``start``, ``end``, ``label_cutoff``, ``test_start``, ...)."""


def parse_time(name: str, value: str | None) -> datetime | None:
    """An ISO-8601 time that must carry its UTC offset; None stays None.

    Raises
    ------
    WindowError
        Not ISO-8601, or without an offset (naming ``name``).
    """
    if value is None:
        return None
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        raise WindowError(f"{name} {value!r} is not an ISO-8601 time") from None
    if t.tzinfo is None:
        raise WindowError(f"{name} {value!r} must carry a timezone, e.g. '+00:00'")
    return t


MIN_WARM_SHARE = 0.5  # of the configured window that must be warm for the warm start to apply


def training_window(spec: DatasetSpec, as_of: datetime, days: int | None = None) -> TrainingWindow:
    """The window a model trained as of ``as_of`` learns from: the ``days`` before it (default
    ``spec.model.training_window_days``), labels known at ``as_of``, starting no earlier than
    the data and - when at least ``MIN_WARM_SHARE`` of the window lies past it - no earlier
    than ``spec.warm_start``, so label features still filling with late labels are not learnt
    (nor profiled) as normal.

    Parameters
    ----------
    spec : DatasetSpec
    as_of : datetime
        Window end and label cutoff, timezone-aware.
    days : int, optional
        Window length in days.

    Returns
    -------
    TrainingWindow
        Shorter than ``days`` when the warm-up cuts it; the model card records whether the
        window is warm (``lib/training/candidate.py``).
    """
    length = timedelta(days=days or spec.model.training_window_days)
    start = max(as_of - length, spec.start_utc)
    # A few warm days teach less than a full cold window (a day or two may hold no positive):
    # the warm start applies once it leaves at least MIN_WARM_SHARE of the window.
    if start < spec.warm_start <= as_of - MIN_WARM_SHARE * length:
        start = spec.warm_start
    return TrainingWindow(start=start, end=as_of, label_cutoff=as_of)


def explicit_window(spec: DatasetSpec, label_cutoff: datetime, start: datetime | None = None,
                    end: datetime | None = None, days: int | None = None,
                    test_start: datetime | None = None, test_end: datetime | None = None,
                    ) -> TrainingWindow:
    """A training window from explicit bounds (all timezone-aware), validated.

    Parameters
    ----------
    spec : DatasetSpec
    label_cutoff : datetime
        Labels dated and available before it are known - for the window and the held-out
        period alike.
    start : datetime, optional
        Default: as ``training_window(spec, end, days)`` (``days`` before ``end``, not before
        the data nor, once the history reaches past it, the warm-up). An explicit start is
        kept as asked; the card says when it is before the warm-up ends.
    end : datetime, optional
        Exclusive; default ``label_cutoff``.
    days : int, optional
        Window length when ``start`` is not given.
    test_start, test_end : datetime, optional
        A held-out period ``[test_start, test_end)`` whose rows are the test split.

    Returns
    -------
    TrainingWindow

    Raises
    ------
    WindowError
        start given with days; start not before end; end after label_cutoff; a bound before
        the data starts; only one of test_start/test_end; an empty held-out period, one
        ending after label_cutoff (its labels would not be known) or overlapping the window.
    """
    end = end or label_cutoff
    if start is not None and days is not None:
        raise WindowError("start: give start or window_days, not both")
    start = start or training_window(spec, end, days).start
    if end > label_cutoff:
        raise WindowError(f"end {end.isoformat()} is after label_cutoff "
                          f"{label_cutoff.isoformat()}: the window's labels would not be known")
    if not start < end:
        raise WindowError(f"start {start.isoformat()} must be before end {end.isoformat()}")
    if start < spec.start_utc:
        raise WindowError(f"start {start.isoformat()} is before the data starts "
                          f"({spec.start_utc.isoformat()})")
    if (test_start is None) != (test_end is None):
        raise WindowError("test_start and test_end: give both (the held-out period) or neither")
    if test_start is not None:
        if not test_start < test_end:
            raise WindowError(f"test_start {test_start.isoformat()} must be before test_end "
                              f"{test_end.isoformat()}")
        if test_start < spec.start_utc:
            raise WindowError(f"test_start {test_start.isoformat()} is before the data starts "
                              f"({spec.start_utc.isoformat()})")
        if test_end > label_cutoff:
            raise WindowError(f"test_end {test_end.isoformat()} is after label_cutoff "
                              f"{label_cutoff.isoformat()}: the held-out labels would not be known")
        if test_start < end and start < test_end:
            raise WindowError(f"test_start..test_end {test_start.isoformat()}..{test_end.isoformat()}"
                              f" overlaps the training window {start.isoformat()}..{end.isoformat()}")
    return TrainingWindow(start, end, label_cutoff, test_start, test_end)


def build_training_set(paths: DataPaths, spec: DatasetSpec, window: TrainingWindow) -> pd.DataFrame:
    """Feature rows in the window joined to labels known at the cutoff. Unlabeled rows are
    excluded (never counted as negatives). Sorted by event id, so the SHA is stable.

    Parameters
    ----------
    paths : DataPaths
        Data root holding the lake.
    spec : DatasetSpec
        Column names (event id, timestamps, label).
    window : TrainingWindow
        Event window (and held-out period, if any) and label cutoff, UTC.

    Returns
    -------
    DataFrame
        One row per labelled event of the window or held-out period: the ``event_features``
        columns plus the label (int 0/1) and its timestamp.

    Raises
    ------
    MissingUpstreamError
        An ``event_features`` partition of the window or held-out period is missing, or no
        ``raw_labels`` partition precedes the cutoff.
    """
    catalog = Catalog(paths.lake, spec.partition_grain)
    features = catalog.table(EVENT_FEATURES)
    ranges = window.event_ranges()
    feat_files = []
    for lo, hi in ranges:
        files, missing = features.coverage(lo, hi)
        if missing:
            raise MissingUpstreamError(
                f"event_features lacks {len(missing)} partition(s) of the training window or "
                f"held-out period (first: {features.key(missing[0])}); materialize "
                "event_features for them.")
        feat_files += files
    # a label is dated at or after its event: label files from the earliest event read on
    label_files = catalog.table(RAW_LABELS).files(min(lo for lo, _ in ranges), window.label_cutoff)
    if not label_files:
        raise MissingUpstreamError("no raw_labels partitions before the label cutoff "
                                   f"{window.label_cutoff:%Y-%m-%d}; materialize raw_labels first.")
    eid = spec.event_id
    in_ranges = " OR ".join(f"(f.{spec.event_ts} >= $start{i} AND f.{spec.event_ts} < $end{i})"
                            for i in range(len(ranges)))
    bounds = {f"{k}{i}": t for i, (lo, hi) in enumerate(ranges) for k, t in (("start", lo), ("end", hi))}
    con = connect()
    # known at the cutoff = dated and available before it (the features' availability rule)
    available = files_available_sql(spec, label_files, spec.label_ts)
    df = con.execute(
        f"SELECT f.*, CAST(l.{spec.label} AS INTEGER) AS {spec.label}, l.{spec.label_ts} "
        f"FROM {parquet_relation(feat_files)} f "
        f"JOIN (SELECT {eid}, {spec.label}, {spec.label_ts} FROM {parquet_relation(label_files)} "
        f"      WHERE {spec.label_ts} < $cutoff AND {available} < $cutoff) l USING ({eid}) "
        f"WHERE {in_ranges} ORDER BY f.{eid}",
        {"cutoff": window.label_cutoff, **bounds},
    ).df()
    return df


def seed_everything(seed: int) -> np.random.Generator:
    """One seed drives every RNG we touch (python, numpy global and our own generator).

    Parameters
    ----------
    seed : int
        Seed; numpy's global RNG gets it modulo 2**32.

    Returns
    -------
    numpy.random.Generator
        A generator seeded with ``seed``.
    """
    random.seed(seed)
    np.random.seed(seed % (2**32))
    return np.random.default_rng(seed)


def fit_model(spec: DatasetSpec, train: pd.DataFrame, seed: int, threads: int = 1):
    """Fit a ``HistGradientBoostingClassifier`` (no early stopping) with the spec's settings.

    Parameters
    ----------
    spec : DatasetSpec
        Feature names, categorical mask, label and hyperparameters (``spec.model``).
    train : DataFrame
        One row per training event, with the features and the label.
    seed : int
        Seeds every RNG and the model's ``random_state``.
    threads : int
        OpenMP threads.

    Returns
    -------
    HistGradientBoostingClassifier
        The fitted model.

    Raises
    ------
    ValueError
        A feature is missing in every training row, naming it: nothing can be learnt from it,
        and scikit-learn's binning fails on such a column with a numpy error that names nothing.
    """
    empty = train[spec.feature_names].isna().all().to_numpy()
    if len(train) and empty.any():
        names = [n for n, e in zip(spec.feature_names, empty, strict=True) if e]
        raise ValueError(f"feature(s) {names} are missing in all {len(train):,} training rows; "
                         "widen the training window or fix the data that feeds them")
    cfg = spec.model
    seed_everything(seed)
    model = HistGradientBoostingClassifier(
        max_iter=cfg.max_iter, learning_rate=cfg.learning_rate, max_leaf_nodes=cfg.max_leaf_nodes,
        l2_regularization=cfg.l2_regularization, early_stopping=False,
        categorical_features=np.array(spec.categorical_feature_mask), random_state=seed,
    )
    with threadpool_limits(limits=threads, user_api="openmp"):
        model.fit(train[spec.feature_names].to_numpy(dtype="float64"),
                  train[spec.label].to_numpy())
    return model


def predict(model, spec: DatasetSpec, features: pd.DataFrame, threads: int = 1) -> np.ndarray:
    """Positive-class probabilities.

    Parameters
    ----------
    model : classifier with ``predict_proba``
        The fitted model.
    spec : DatasetSpec
        Gives the feature columns, in order.
    features : DataFrame, shape (n_rows, >= n_features)
        Rows to score.
    threads : int
        OpenMP threads.

    Returns
    -------
    ndarray of float, shape (n_rows,)
        Scores in [0, 1]; empty for an empty frame.
    """
    if features.empty:
        return np.empty(0)
    with threadpool_limits(limits=threads, user_api="openmp"):
        return model.predict_proba(features[spec.feature_names].to_numpy(dtype="float64"))[:, 1]


def evaluate(y: np.ndarray, scores: np.ndarray, threshold: float) -> dict:
    """Metrics as plain floats; AUC-type metrics are null when only one class is present.

    Parameters
    ----------
    y : array-like of int, shape (n_rows,)
        Labels, 0 or 1.
    scores : ndarray of float, shape (n_rows,)
        Predicted probabilities.
    threshold : float
        Decision threshold; ``scores >= threshold`` is a decision.

    Returns
    -------
    dict
        ``rows``, ``positive_rate``, ``auc`` (ROC), ``pr_auc`` (average precision),
        ``brier``, ``log_loss`` and ``decision_rate`` (share of rows at or over the threshold).
    """
    y = np.asarray(y).astype(int)
    both = len(np.unique(y)) == 2
    return {
        "rows": int(len(y)),
        "positive_rate": float(y.mean()) if len(y) else 0.0,
        "auc": float(roc_auc_score(y, scores)) if both else None,
        "pr_auc": float(average_precision_score(y, scores)) if both else None,
        "brier": float(brier_score_loss(y, scores)) if len(y) else None,
        "log_loss": float(log_loss(y, scores, labels=[0, 1])) if len(y) else None,
        "decision_rate": float((scores >= threshold).mean()) if len(y) else 0.0,
    }


def split_frame(training_set: pd.DataFrame, splits: pd.DataFrame, spec: DatasetSpec,
                ) -> dict[str, pd.DataFrame]:
    """The training set split into train, valid and test by an inner join on the event id.

    Parameters
    ----------
    training_set : DataFrame
        One row per labelled event.
    splits : DataFrame
        Columns ``spec.event_id`` and ``split``.
    spec : DatasetSpec
        Gives the event id column.

    Returns
    -------
    dict of str to DataFrame
        Keys ``"train"``, ``"valid"``, ``"test"``.

    Raises
    ------
    pandas.errors.MergeError
        An event id appears twice in either frame.
    """
    merged = training_set.merge(splits, on=spec.event_id, how="inner", validate="one_to_one")
    return {name: merged[merged["split"] == name] for name in ("train", "valid", "test")}


def training_splits(training_set: pd.DataFrame, spec: DatasetSpec, window: TrainingWindow,
                    ) -> pd.DataFrame:
    """The split of every training-set row: the hash split (``assign_splits``) - or, with a
    held-out period, ``test`` for the period's rows and the window's rows in train or valid
    (their hashed test share joins train: the model learns from the whole window).

    Parameters
    ----------
    training_set : DataFrame
        One row per labelled event (``build_training_set`` of ``window``).
    spec : DatasetSpec
        Event id and time columns, split salt and fractions.
    window : TrainingWindow
        Its ``held_out`` period, if any.

    Returns
    -------
    DataFrame
        Columns ``spec.event_id`` and ``split`` (``train``, ``valid`` or ``test``).
    """
    ids = training_set[spec.event_id]
    split = assign_splits(ids, spec.model.split_salt, spec.model.split_fractions)
    if window.held_out:
        ts = training_set[spec.event_ts]
        split = split.where(split != "test", "train")
        split[(ts >= window.test_start) & (ts < window.test_end)] = "test"
    return pd.DataFrame({spec.event_id: ids, "split": split})


def reference_rows(test: pd.DataFrame, spec: DatasetSpec) -> pd.DataFrame:
    """The frozen reference set: the first training run's test rows (capped, by event id).

    Parameters
    ----------
    test : DataFrame
        The test split.
    spec : DatasetSpec
        Columns to keep and the cap (``spec.model.frozen_reference_rows``, rows).

    Returns
    -------
    DataFrame
        At most the cap of rows, lowest event ids first, index reset.
    """
    cols = [spec.event_id, spec.event_ts, *spec.entity_keys, *spec.feature_names, spec.label]
    return test.sort_values(spec.event_id)[cols].head(spec.model.frozen_reference_rows)\
        .reset_index(drop=True)
