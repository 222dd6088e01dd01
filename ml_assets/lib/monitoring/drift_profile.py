"""The drift reference *profile* of a training window, stored once per model version.

Reference-quantile bin edges, reference bin counts (with an explicit missing bin, and an "other"
bin for rare or unseen categories) and the reference values as an exact ECDF (sorted unique values
with counts). It is stored as a content-addressed artifact, so each daily comparison only bins and
sorts the day's rows; the reference is never rescanned. The comparison itself is in ``drift``.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ml_assets.lib.core import artifacts
from ml_assets.lib.monitoring.drift_stats import expected_null_psi, psi

MISSING = "missing"
OTHER = "other"
_HEADER = struct.Struct("<Q")


@dataclass
class FeatureProfile:
    """The reference of one feature: bins with reference counts (``missing`` last;
    categorical: ``other`` before it) and, for a continuous feature, right-closed inner ``edges``
    at reference quantiles and the exact ECDF (sorted unique ``values`` with ``counts``;
    ``counts`` is None when every value occurs once, as in most continuous data).
    ``noise_psi`` is the largest PSI of one clean reference day against the whole reference
    beyond the PSI its row count alone would show.
    """
    name: str
    kind: str  # "continuous" | "categorical"
    bins: list[str]  # labels of every bin, the missing bin last
    ref_counts: np.ndarray  # rows per bin, aligned with ``bins``
    edges: np.ndarray | None = None  # continuous: inner right-closed edges
    categories: list | None = None  # categorical: values with their own bin ("other" follows)
    values: np.ndarray | None = None  # continuous: sorted unique non-missing reference values
    counts: np.ndarray | None = None  # ... and how often each occurs; None: once each
    noise_psi: float = 0.0  # largest excess PSI of one reference day vs the whole reference

    @property
    def n(self) -> int:
        """Reference rows (all bins, missing included)."""
        return int(self.ref_counts.sum())

    @property
    def ref_share(self) -> np.ndarray:
        """Reference share per bin, shape (n_bins,)."""
        return self.ref_counts / max(self.n, 1)


@dataclass
class DriftProfile:
    """Every monitored feature's reference (``features`` by name) with its provenance
    (``meta``), stored once per model version as a content-addressed artifact.
    """
    features: dict[str, FeatureProfile]
    meta: dict = field(default_factory=dict)

    def to_bytes(self) -> bytes:
        """Deterministic bytes (a JSON header then one float64 blob): the same reference always
        hashes to the same artifact."""
        blobs, header, offset = [], [], 0
        for fp in self.features.values():
            entry = {"name": fp.name, "kind": fp.kind, "bins": fp.bins, "noise_psi": fp.noise_psi,
                     "ref_counts": fp.ref_counts.astype(int).tolist()}
            if fp.kind == "continuous":
                entry["edges"] = fp.edges.tolist()
                # Counts are stored only when values repeat: all-distinct data halves its size.
                parts = ("values",) if fp.counts is None else ("values", "counts")
                for part in parts:
                    arr = getattr(fp, part).astype("float64")
                    entry[part] = [offset, len(arr)]
                    blobs.append(arr.tobytes())
                    offset += len(arr)
            else:
                entry["categories"] = fp.categories
            header.append(entry)
        head = json.dumps({"meta": self.meta, "features": header}, sort_keys=True).encode()
        return _HEADER.pack(len(head)) + head + b"".join(blobs)

    @classmethod
    def from_bytes(cls, data: bytes) -> DriftProfile:
        """Read what ``to_bytes`` wrote (verify the bytes' SHA-256 first, as ``load_profile`` does).

        Parameters
        ----------
        data : bytes

        Returns
        -------
        DriftProfile
        """
        (size,) = _HEADER.unpack_from(data)
        head = json.loads(data[_HEADER.size:_HEADER.size + size])
        blob = np.frombuffer(data, dtype="float64", offset=_HEADER.size + size)
        features = {}
        for e in head["features"]:
            fp = FeatureProfile(e["name"], e["kind"], e["bins"], np.asarray(e["ref_counts"]),
                                noise_psi=e["noise_psi"])
            if fp.kind == "continuous":
                fp.edges = np.asarray(e["edges"], dtype="float64")
                fp.values = blob[e["values"][0]:e["values"][0] + e["values"][1]]
                if "counts" in e:  # absent: every value once (no array of ones to allocate)
                    start, length = e["counts"]
                    fp.counts = blob[start:start + length].astype("int64")
            else:
                fp.categories = e["categories"]
            features[fp.name] = fp
        return cls(features, head["meta"])


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def continuous_profile(name: str, values: np.ndarray, n_bins: int = 10) -> FeatureProfile:
    """The reference of one continuous feature.

    Parameters
    ----------
    name : str
    values : ndarray of float, shape (n_rows,)
        Reference values; NaN counts in the missing bin.
    n_bins : int
        Target quantile bins; tied quantiles merge, so there may be fewer.

    Returns
    -------
    FeatureProfile
    """
    values = np.asarray(values, dtype="float64")
    present = values[~np.isnan(values)]
    uniq, counts = np.unique(present, return_counts=True)
    if len(present):
        # Inner edges at reference quantiles; ties (e.g. a count that is mostly 0) merge bins.
        edges = np.unique(np.quantile(present, np.linspace(0, 1, n_bins + 1)[1:-1]))
    else:
        edges = np.empty(0)
    bounds = [-np.inf, *edges, np.inf]
    bins = [f"({_fmt(lo)}, {_fmt(hi)}]" for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]
    ref_counts = _continuous_counts(edges, values)
    return FeatureProfile(name, "continuous", [*bins, MISSING], ref_counts, edges=edges,
                          values=uniq, counts=None if (counts == 1).all() else counts)


def continuous_bins(edges: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Bin index per row: right-closed reference bins, then the missing bin.

    Parameters
    ----------
    edges : ndarray of float, shape (n_edges,)
        Inner right-closed bin edges (``FeatureProfile.edges``).
    values : ndarray of float, shape (n_rows,)
        Values to bin; NaN goes to the missing bin.

    Returns
    -------
    ndarray of int, shape (n_rows,)
        Bin index in ``0 .. n_edges + 1`` (``n_edges + 1`` is the missing bin).
    """
    idx = np.searchsorted(edges, values, side="left")
    return np.where(np.isnan(values), len(edges) + 1, idx)


def _continuous_counts(edges: np.ndarray, values: np.ndarray) -> np.ndarray:
    return np.bincount(continuous_bins(edges, values), minlength=len(edges) + 2)


def categorical_profile(name: str, values, labels: dict | None = None,
                        min_share: float = 0.005, max_categories: int = 50) -> FeatureProfile:
    """The reference of one categorical feature.

    One bin per category with at least ``min_share`` of rows, at most ``max_categories`` (the most
    frequent); rarer and unseen values share the "other" bin, missing values the missing bin.

    Parameters
    ----------
    name : str
    values : array-like, shape (n_rows,)
    labels : dict, optional
        Display label per category code.
    min_share : float
        Share of rows (0-1) a category needs for its own bin.
    max_categories : int

    Returns
    -------
    FeatureProfile
    """
    s = pd.Series(values)
    freq = s.dropna().value_counts()
    keep = freq[freq >= min_share * max(len(s), 1)].head(max_categories)
    categories = sorted(keep.index.tolist(), key=str)
    labels = labels or {}
    bins = [str(labels.get(c, c)) for c in categories] + [OTHER, MISSING]
    fp = FeatureProfile(name, "categorical", bins, np.zeros(len(bins), int),
                        categories=[_plain(c) for c in categories])
    fp.ref_counts = _categorical_counts(fp, s)
    return fp


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value


def _categorical_bins(fp: FeatureProfile, values) -> np.ndarray:
    s = pd.Series(values)
    codes = pd.Index(fp.categories, dtype=object).get_indexer(s.astype(object)).astype("int64")
    k = len(fp.categories)
    codes = np.where(codes < 0, k, codes)  # unseen or rare -> other
    return np.where(s.isna().to_numpy(), k + 1, codes)


def _categorical_counts(fp: FeatureProfile, values) -> np.ndarray:
    return np.bincount(_categorical_bins(fp, values), minlength=len(fp.categories) + 2)


def _bins_of(fp: FeatureProfile, values) -> np.ndarray:
    if fp.kind == "continuous":
        return continuous_bins(fp.edges, np.asarray(values, dtype="float64"))
    return _categorical_bins(fp, values)


def bin_counts(fp: FeatureProfile, values) -> np.ndarray:
    """Rows per bin of ``fp`` (missing bin last), binned as the reference was.

    Parameters
    ----------
    fp : FeatureProfile
    values : array-like, shape (n_rows,)
        The feature's values (float for a continuous feature); missing values count in the
        missing bin, unseen or rare categories in "other".

    Returns
    -------
    ndarray of int, shape (n_bins,)
        Counts aligned with ``fp.bins``.
    """
    if fp.kind == "continuous":
        return _continuous_counts(fp.edges, np.asarray(values, dtype="float64"))
    return _categorical_counts(fp, values)


def _noise_psi(fp: FeatureProfile, values, period: np.ndarray, min_rows: int) -> float:
    """Largest excess PSI of one reference period (day) against the whole reference: the
    day-to-day variability a clean day shows beyond sampling noise. Features dominated by a few
    entities (one big merchant crossing a bin edge) vary far more than sampling noise suggests.
    Each day's expected PSI at its row count (``expected_null_psi``) is subtracted, because the
    sample-size allowance of each judged day (``drift.grade``) already covers sampling noise."""
    whole = ~pd.isna(period)  # rows of periods cut by the window have no key
    codes, period_idx = np.unique(period[whole], return_inverse=True)
    nb = len(fp.bins)
    counts = np.bincount(period_idx * nb + _bins_of(fp, np.asarray(values)[whole]),
                         minlength=len(codes) * nb).reshape(len(codes), nb)
    totals = counts.sum(axis=1)
    counts = counts[totals >= min_rows]
    if not len(counts):
        return 0.0
    totals = counts.sum(axis=1)
    day_psi = psi(fp.ref_share[None, :], counts / totals[:, None]).sum(axis=1)
    sampling = expected_null_psi(int((fp.ref_counts > 0).sum()), totals, fp.n)
    return float(max(0.0, (day_psi - sampling).max()))


def build_profile(frame: pd.DataFrame, continuous: list[str], categorical: list[str],
                  n_bins: int = 10, category_labels: dict[str, dict] | None = None,
                  period: np.ndarray | dict[str, np.ndarray] | None = None,
                  min_period_rows: int = 100,
                  meta: dict | None = None) -> DriftProfile:
    """The drift reference of a training window.

    Parameters
    ----------
    frame : DataFrame, shape (n_rows, n_features)
        Reference rows.
    continuous, categorical : list of str
        Columns profiled as continuous (quantile bins + ECDF) or categorical.
    n_bins : int
        Quantile bins per continuous feature.
    category_labels : dict of str to dict, optional
        Display labels per categorical feature.
    period : ndarray, shape (n_rows,), or dict of str to such arrays, optional
        Period of each row (e.g. its day), or per feature (features are judged over different
        periods, ``drift_periods``): each feature then records its clean period-to-period PSI
        beyond sampling noise (periods under ``min_period_rows`` rows, and rows whose period
        is NaT, are ignored), so thresholds can sit above what an ordinary period shows.
    meta : dict, optional
        Provenance stored with the profile.

    Returns
    -------
    DriftProfile
    """
    category_labels = category_labels or {}
    features = {c: continuous_profile(c, frame[c].to_numpy(dtype="float64"), n_bins)
                for c in continuous}
    features |= {c: categorical_profile(c, frame[c], category_labels.get(c)) for c in categorical}
    if period is not None:
        for fp in features.values():
            keys = period.get(fp.name) if isinstance(period, dict) else period
            if keys is not None:
                fp.noise_psi = _noise_psi(fp, frame[fp.name], np.asarray(keys), min_period_rows)
    return DriftProfile(features, {**(meta or {}), "rows": int(len(frame)), "bins": n_bins})


def store_profile(directory: Path, profile: DriftProfile) -> tuple[str, Path]:
    """Store ``profile`` as a content-addressed artifact under ``directory``.

    Parameters
    ----------
    directory : Path
    profile : DriftProfile

    Returns
    -------
    sha256 : str
    path : Path
    """
    return artifacts.store(directory, profile.to_bytes(), "drift-profile")


def load_profile(path: Path, sha256: str) -> DriftProfile:
    """The profile at ``path`` after verifying its SHA-256.

    Parameters
    ----------
    path : Path
    sha256 : str
        Expected hex digest.

    Returns
    -------
    DriftProfile

    Raises
    ------
    ArtifactIntegrityError
        The file is missing or does not hash to ``sha256``.
    """
    return DriftProfile.from_bytes(artifacts.read_verified(path, sha256))
