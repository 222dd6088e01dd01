"""A rerun of the demo finds no challenger once the last one was rolled out: it says so and
starts no rollout, instead of naming ``None`` as the model that stays in shadow."""

from datetime import UTC, datetime

from ml_assets.lib.core.paths import DataPaths
from ml_assets.lib.core.workspace import Workspace
from ml_assets.lib.release import rollout
from ml_assets.scenarios.demo import _roll_out
from ml_assets.specs.fraud import FRAUD_SPEC


def test_without_a_challenger_the_demo_says_so_and_starts_no_rollout(tmp_path):
    ws = Workspace.open(DataPaths(tmp_path).ensure().root, FRAUD_SPEC)
    lines: list[str] = []
    _roll_out(ws, datetime(2026, 10, 30, tzinfo=UTC), lines.append)
    assert lines == ["no challenger to roll out"]
    assert rollout.state(ws.registry) is None
