"""Staged rollout: stable arms, the gate on `rollout 1`, dwell, auto-pause of a worse
challenger and promotion at 100% through the control plane."""

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from ml_assets.defs.release.assets import promotion_marker
from ml_assets.lib.monitoring.tables import label_horizon
from ml_assets.lib.release import rollout
from ml_assets.lib.release.rollout import RolloutRefused
from ml_assets_tests.fixtures.shadow_world import (
    CFG,
    SMALL_WORLD_ROLLOUT,
    SPEC,
    day,
    world_copy,
)

START = 45


@pytest.fixture
def world(tmp_path):
    return world_copy(tmp_path / "w")


def test_the_same_entity_always_lands_in_the_same_arm_and_shares_match_the_stage():
    cards = pd.Series(np.arange(1, 40_001, dtype=np.int64))
    shuffled = cards.sample(frac=1.0, random_state=1)
    for pct in (1, 5, 25, 50):
        arm = rollout.in_challenger_arm(cards, pct, "rollout-v1")
        again = pd.Series(rollout.in_challenger_arm(shuffled, pct, "rollout-v1"),
                          index=shuffled.index).sort_index().to_numpy()
        assert np.array_equal(arm, again)  # a pure function of the entity, not of the batch
        assert arm.mean() == pytest.approx(pct / 100, abs=0.01)
    small, big = (rollout.in_challenger_arm(cards, p, "rollout-v1") for p in (5, 25))
    assert not (small & ~big).any()  # ramping up never moves anyone back to the champion


def _start(world, kind, **kw):
    world.use_challenger(kind)
    return rollout.start(world.registry, world.paths, SPEC, "tests", day(START),
                         label_horizon(world.paths), latency_slo_ms=1e9, **kw)


def test_rollout_1_is_refused_while_the_gate_fails_and_an_override_is_audited(world):
    with pytest.raises(RolloutRefused, match="offline_online_lift"):
        _start(world, "leaky")
    with pytest.raises(RolloutRefused, match="needs --reason"):
        _start(world, "leaky", override=True)
    st = _start(world, "leaky", override=True, reason="incident drill: knowingly bad")
    assert st["stage"] == "1" and world.registry.get_setting("rollout_stage") == "1"
    last = world.registry.audit_log(limit=1)[0]
    assert last["action"] == "rollout:1" and last["target"] == world.versions["leaky"]
    assert last["reason"].startswith("override: incident drill")


def test_manual_stage_needs_the_dwell_and_the_next_stage(world):
    _start(world, "honest")
    reg, hz = world.registry, label_horizon(world.paths)
    with pytest.raises(RolloutRefused, match="next stage is 5"):
        rollout.step(reg, world.paths, SPEC, "25", "tests", day(START + 2), hz)
    early = day(START) + timedelta(hours=6)
    with pytest.raises(RolloutRefused, match="does not allow advancing"):
        rollout.step(reg, world.paths, SPEC, "5", "tests", early, hz)
    # the dwell is met, but 1% of a day's events cannot be measured: the stage holds
    with pytest.raises(RolloutRefused, match=r"not_measurable after 24h .*data 2026-\S+ \.\. "):
        rollout.step(reg, world.paths, SPEC, "5", "tests", day(START + 1), hz)
    assert rollout.step(reg, world.paths, SPEC, "5", "tests", day(START + 1), hz, override=True,
                        reason="test: canary looked fine")["stage"] == "5"
    entry = reg.audit_log(limit=1)[0]
    assert entry["reason"].startswith("override: test: canary looked fine (not_measurable on data")
    assert entry["detail"]["data_period"]["start"] == day(START).isoformat()
    assert rollout.step(reg, world.paths, SPEC, "pause", "tests", day(START + 1), hz,
                        reason="by hand")["stage"] == "paused"
    with pytest.raises(RolloutRefused, match="resuming needs --override"):
        rollout.step(reg, world.paths, SPEC, "5", "tests", day(START + 2), hz)


def test_an_unmeasurable_stage_holds_through_all_the_data(world):
    """With the default 200 labeled events per arm the 1% stage of the test world is never
    measurable: the walk holds it (evaluated every dwell) and nothing advances unmeasured."""
    good = world.versions["identical"]
    _start(world, "identical")
    st = rollout.advance(world.registry, world.paths, SPEC, "tests", CFG.end,
                         label_horizon(world.paths))
    assert st["stage"] == "1" and len(st["walk"]) >= 20
    assert {e["outcome"] for e in st["walk"]} == {"not_measurable"}
    assert [h["action"] for h in rollout.history(world.registry, good)] == ["rollout:1"]
    assert rollout.challenger_share(world.registry, SPEC) == 1.0


def test_worse_challenger_pauses_at_the_first_measurable_stage_and_never_reaches_100(world):
    bad = world.versions["bad"]
    _start(world, "bad", override=True, reason="test: the gate already says no",
           cfg=SMALL_WORLD_ROLLOUT)
    st = rollout.advance(world.registry, world.paths, SPEC, "tests", CFG.end,
                         label_horizon(world.paths), SMALL_WORLD_ROLLOUT)
    walk = st["walk"]
    assert st["stage"] == "paused"
    first = next(i for i, e in enumerate(walk) if e["measurable"])
    assert all(e["outcome"] == "not_measurable" for e in walk[:first])
    assert {e["stage"] for e in walk[:first + 1]} == {"25"}  # never advanced unmeasured
    assert walk[-1]["outcome"] == "regressed" and walk[-1]["stage"] == walk[first]["stage"]
    assert walk[-1]["adjusted_delta_per_1k"] < 0
    actions = [h["action"] for h in rollout.history(world.registry, bad)]
    assert "rollout:100" not in actions and "promote" not in actions and actions[-1] == \
        "rollout:paused"
    assert world.registry.aliases(SPEC.model_name)["champion"] == world.versions["champion"]
    assert rollout.challenger_share(world.registry, SPEC) == 0.0  # paused: acts on nobody


def test_good_challenger_walks_every_stage_and_becomes_champion(world):
    good, old = world.versions["identical"], world.versions["champion"]
    _start(world, "identical", cfg=SMALL_WORLD_ROLLOUT)
    st = rollout.advance(world.registry, world.paths, SPEC, "tests", CFG.end,
                         label_horizon(world.paths), SMALL_WORLD_ROLLOUT)
    assert st["stage"] == "100"
    assert all(e["outcome"] in ("ok", "not_measurable") for e in st["walk"])
    assert [e["stage"] for e in st["walk"] if e["outcome"] == "ok"] == ["25", "50"]
    for e in st["walk"]:
        assert e["arm_share"] == pytest.approx(int(e["stage"]) / 100, abs=0.05)
    aliases = world.registry.aliases(SPEC.model_name)
    assert aliases == {"champion": good, "challenger": None, "previous": old}
    # rollout_state's marker of the run that changed the champion, at the data time judged
    assert promotion_marker(old, good, st) == {
        "promotion": f"{old} -> {good}", "promoted_at_data_time": st["history"][-1]["since"]}
    assert promotion_marker(good, good, st) == {}
    hist = rollout.history(world.registry, good)
    assert [h["action"] for h in hist][-4:] == ["rollout:25", "rollout:50", "promote",
                                                "rollout:100"]
    # each stage's entry names the data it judged (the audit's ts is only the wall clock)
    stages = [h for h in hist if h["action"].startswith("rollout:")]
    judged = [e for e in st["walk"] if e["outcome"] == "ok"]
    assert [h["data_period"] for h in stages[1:]] == [e["data_period"] for e in judged]
    for h in stages[1:]:
        period = h["data_period"]
        assert period["start"] <= period["first_event"] <= period["last_event"] < period["end"]
        assert period["events"] > period["labeled"] > 0 and period["label_horizon"]
        assert period["end"][:10] in h["reason"]
    assert stages[0]["data_period"]["days_of_data"] >= 1  # the gate's shadow period
    since = [h["since"] for h in st["history"]]
    gaps = np.diff(pd.to_datetime(since)).astype("timedelta64[h]").astype(int)
    assert (gaps >= 24).all()  # minimum dwell of 24 h of data per stage


def test_acting_arm_marks_acted_rows_in_batch_scoring(world):
    from ml_assets.lib.scoring.batch import score_frame
    _start(world, "honest")
    feats = pd.read_parquet(world.paths.lake / "event_features" / "2026-08-20T12.parquet")
    arm = rollout.acting_arm(world.registry, SPEC, feats)
    assert arm is not None and arm.mean() < 0.2
    reg = world.registry
    from ml_assets.lib.scoring.batch import load_live_model
    models = [(r, reg.get_model(v), load_live_model(world.paths, reg.get_model(v)))
              for r, v in (("champion", world.versions["champion"]),
                           ("challenger", world.versions["honest"]))]
    out = score_frame(feats, SPEC, models, day(50), "t", challenger_arm=arm)
    assert (out.groupby("event_id")["acted"].sum() == 1).all()  # exactly one decision acts
    chal = out[out["role"] == "challenger"]
    assert (chal["acted"].to_numpy() == arm).all()
    assert set(out["rollout_arm"]) <= {"champion", "challenger"}
