"""The human output of the report commands says what the JSON says: ``models`` shows each
version's card essentials and ``models VERSION`` one whole card."""

import json

import pytest

from ml_assets.cli import main as cli
from ml_assets_tests.fixtures.serving_world import world_copy


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return world_copy(tmp_path_factory.mktemp("reports") / "w")


def _run(paths, capsys, *args) -> tuple[int, str, str]:
    code = cli.main(["--data-dir", str(paths.root), *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_models_shows_every_versions_card_essentials(world, capsys):
    _, raw, _ = _run(world, capsys, "models", "--json")
    cards = json.loads(raw)
    code, text, _ = _run(world, capsys, "models")
    assert code == 0
    for card in cards:
        block = text.split(card["version"], 1)[1].split("\n", 2)
        line = block[0] + block[1]
        held = card["metrics"]["held_out"]
        for essential in (card["aliases"][0], card["training_window"]["start"][:10],
                          card["training_window"]["end"][:10], card["label_cutoff"][:10],
                          f"AUC {held['auc']:.4f}", f"PR-AUC {held['pr_auc']:.4f}",
                          card["dataset_sha256"][:12], card["code_commit"][:12]):
            assert essential in line, (essential, line)


def test_models_version_shows_the_whole_card_and_refuses_an_unknown_one(world, capsys):
    code, text, _ = _run(world, capsys, "models", "fraud-v2")
    assert code == 0
    assert text.startswith("fraud-v2 (champion)\n")
    for line in ("  dataset_sha256: ", "  metrics:\n    frozen_reference:\n", "      pr_auc: ",
                 "  rollout_history:\n    - ts=", "    card_seconds_since_prev: "):
        assert line in text, line
    _, raw, _ = _run(world, capsys, "models", "fraud-v2", "--json")
    assert json.loads(raw)["version"] == "fraud-v2"
    code, _, err = _run(world, capsys, "models", "fraud-v9")
    assert code == 1 and "no model version 'fraud-v9'" in err
