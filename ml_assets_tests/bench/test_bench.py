"""The benchmark keeps working: a tiny run checks correctness and the JSON it prints, never speed.

The pandas baseline and the micro spec's hand-written sides are checked against the compiled
SQL on a small world (values identical), and each comparison is shown to catch a perturbed
value, so "identical" can fail."""

import json

import numpy as np
import pandas as pd
import pytest

from ml_assets.bench.feature_section import growth_exponent
from ml_assets.bench.feature_tasks import compare_outputs, ml_assets_side, pandas_side
from ml_assets.bench.micro_features import (
    SIDES,
    SUMS,
    WINDOWS_US,
    compare_sides,
    run_side,
    searchsorted_features,
)
from ml_assets.bench.world import build_world, world_config, world_dir
from ml_assets.cli.main import main
from ml_assets.lib.core.paths import DATA_DIR_ENV
from ml_assets.specs.fraud import FRAUD_SPEC

HEADLINE_KEYS = {
    "feature_build_vs_fastest_hand_written", "feature_values_identical",
    "feature_build_growth_exponent", "full_spec_growth_exponent",
    "full_spec_identical_to_pandas", "year_seconds", "ingest_rows_per_second",
    "drift_speedup_vs_evidently", "drift_speedup_vs_evidently_reason", "drift_ratio_vs_numpy",
    "estimation_speedup_vs_nannyml", "scoring_overhead_vs_bare_predict", "lookup_p99_ms",
    "realtime_p99_ms_50_clients", "kill_switch_effect_ms", "reproduce_seconds", "peak_rss_mb",
    "load_average", "sizes", "threads", "library_versions", "goals", "report_files",
}
TINY = world_config(0.01, 40)  # two 30-day feature chunks, so the look-back is exercised


@pytest.fixture(scope="module")
def tiny_world(tmp_path_factory):
    cache = tmp_path_factory.mktemp("bench_worlds")
    root = world_dir(cache, TINY)
    build_world(root, TINY, FRAUD_SPEC)
    return cache, root


def test_pandas_baseline_matches_sql_and_a_perturbation_is_caught(tiny_world, tmp_path):
    _, root = tiny_world
    ours = ml_assets_side(root, TINY, FRAUD_SPEC, tmp_path / "sql", threads=1)
    theirs = pandas_side(root, FRAUD_SPEC, tmp_path / "pandas.parquet")
    assert ours["chunks"] == 2 and ours["rows"] == theirs["rows"] > 1000
    files = sorted((tmp_path / "sql").glob("*.parquet"))
    same = compare_outputs(files, tmp_path / "pandas.parquet", FRAUD_SPEC)
    assert same["identical"], {k: v for k, v in same["features"].items() if v["mismatched_rows"]}
    assert same["rows_joined"] == ours["rows"]

    df = pd.read_parquet(tmp_path / "pandas.parquet")
    nonzero = df.index[df["card_tx_count_24h"] > 0][0]
    df.loc[nonzero, "card_tx_count_24h"] += 1e-6  # far above tolerance for a count
    df.to_parquet(tmp_path / "perturbed.parquet", index=False)
    diff = compare_outputs(files, tmp_path / "perturbed.parquet", FRAUD_SPEC)
    assert not diff["identical"]
    assert diff["features"]["card_tx_count_24h"]["mismatched_rows"] == 1


def test_micro_sides_are_identical_and_a_one_cent_perturbation_is_caught(tiny_world, tmp_path):
    _, root = tiny_world
    outs = {s: str(tmp_path / f"{s}.parquet") for s in SIDES}
    for side in SIDES:
        assert run_side(side, root, tmp_path / f"{side}.parquet", 1)["rows"] > 1000
    same = compare_sides(outs)
    assert same["identical"], same["mismatched_rows"]

    df = pd.read_parquet(outs["numpy"])
    df.loc[df.index[df[SUMS[0]] > 0][0], SUMS[0]] += 1  # one cent
    df.to_parquet(tmp_path / "perturbed.parquet", index=False)
    diff = compare_sides({**outs, "numpy": str(tmp_path / "perturbed.parquet")})
    assert not diff["identical"] and diff["mismatched_rows"][SUMS[0]] == 1


def test_searchsorted_windows_include_t_minus_w_and_exclude_ties_at_t():
    w7 = WINDOWS_US["7d"]
    card = np.array([1, 1, 1, 1, 2])
    ts = np.array([0, w7, w7, w7 + 1, w7])  # card 2's event never sees card 1's
    got = searchsorted_features(card, ts, np.array([100, 200, 300, 400, 500]))
    assert got["card_tx_count_7d"].tolist() == [0, 1, 1, 2, 0]  # the tie at w7 is excluded
    assert got["card_amount_sum_7d"].tolist() == [0, 100, 100, 500, 0]
    assert got["card_tx_count_30d"].tolist() == [0, 1, 1, 3, 0]
    np.testing.assert_array_equal(got["card_seconds_since_prev"],
                                  [np.nan, w7 / 1e6, w7 / 1e6, 1e-6, np.nan])


def test_growth_exponent_is_the_log_log_slope():
    assert growth_exponent([1_000, 4_000, 16_000], [1.0, 4.0, 16.0]) == pytest.approx(1.0)
    assert growth_exponent([1_000, 4_000], [1.0, 16.0]) == pytest.approx(2.0)
    assert growth_exponent([1_000], [1.0]) is None


def test_bench_cli_prints_one_json_object_with_the_headline_keys(tiny_world, tmp_path, capsys,
                                                                 monkeypatch):
    cache, _ = tiny_world
    data_dir = tmp_path / "data"
    monkeypatch.setenv(DATA_DIR_ENV, str(data_dir))  # main() sets it; restored afterwards
    (data_dir / "bench").mkdir(parents=True)
    (data_dir / "bench" / "worlds").symlink_to(cache)  # reuse the module's world
    code = main(["--data-dir", str(data_dir), "bench", "--json", "--size", "0.01", "--days",
                 "40", "--factors", "1", "2", "--threads", "1", "--out", str(tmp_path / "out"),
                 "--sections", "drift", "estimation", "scoring", "serving", "reproduce"])
    assert code == 0
    payload = json.loads(capsys.readouterr().out)  # exactly one JSON object on stdout
    assert not HEADLINE_KEYS - payload.keys()
    assert payload["feature_values_identical"] is True  # micro spec: compiled = hand-written
    assert payload["full_spec_identical_to_pandas"] is True
    assert payload["sizes"]["events"][1] > payload["sizes"]["events"][0]
    assert isinstance(payload["feature_build_growth_exponent"], float)
    assert payload["feature_build_vs_fastest_hand_written"] > 0
    assert payload["drift_ratio_vs_numpy"] > 0
    assert set(payload["scoring_overhead_vs_bare_predict"]) == {"hourly", "daily"}
    assert all(x > 0 for x in payload["scoring_overhead_vs_bare_predict"].values())
    # No --peers-python: the peers' figures are null, the reason says how to get them.
    assert payload["drift_speedup_vs_evidently"] is None
    assert "bench-peers" in payload["drift_speedup_vs_evidently_reason"]
    assert payload["estimation_speedup_vs_nannyml"] is None
    goals = {g["goal"]: g for g in payload["goals"]}
    assert goals["feature values identical to hand-written"]["met"] is True
    assert goals["estimated AUC vs NannyML CBPE: speed"]["met"] is None
    assert goals["event ingest (landing -> raw_events), hourly partitions"]["value"] is None  # not selected
    # No demo state here: serving and reproduce figures are null with a reason, never guessed.
    assert payload["lookup_p99_ms"] is None and payload["serving_reason"]
    assert payload["reproduce_seconds"] is None and payload["reproduce_reason"]
    assert payload["threads"]["duckdb"] == 1
    report = json.loads((tmp_path / "out" / "bench.json").read_text())
    assert report["feature_build"]["runs"][0]["comparison"]["identical"] is True
    assert report["feature_build"]["runs"][0]["micro"]["comparison"]["identical"] is True
    md = (tmp_path / "out" / "bench.md").read_text()
    assert md.startswith("# ml_assets benchmark")
    assert "| size | events | compiled query s | hand DuckDB s | numpy searchsorted s |" in md
    assert "## Goals (issue 18)" in md and "load average at start" in md
    assert (tmp_path / "out" / "feature_build.svg").read_text().startswith("<svg")
