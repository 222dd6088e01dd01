"""Shared fixtures: tiny seeded worlds in temp dirs. OpenMP is capped: on 2 cores
oversubscription turns a sub-second fit into a minute."""

import os
import pickle
import shutil
import signal
import warnings

os.environ.setdefault("OMP_NUM_THREADS", "1")
warnings.filterwarnings("ignore", message=".*is currently in (beta|preview).*")

from datetime import datetime, timedelta  # noqa: E402

import pytest  # noqa: E402
from dagster._core.storage.defs_state.base import (  # noqa: E402
    _current_storage as _current_defs_state_storage,
)
from filelock import FileLock  # noqa: E402

from ml_assets.lib.core.paths import DataPaths  # noqa: E402
from ml_assets.scenarios.synthetic import SyntheticConfig, write_landing  # noqa: E402
from ml_assets.specs.fraud import FRAUD_SPEC  # noqa: E402

SMALL_WORLD = SyntheticConfig(seed=3, days=30, scale=0.15)

# postgres_server (session) and postgres_database (per test): a real PostgreSQL, issue 19;
# control_plane: a fresh control-plane location on SQLite and on PostgreSQL.
pytest_plugins = ["ml_assets_tests.fixtures.postgres_server",
                  "ml_assets_tests.fixtures.control_plane"]


def small_pipeline_world(root, challenger_at: float = 1.0, now: datetime | None = None) -> dict:
    """SMALL_WORLD's landing data under ``root`` run through the demo's pipeline: the first
    model as of 3/4 of the period, the later one as of ``challenger_at`` (see ``run_pipeline``).
    With ``now``, placed as ``ml-assets demo`` places it (``demo_clock``): the same 30 days of
    generated data (same bytes), the last one ``now``'s day, landed up to ``now``'s hour. Returns paths, the demo's report,
    spec, config and end (of the data)."""
    from ml_assets.definitions import build_definitions
    from ml_assets.lib.core.workspace import Workspace
    from ml_assets.scenarios import demo_clock
    from ml_assets.scenarios.demo import run_pipeline
    from ml_assets.specs.loading import load_spec

    paths = DataPaths(root)
    cfg, end, spec = SMALL_WORLD, SMALL_WORLD.end, FRAUD_SPEC
    if now is not None:
        placed = demo_clock.placement(paths, now, cfg.days, cfg.scale, cfg.seed)
        cfg, end, spec = placed.cfg, placed.landed_until, load_spec("card_fraud", data_dir=root)
    write_landing(cfg, paths, end)
    report = run_pipeline(Workspace(paths, spec), build_definitions(spec, str(root)),
                          cfg.start, end, first_model_at=0.75, challenger_at=challenger_at,
                          log=lambda *_: None)
    return {"paths": paths, "report": report, "spec": spec, "cfg": cfg, "end": end}


@pytest.fixture(autouse=True)
def _signal_dispositions():
    """Each test leaves SIGINT and SIGTERM as it found them. An in-process Dagster run maps
    SIGTERM to whatever SIGINT does when it ends. When the test run is a background job of a
    script (``bash .ci/run &``), every worker starts with SIGINT ignored, so after such a run
    it ignored SIGTERM too, and every child it started inherited that (``make ui`` then
    outlived its SIGTERM in background full runs only)."""
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    for signum, handler in before.items():
        if handler is not None and signal.getsignal(signum) != handler:
            signal.signal(signum, handler)


@pytest.fixture(autouse=True)
def _dagster_defs_state_storage():
    """Each test leaves Dagster's current defs-state storage (a context variable that
    ``DagsterInstance.__enter__`` sets and its ``__exit__`` resets) as it found it. An instance
    entered and never exited (a context built without ``with``) leaves its storage current;
    once that instance is collected, every later definitions load in the worker fails with
    "Attempted to resolve undefined DagsterInstance weakref" (CI of stop 33: 43 tests of one
    worker: a schedule context left open in a hypothesis loop). The test that leaks fails,
    saying so, and the value is restored for the next (``fixtures/dagster_contexts.py``)."""
    before = _current_defs_state_storage.get()
    yield
    if _current_defs_state_storage.get() is not before:
        _current_defs_state_storage.set(before)
        pytest.fail("this test left Dagster's current defs-state storage set: a DagsterInstance "
                    "entered and not exited (a schedule or sensor context built for a persistent "
                    "instance without `with`; see fixtures/dagster_contexts.py)")


@pytest.fixture(scope="session")
def fraud_world(tmp_path_factory, worker_id):
    """A whole small fraud world, built once through Dagster: landing -> lake -> models ->
    scores. Under xdist the first worker to ask builds it (a file lock) and every worker gets
    its own copy: building it costs a minute or more, copying it a second."""
    if worker_id == "master":
        return small_pipeline_world(tmp_path_factory.mktemp("fraud_world"))
    shared = tmp_path_factory.getbasetemp().parent / "fraud_world_built"
    with FileLock(f"{shared}.lock"):
        if not (shared / "report.pickle").exists():
            world = small_pipeline_world(shared / "world")
            (shared / "report.pickle").write_bytes(pickle.dumps(world["report"]))
    mine = tmp_path_factory.mktemp("fraud_world")
    shutil.copytree(shared / "world", mine / "world")
    return {"paths": DataPaths(mine / "world"),
            "report": pickle.loads((shared / "report.pickle").read_bytes()),  # noqa: S301
            "spec": FRAUD_SPEC, "cfg": SMALL_WORLD,
            "end": SMALL_WORLD.start + timedelta(days=SMALL_WORLD.days)}


# The longest modules, longest first (measured in CI). `make test` runs `--dist loadscope`,
# which hands whole modules to the workers in collection order: a long module collected last
# starts when the other worker is nearly idle and the run waits for it alone.
LONGEST_FIRST = (
    "scenarios/test_incident_drill.py",
    "defs/test_schedule_simulation.py",
    "scenarios/test_stopping.py",
    "lib/training/test_reproduce.py",
)


def pytest_collection_modifyitems(items):
    """Collect :data:`LONGEST_FIRST` modules first, the rest in their own order."""
    def rank(item) -> int:
        path = item.nodeid.split("::", 1)[0].removeprefix("ml_assets_tests/")
        return LONGEST_FIRST.index(path) if path in LONGEST_FIRST else len(LONGEST_FIRST)
    items.sort(key=rank)  # stable
