"""The compiled tree evaluator used for realtime requests is bit-identical to predict_proba,
and refuses (returns None) when it cannot prove that."""

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

from ml_assets.lib.core.lake import read_parquet_files
from ml_assets.lib.core.registry import Registry
from ml_assets.lib.scoring.batch import load_live_model
from ml_assets.lib.serving.tree_predictor import compile_trees
from ml_assets_tests.fixtures.serving_world import SPEC, world_copy


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    paths = world_copy(tmp_path_factory.mktemp("trees") / "w")
    registry = Registry(paths.control_db)
    feats = read_parquet_files(sorted((paths.lake / "event_features").glob("*.parquet")))
    return paths, registry, feats[SPEC.feature_names].to_numpy(dtype="float64")


@pytest.mark.parametrize("version", ["fraud-v1", "fraud-v2", "fraud-v3"])
def test_bit_identical_to_predict_proba_on_every_real_row(world, version):
    paths, registry, x = world
    model = load_live_model(paths, registry.get_model(version))["model"]
    compiled = compile_trees(model)
    assert compiled is not None
    assert np.array_equal(compiled.predict_proba(x), model.predict_proba(x))
    for row in x[:50]:  # and one row at a time, as a request is scored
        assert compiled.predict_proba(row[None])[0, 1] == model.predict_proba(row[None])[0, 1]


def test_unknown_categories_nan_and_negative_codes_follow_sklearn(world):
    paths, registry, x = world
    model = load_live_model(paths, registry.get_model("fraud-v2"))["model"]
    compiled = compile_trees(model)
    odd = np.repeat(x[:4], 4, axis=0)
    cat_cols = np.flatnonzero(SPEC.categorical_feature_mask)
    odd[0::4, cat_cols] = np.nan
    odd[1::4, cat_cols] = -3
    odd[2::4, cat_cols] = 250  # never seen in training
    odd[3::4, :] = np.nan
    assert np.array_equal(compiled.predict_proba(odd), model.predict_proba(odd))


def test_a_model_it_does_not_understand_is_refused():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(200, 3)), rng.integers(0, 2, 200)
    multi = HistGradientBoostingClassifier(max_iter=5).fit(x, rng.integers(0, 3, 200))
    assert compile_trees(multi) is None  # three classes: not the binary layout it compiles
    assert compile_trees(object()) is None
    binary = HistGradientBoostingClassifier(max_iter=5).fit(x, y)
    assert compile_trees(binary) is not None  # no categorical features is fine
