"""Input drift against a reference *profile*: PSI per feature and two-sample KS for continuous ones.

The profile is computed once per model version from its training window: reference-quantile
bin edges, reference bin counts (with an explicit missing bin, and an "other" bin for rare or
unseen categories) and the reference values as an exact ECDF (sorted unique values with
counts). It is stored as a content-addressed artifact, so each daily comparison only bins and
sorts the day's rows; the reference is never rescanned.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from ml_assets.lib.core import artifacts

PSI_EPS = 1e-4  # shares are floored here so an empty bin gives a large but finite PSI
MISSING = "missing"
OTHER = "other"
EXACT_KS_MAX_N = 10_000  # scipy's 'auto' switches from exact to asymptotic p-values here
_HEADER = struct.Struct("<Q")


@dataclass
class FeatureProfile:
    """The reference of one feature: bins with reference counts (``missing`` last;
    categorical: ``other`` before it) and, for a continuous feature, right-closed inner ``edges``
    at reference quantiles and the exact ECDF (sorted unique ``values`` with ``counts``).
    ``noise_psi`` is the largest PSI of one clean reference day against the whole reference.
    """
    name: str
    kind: str  # "continuous" | "categorical"
    bins: list[str]  # labels of every bin, the missing bin last
    ref_counts: np.ndarray  # rows per bin, aligned with ``bins``
    edges: np.ndarray | None = None  # continuous: inner right-closed edges
    categories: list | None = None  # categorical: values with their own bin ("other" follows)
    values: np.ndarray | None = None  # continuous: sorted unique non-missing reference values
    counts: np.ndarray | None = None  # ... and how often each occurs
    noise_psi: float = 0.0  # largest PSI of one reference day against the whole reference

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
                parts = ("values",) if (fp.counts == 1).all() else ("values", "counts")
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
        """Read what ``to_bytes`` wrote (verify the bytes' SHA-256 first, as
        ``load_profile`` does).
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
                start, length = e.get("counts", (0, 0))
                fp.counts = (blob[start:start + length].astype("int64") if "counts" in e
                             else np.ones(len(fp.values), dtype="int64"))
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
                          values=uniq, counts=counts)


def _continuous_bins(edges: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Bin index per row: right-closed reference bins, then the missing bin."""
    idx = np.searchsorted(edges, values, side="left")
    return np.where(np.isnan(values), len(edges) + 1, idx)


def _continuous_counts(edges: np.ndarray, values: np.ndarray) -> np.ndarray:
    return np.bincount(_continuous_bins(edges, values), minlength=len(edges) + 2)


def categorical_profile(name: str, values, labels: dict | None = None,
                        min_share: float = 0.005, max_categories: int = 50) -> FeatureProfile:
    """The reference of one categorical feature: one bin per category with at least
    ``min_share`` (0-1) of rows, at most ``max_categories`` (the most frequent); rarer and unseen
    values share the "other" bin. ``labels`` maps a code to its display label.

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
        return _continuous_bins(fp.edges, np.asarray(values, dtype="float64"))
    return _categorical_bins(fp, values)


def _noise_psi(fp: FeatureProfile, values, period: np.ndarray, min_rows: int) -> float:
    """Largest PSI of one reference period (day) against the whole reference: the day-to-day
    variability a clean day shows. Features dominated by a few entities (one big merchant
    crossing a bin edge) vary far more than sampling noise suggests."""
    codes, period_idx = np.unique(period, return_inverse=True)
    nb = len(fp.bins)
    counts = np.bincount(period_idx * nb + _bins_of(fp, values),
                         minlength=len(codes) * nb).reshape(len(codes), nb)
    totals = counts.sum(axis=1)
    counts = counts[totals >= min_rows]
    if not len(counts):
        return 0.0
    shares = counts / counts.sum(axis=1, keepdims=True)
    return float(psi(fp.ref_share[None, :], shares).sum(axis=1).max())


def build_profile(frame: pd.DataFrame, continuous: list[str], categorical: list[str],
                  n_bins: int = 10, category_labels: dict[str, dict] | None = None,
                  period: np.ndarray | None = None, min_period_rows: int = 100,
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
    period : ndarray, shape (n_rows,), optional
        Period of each row (e.g. its day): each feature then records its clean day-to-day PSI
        (periods under ``min_period_rows`` rows are ignored), so thresholds can sit above what
        an ordinary day already shows.
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
            fp.noise_psi = _noise_psi(fp, frame[fp.name], np.asarray(period), min_period_rows)
    return DriftProfile(features, {**(meta or {}), "rows": int(len(frame)), "bins": n_bins})


def psi(ref_share: np.ndarray, cur_share: np.ndarray, eps: float = PSI_EPS) -> np.ndarray:
    """Per-bin contributions to the population stability index:
    (cur - ref) * ln(cur / ref), shares floored at ``eps`` (credit-scoring practice; see
    Yurdakul 2018, "Statistical properties of the population stability index").

    Parameters
    ----------
    ref_share, cur_share : array-like of float, shape (..., n_bins)
        Shares per bin, each summing to 1 over the last axis.

    Returns
    -------
    ndarray of float, shape (..., n_bins)
        PSI contributions; their sum over the last axis is the PSI.
    """
    r = np.maximum(np.asarray(ref_share, dtype="float64"), eps)
    c = np.maximum(np.asarray(cur_share, dtype="float64"), eps)
    return (c - r) * np.log(c / r)


def ks_against_profile(fp: FeatureProfile, current: np.ndarray) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov test of ``current`` against the reference ECDF of
    ``fp``, equal to ``scipy.stats.ks_2samp`` on the raw samples (NaNs excluded): exact p-values
    up to ``EXACT_KS_MAX_N`` rows, else ``scipy.stats.kstwo``, without rescanning the reference.

    Returns
    -------
    statistic, pvalue : float
        Largest ECDF distance in [0, 1] and its two-sided p-value; NaN when a sample is empty.
    """
    cur = np.sort(current[~np.isnan(current)])
    n_ref, n_cur = int(fp.counts.sum()), len(cur)
    if n_ref == 0 or n_cur == 0:
        return float("nan"), float("nan")
    if max(n_ref, n_cur) <= EXACT_KS_MAX_N:  # small samples: scipy's exact p-value
        res = stats.ks_2samp(np.repeat(fp.values, fp.counts), cur)
        return float(res.statistic), float(res.pvalue)
    cum = np.concatenate([[0], np.cumsum(fp.counts)]) / n_ref
    uniq, first = np.unique(cur, return_index=True)
    f_cur_right = np.append(first[1:], n_cur) / n_cur
    f_cur_left = first / n_cur
    # Between two current values the current ECDF is flat and the reference one monotone, so
    # the supremum is reached at a current value or just before it.
    f_ref_right = cum[np.searchsorted(fp.values, uniq, side="right")]
    f_ref_left = cum[np.searchsorted(fp.values, uniq, side="left")]
    d = float(max(np.abs(f_ref_right - f_cur_right).max(), np.abs(f_ref_left - f_cur_left).max()))
    m, n = sorted([float(n_ref), float(n_cur)], reverse=True)
    pvalue = float(np.clip(stats.kstwo.sf(d, np.round(m * n / (m + n))), 0, 1))
    return d, pvalue


def compare(profile: DriftProfile, frame: pd.DataFrame, top_bins: int = 3) -> pd.DataFrame:
    """Today's rows against the reference, one row per profiled feature.

    Parameters
    ----------
    profile : DriftProfile
    frame : DataFrame, shape (n_rows, n_features)
        The day's rows.
    top_bins : int
        How many of the most-moving bins to report.

    Returns
    -------
    DataFrame, one row per feature
        ``psi``, ``ks_stat``/``ks_pvalue`` (NaN for categorical), ``noise_psi``, ``n_ref``/
        ``n_cur`` (rows), missing shares (0-1) and ``top_bins`` (JSON).
    """
    rows = []
    for name, fp in profile.features.items():
        if fp.kind == "continuous":
            values = frame[name].to_numpy(dtype="float64")
            cur_counts = _continuous_counts(fp.edges, values)
            ks_stat, ks_p = ks_against_profile(fp, values)
        else:
            cur_counts = _categorical_counts(fp, frame[name])
            ks_stat = ks_p = float("nan")
        cur_share = cur_counts / max(int(cur_counts.sum()), 1)
        contrib = psi(fp.ref_share, cur_share)
        order = np.argsort(-np.abs(contrib))[:top_bins]
        rows.append({
            "feature": name, "kind": fp.kind, "psi": float(contrib.sum()),
            "ks_stat": ks_stat, "ks_pvalue": ks_p,
            "noise_psi": fp.noise_psi, "n_ref": fp.n, "n_cur": int(cur_counts.sum()),
            "missing_share_ref": float(fp.ref_share[-1]), "missing_share_cur": float(cur_share[-1]),
            "top_bins": json.dumps([{"bin": fp.bins[i], "ref_share": round(float(fp.ref_share[i]), 6),
                                     "cur_share": round(float(cur_share[i]), 6),
                                     "psi": round(float(contrib[i]), 6)} for i in order]),
        })
    return pd.DataFrame(rows)


def severity(value: float, warn: float, error: float) -> str:
    """``"error"`` above ``error``, ``"warn"`` above ``warn``, else ``"ok"`` (NaN is
    ``"ok"``: nothing to say). Thresholds are in the statistic's units (e.g. PSI).
    """
    if value > error:
        return "error"
    return "warn" if value > warn else "ok"


def effective_thresholds(warn: float, error: float, noise_psi: float,
                         noise_margin: float = 2.0) -> tuple[float, float]:
    """Configured PSI thresholds raised for a feature whose clean reference days
    already vary more: ``(max(warn, noise_psi), max(error, noise_margin * noise_psi))``.
    """
    return max(warn, noise_psi), max(error, noise_margin * noise_psi)


def store_profile(directory: Path, profile: DriftProfile) -> tuple[str, Path]:
    """Store ``profile`` as a content-addressed artifact under ``directory``; returns
    ``(sha256, path)``.
    """
    return artifacts.store(directory, profile.to_bytes(), "drift-profile")


def load_profile(path: Path, sha256: str) -> DriftProfile:
    """The profile at ``path`` after verifying its SHA-256.

    Raises
    ------
    ArtifactIntegrityError
        The file is missing or does not hash to ``sha256``.
    """
    return DriftProfile.from_bytes(artifacts.read_verified(path, sha256))
