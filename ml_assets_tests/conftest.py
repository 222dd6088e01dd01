"""Shared fixtures: tiny seeded worlds in temp dirs. OpenMP is capped: on 2 cores
oversubscription turns a sub-second fit into a minute."""

import os
import warnings

os.environ.setdefault("OMP_NUM_THREADS", "1")
warnings.filterwarnings("ignore", message=".*is currently in (beta|preview).*")

from datetime import timedelta  # noqa: E402

import pytest  # noqa: E402

from ml_assets.lib.core.paths import DataPaths  # noqa: E402
from ml_assets.scenarios.synthetic import SyntheticConfig, write_landing  # noqa: E402

SMALL_WORLD = SyntheticConfig(seed=3, days=30, scale=0.15)


@pytest.fixture(scope="session")
def fraud_world(tmp_path_factory):
    """A whole small fraud world, built once through Dagster: landing -> lake -> models -> scores."""
    from ml_assets.definitions import build_definitions
    from ml_assets.lib.core.workspace import Workspace
    from ml_assets.scenarios.demo import run_pipeline
    from ml_assets.specs.fraud import FRAUD_SPEC

    root = tmp_path_factory.mktemp("fraud_world")
    paths = DataPaths(root)
    write_landing(SMALL_WORLD, paths)
    report = run_pipeline(Workspace(paths, FRAUD_SPEC), build_definitions(FRAUD_SPEC, str(root)),
                          SMALL_WORLD.start, SMALL_WORLD.end, first_model_at=0.75,
                          log=lambda *_: None)
    return {"paths": paths, "report": report, "spec": FRAUD_SPEC, "cfg": SMALL_WORLD,
            "end": SMALL_WORLD.start + timedelta(days=SMALL_WORLD.days)}
