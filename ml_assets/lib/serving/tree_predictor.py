"""A fast, exact evaluator for a fitted HistGradientBoostingClassifier, for realtime requests.

``predict_proba`` spends ~3 ms of fixed overhead per call (input validation, a per-tree Python
loop) whatever the batch size; a realtime request has one row. Here all trees are flattened
into arrays and walked together, one vectorized step per tree level: leaves point to
themselves, so every cursor takes the same few array operations per level (no bookkeeping of
which paths ended), and a categorical split is one lookup in a table of its 256 codes.

It follows scikit-learn's own traversal rules (``_predictor.pyx``: NaN and negative or
unknown categories go the missing-value way, numeric ``x <= threshold`` goes left) and adds
tree outputs in the same order, so scores are bit-identical. It reads private attributes of
the estimator, so ``compile_trees`` proves equality against ``predict_proba`` on a probe
matrix first and returns None (callers keep ``predict_proba``) if anything differs.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit


class CompiledTrees:
    """The trees of a fitted binary HistGradientBoostingClassifier as flat node arrays."""

    def __init__(self, model):
        pre = model._preprocessor  # None when the model has no categorical features
        self.order = np.arange(model.n_features_in_)
        self.categories = []
        if pre is not None:
            # Output column order of the preprocessor: encoded categoricals, then the rest.
            self.order = np.concatenate([np.flatnonzero(np.asarray(cols))
                                         for name, _, cols in pre.transformers_
                                         if name != "remainder"])
            self.categories = list(pre.named_transformers_["encoder"].categories_)
        self.n_cat = len(self.categories)
        trees = [p for per_iteration in model._predictors for p in per_iteration]
        sizes = np.array([len(t.nodes) for t in trees])
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        nodes = np.concatenate([t.nodes for t in trees])
        node_offset = np.repeat(offsets, sizes)
        bitsets = [t.raw_left_cat_bitsets for t in trees]
        bit_offsets = np.concatenate([[0], np.cumsum([len(b) for b in bitsets])[:-1]])
        self.raw_bitsets = np.concatenate(bitsets) if sum(len(b) for b in bitsets) else \
            np.zeros((1, 8), dtype=np.uint32)
        self.is_leaf = nodes["is_leaf"].astype(bool)
        idx = np.arange(len(nodes))
        # A leaf reads feature 0 and goes to itself either way.
        self.feature = np.where(self.is_leaf, 0, nodes["feature_idx"]).astype(np.intp)
        self.threshold = nodes["num_threshold"]
        self.missing_left = nodes["missing_go_to_left"].astype(bool) & ~self.is_leaf
        left = np.where(self.is_leaf, idx, nodes["left"].astype(np.intp) + node_offset)
        right = np.where(self.is_leaf, idx, nodes["right"].astype(np.intp) + node_offset)
        self.children = np.column_stack([right, left]).ravel()  # [2 * node + went_left]
        self.is_cat = nodes["is_categorical"].astype(bool) & ~self.is_leaf
        self.value = nodes["value"]
        self.roots = offsets.astype(np.intp)
        self.baseline = float(model._baseline_prediction.ravel()[0])
        self.depth = _depth(self.roots, left, right, self.is_leaf)
        # Categorical splits: row cat_row[node] of cat_lut says, per code 0..255, whether it
        # goes left; column 256 is a missing value (NaN or a negative code).
        cat_nodes = np.flatnonzero(self.is_cat)
        self.cat_row = np.zeros(len(nodes), dtype=np.intp)
        self.cat_row[cat_nodes] = np.arange(len(cat_nodes))
        self.cat_lut = np.empty((len(cat_nodes), 257), dtype=bool)
        if len(cat_nodes):
            bitset_idx = nodes["bitset_idx"].astype(np.intp) + np.repeat(bit_offsets, sizes)
            known, f_idx_map = model._bin_mapper.make_known_categories_bitsets()
            codes = np.arange(256)[None, :]
            in_left = _bit(self.raw_bitsets, bitset_idx[cat_nodes][:, None], codes)
            seen = _bit(known, f_idx_map[self.feature[cat_nodes]].astype(np.intp)[:, None], codes)
            missing_left = self.missing_left[cat_nodes][:, None]
            # Unknown categories go the missing-value way (scikit-learn's _predictor.pyx).
            self.cat_lut[:, :256] = np.where(in_left | seen, in_left, missing_left)
            self.cat_lut[:, 256] = missing_left[:, 0]

    def _encode(self, x: np.ndarray) -> np.ndarray:
        """What the fitted preprocessor does: ordinal codes for categoricals (unknown -> NaN),
        then the remaining columns, in the preprocessor's output order."""
        out = x[:, self.order].astype("float64", copy=True)
        for j, cats in enumerate(self.categories):
            col = out[:, j]
            pos = np.clip(np.searchsorted(cats, col), 0, len(cats) - 1)
            out[:, j] = np.where(cats[pos] == col, pos, np.nan)
        return out

    def raw(self, x: np.ndarray) -> np.ndarray:
        """The raw score (log-odds): the baseline plus every tree's leaf value, in order.

        Parameters
        ----------
        x : ndarray, shape (n_rows, n_features) or (n_features,)
            Rows in the model's input column order; NaN is missing.

        Returns
        -------
        ndarray of float64, shape (n_rows,)
        """
        data = self._encode(np.atleast_2d(x))
        n, t = len(data), len(self.roots)
        flat = data.ravel()
        base = np.repeat(np.arange(n) * data.shape[1], t)  # each (row, tree) cursor's row start
        node = np.tile(self.roots, n)
        for _ in range(self.depth):
            v = flat[base + self.feature[node]]
            nan = np.isnan(v)
            # Numeric: x <= threshold goes left (NaN compares False), NaN the missing way.
            left = (v <= self.threshold[node]) | (nan & self.missing_left[node])
            cat = np.flatnonzero(self.is_cat[node]) if len(self.cat_lut) else ()
            if len(cat):
                vc = v[cat]
                codes = np.where(nan[cat] | (vc < 0), 256, vc).astype(np.intp)
                left[cat] = self.cat_lut[self.cat_row[node[cat]], codes]
            node = self.children[2 * node + left]
        # Same summation order as scikit-learn: baseline, then tree after tree.
        terms = np.concatenate([np.full((n, 1), self.baseline),
                                self.value[node].reshape(n, t)], axis=1)
        return np.cumsum(terms, axis=1)[:, -1]

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities as scikit-learn's: ``p = expit(raw(x))`` (the logistic link).

        Parameters
        ----------
        x : ndarray, shape (n_rows, n_features) or (n_features,)

        Returns
        -------
        ndarray of float64, shape (n_rows, 2)
            ``[1 - p, p]`` per row.
        """
        p = expit(self.raw(x))
        return np.column_stack([1.0 - p, p])


def _bit(bitsets: np.ndarray, rows: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Bit ``codes`` of bitset row ``rows`` (scikit-learn's 8 x uint32 category bitsets)."""
    return ((bitsets[rows, codes // 32] >> (codes % 32).astype(np.uint32)) & 1).astype(bool)


def _depth(roots: np.ndarray, left: np.ndarray, right: np.ndarray,
           is_leaf: np.ndarray) -> int:
    """Levels until every root-to-leaf path has ended (the deepest tree's depth)."""
    level, depth = roots[~is_leaf[roots]], 0
    while level.size:
        children = np.concatenate([left[level], right[level]])
        level, depth = children[~is_leaf[children]], depth + 1
    return depth


def _probe(model, compiled: CompiledTrees, rng: np.random.Generator, n: int) -> np.ndarray:
    """Rows that hit every threshold from both sides, NaNs, and known/unknown categories."""
    f = model.n_features_in_
    x = rng.normal(0, 1000, size=(n, f))
    cat_cols = compiled.order[:compiled.n_cat]
    for j, col in enumerate(cat_cols):
        cats = compiled.categories[j]
        x[:, col] = rng.choice(np.concatenate([cats, [cats.max() + 1, -1]]), size=n)
    thresholds = compiled.threshold[~compiled.is_leaf & ~compiled.is_cat]
    feats = compiled.feature[~compiled.is_leaf & ~compiled.is_cat]
    if len(thresholds):
        pick = rng.integers(0, len(thresholds), size=n)
        cols = compiled.order[feats[pick]]
        x[np.arange(n), cols] = thresholds[pick] + rng.choice([-1e-9, 0.0, 1e-9], size=n)
    x[rng.random(size=x.shape) < 0.05] = np.nan
    return x


def compile_trees(model, seed: int = 0, probe_rows: int = 2000) -> CompiledTrees | None:
    """The compiled evaluator if it reproduces ``predict_proba`` exactly on a probe, else None.

    Parameters
    ----------
    model : HistGradientBoostingClassifier
        Fitted, binary.
    seed : int
        Seed of the random probe.
    probe_rows : int
        Rows in the probe (threshold edges, NaNs, known and unknown categories).

    Returns
    -------
    CompiledTrees or None
        None if the model type or scikit-learn version is unknown to the evaluator or any
        probe score differs bit for bit; callers then use ``predict_proba``.
    """
    try:
        compiled = CompiledTrees(model)
        x = _probe(model, compiled, np.random.default_rng(seed), probe_rows)
        if np.array_equal(compiled.predict_proba(x)[:, 1], model.predict_proba(x)[:, 1]):
            return compiled
    except (AttributeError, KeyError, IndexError, ValueError, TypeError):
        pass  # a model type or scikit-learn version this evaluator does not know
    return None
