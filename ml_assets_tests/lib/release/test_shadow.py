"""Shadow report: paired comparison and the promotion gate, on a small world with known
challengers (identical, honest, leaky, bad)."""

import numpy as np
import pandas as pd
import pytest

from ml_assets.lib.monitoring.tables import label_horizon
from ml_assets.lib.release import comparison, shadow
from ml_assets_tests.fixtures.shadow_world import SPEC, day, world_copy

GATE_AT = 45  # candidates were trained as of day 38: a 7-day shadow window
NO_LATENCY_SLO = 1e9  # the loaded test machine must not decide these tests


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return world_copy(tmp_path_factory.mktemp("shadow") / "w")


def report(world, kind: str, at: int = GATE_AT) -> dict:
    return shadow.shadow_report(world.paths, SPEC, world.registry, world.versions["champion"],
                                world.versions[kind], day(at), label_horizon(world.paths),
                                latency_slo_ms=NO_LATENCY_SLO)


def items(r: dict) -> dict:
    return {i["item"]: i for i in r["checklist"]}


def test_identical_challenger_shows_zero_disagreement_and_passes_every_item(world):
    r = report(world, "identical")
    c = r["cumulative"]
    assert c["paired_events"] == c["events"] > 5_000
    assert c["disagreements"] == 0 and c["disagreement_rate"] == 0.0
    assert c["score_psi"] == pytest.approx(0.0, abs=1e-9)
    assert c["rank_correlation"] == pytest.approx(1.0)
    assert r["offline_online"]["lift_gap"] == pytest.approx(0.0)
    assert all(d["disagreement_rate"] == 0.0 for d in r["daily"])
    assert r["gate_passed"], [i for i in r["checklist"] if not i["passed"]]


def test_disagreement_matches_an_independent_count(world):
    r = report(world, "honest")
    files = sorted((world.paths.lake / "batch_scores").glob("*.parquet"))
    scores = pd.concat(pd.read_parquet(f) for f in files)
    lo, hi = pd.Timestamp(day(38)), pd.Timestamp(day(GATE_AT))
    s = scores[(scores["event_ts"] >= lo) & (scores["event_ts"] < hi)]
    wide = s.pivot_table(index="event_id", columns="model_version", values="decision",
                         aggfunc="first")
    a, b = wide[world.versions["champion"]], wide[world.versions["honest"]]
    assert r["cumulative"]["disagreements"] == int((a != b).sum())
    assert r["window"]["start"].startswith("2026-08-08")  # starts at the challenger's cutoff
    assert r["days_of_data"] == pytest.approx(7.0, abs=0.05)


def test_honest_challenger_passes_the_gate_with_measured_values(world):
    r = report(world, "honest")
    got = items(r)
    assert set(got) == {"shadow_duration", "error_rate", "nan_inf_rate", "disagreement_rate",
                        "score_psi", "rank_correlation", "offline_online_decision_rate",
                        "offline_online_lift", "latency_p99_ms", "edge_cases"}
    assert r["gate_passed"], [i for i in r["checklist"] if not i["passed"]]
    assert got["offline_online_lift"]["status"] == "passed"
    assert r["offline_online"]["labeled_positives"] >= 20
    assert all(np.isfinite(v["p99_ms"]) and v["samples"] > 0 for v in r["latency"].values())
    edge = r["edge_cases"]
    assert edge["missing_input"]["rows"] > 0 and edge["unknown_category"]["rows"] > 0


def test_leaky_challenger_is_flagged_by_the_offline_online_check(world):
    r = report(world, "leaky")
    oo = r["offline_online"]
    assert r["offline_online"]["held_out_auc"]["challenger"] == pytest.approx(1.0)
    assert oo["possible_leakage"] and oo["lift_gap"] > 0.1
    assert items(r)["offline_online_lift"]["passed"] is False
    assert not r["gate_passed"]


def test_lift_is_pending_until_labels_land_and_short_shadow_fails_duration(world):
    r = shadow.shadow_report(world.paths, SPEC, world.registry, world.versions["champion"],
                             world.versions["honest"], day(41), day(41),
                             latency_slo_ms=NO_LATENCY_SLO)
    got = items(r)
    assert got["offline_online_lift"]["status"] == "pending"
    assert got["offline_online_lift"]["passed"] is False
    assert got["shadow_duration"]["value"] == pytest.approx(3.0, abs=0.05)
    assert not got["shadow_duration"]["passed"] and not r["gate_passed"]


def test_bad_challenger_fails_overlap_items(world):
    got = items(report(world, "bad"))
    assert not got["score_psi"]["passed"] and not got["rank_correlation"]["passed"]


def test_nan_scores_are_counted_as_errors():
    pairs = pd.DataFrame({"champion_score": [0.1, 0.2, 0.9, 0.4],
                          "challenger_score": [0.1, np.nan, np.inf, None],
                          "champion_decision": [False, False, True, False],
                          "challenger_decision": [False, None, True, None],
                          "source": "batch"})
    pairs.loc[3, "challenger_score"] = np.nan
    c = shadow.compare(pairs.iloc[:3])
    assert c["missing_challenger_scores"] == 1 and c["nan_inf_scores"] == 1
    assert c["error_rate"] == pytest.approx(2 / 3) and c["nan_inf_rate"] == pytest.approx(1 / 3)


def test_no_traffic_after_the_cutoff_is_refused(world):
    with pytest.raises(shadow.ShadowDataMissing, match="no traffic to shadow"):
        shadow.shadow_report(world.paths, SPEC, world.registry, world.versions["champion"],
                             world.versions["honest"], day(38), None)


def test_score_psi_reads_probabilities_not_the_order_of_clear_negatives():
    rng = np.random.default_rng(7)
    champion = rng.uniform(5e-5, 9e-4, 10_000)  # clear negatives, 1e-5 apart
    reordered = rng.permutation(champion) * rng.uniform(0.5, 1.1, champion.size)
    bands = shadow.ShadowConfig().score_bands
    assert comparison.band_psi(champion, reordered, bands) == pytest.approx(0.0, abs=1e-9)
    # a tenth of the traffic moved past the decision threshold is a different model
    riskier = np.where(np.arange(champion.size) < 1_000, 0.8, champion)
    assert comparison.band_psi(champion, riskier, bands) > 0.25
