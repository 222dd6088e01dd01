"""The serving path applies the rollout stage at read time: entities in the challenger's arm
(the rollout's stable hash) are answered by the challenger; the kill switch overrides it."""

import json

import numpy as np
import pandas as pd
import pytest

from ml_assets.lib.core.registry import Registry
from ml_assets.lib.core.workspace import Workspace
from ml_assets.lib.release import arms, rollout
from ml_assets.lib.serving.read_path import ScoringService
from ml_assets_tests.fixtures.serving_world import SPEC, world_copy


def test_the_python_arm_hash_matches_the_rollouts_sql_hash():
    cards = pd.Series(np.arange(0, 5000, 7, dtype="int64"))
    sql = rollout.in_challenger_arm(cards, 25, "rollout-v1")
    mine = np.array([arms.entity_in_challenger_arm(c, 25, "rollout-v1")
                     for c in cards.tolist()])
    assert np.array_equal(sql, mine) and 0.15 < mine.mean() < 0.35


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    paths = world_copy(tmp_path_factory.mktemp("rollout") / "w")
    svc = ScoringService(Workspace(paths, SPEC)).start()
    yield paths, Registry(paths.control_db), svc
    svc.close()


def _stage(registry, stage: str) -> None:
    state = {"version": "fraud-v3", "champion": "fraud-v2", "stage": stage, "salt": "rollout-v1"}
    registry.set_setting(rollout.STATE_KEY, json.dumps(state), "tests", f"stage {stage}")


def test_lookups_follow_the_arm_and_the_kill_switch_overrides(service):
    paths, registry, svc = service
    index = svc.index
    sample = list(range(0, len(index), max(1, len(index) // 400)))
    expected = np.array([arms.entity_in_challenger_arm(index.arm(r), 50, "rollout-v1")
                         for r in sample])
    _stage(registry, "50")
    got = np.array([svc.lookup(index.event_id(r))["model_version"] for r in sample])
    assert set(got[expected]) == {"fraud-v3"} and set(got[~expected]) == {"fraud-v2"}
    assert 0.3 < expected.mean() < 0.7
    registry.set_setting("kill_switch", "on", "tests", "incident")
    assert {svc.lookup(index.event_id(r))["model_version"] for r in sample} == {"fraud-v1"}
    registry.set_setting("kill_switch", "off", "tests", "over")
    for stage in ("shadow", "paused", "100"):  # nobody sees the challenger
        _stage(registry, stage)
        assert {svc.lookup(index.event_id(r))["model_version"] for r in sample} == {"fraud-v2"}
