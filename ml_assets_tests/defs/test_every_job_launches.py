"""Every job of the definitions, launched as the UI launches it: the resolved job (its own
selection, resources and default config) run on the project's persistent Dagster instance over a
copy of a small world, asserting the run succeeded. A job added to ``defs`` without a launch
here fails ``test_every_job_has_a_launch``."""

from datetime import timedelta

import pytest

from ml_assets.definitions import build_definitions
from ml_assets.defs.partitions import day_key, hour_key
from ml_assets.lib.core.catalog import Catalog
from ml_assets.lib.core.lake import read_parquet_files
from ml_assets.lib.core.workspace import Workspace
from ml_assets.lib.scoring import microbatch as mb
from ml_assets.scenarios.runner import dagster_instance
from ml_assets_tests.fixtures.serving_world import CFG, SPEC, world_copy

LAST_DAY = CFG.end - timedelta(days=1)
LAST_HOUR = CFG.end - timedelta(hours=1)
EVAL_DAY = LAST_DAY - timedelta(days=7)


def _land_microbatch(paths) -> dict:
    """The last hour's events land as a microbatch file (moved out of the hourly lake)."""
    files, _ = Catalog(paths.lake).table("raw_events").coverage(LAST_HOUR, CFG.end)
    events = read_parquet_files(files)
    for f in files:
        f.unlink()
    mb.land_events(paths, events, "launch")
    names = sorted(p.name for p in mb.landing_dir(paths).glob("*.parquet"))
    return {"run_config": {"ops": {"microbatch_scores": {"config": {"files": names}}}}}


def _first(job: str, partition: str | None = None):
    """A job a user runs before the one under test."""
    def run(defs, instance):
        result = defs.resolve_job_def(job).execute_in_process(instance=instance,
                                                              partition_key=partition)
        assert result.success, job
    return run


def _reproduce_newest(paths, defs, instance) -> dict:
    """Train through Dagster first (the world's own models were trained without its frozen
    reference set asset), then reproduce the version that run registered."""
    _first("nightly_training_job")(defs, instance)
    version = Workspace(paths, SPEC).registry.list_models(SPEC.model_name)[-1]["version"]
    return {"version": version,
            "run_config": {"ops": {"reproduce_version": {"config": {"version": version}}}}}


# job -> how the UI would launch it on the world: partition and run config (None: the job's
# defaults), after whatever a user runs first.
def _partition(key: str, after_labels: bool = False):
    def launch(paths, defs, instance) -> dict:
        if after_labels:  # monitoring reads early reports, which the labels job ingests
            _first("daily_labels_job", key)(defs, instance)
        return {"partition": key}
    return launch


LAUNCHES = {
    "daily_labels_job": _partition(day_key(LAST_DAY)),
    "daily_monitoring_job": _partition(day_key(LAST_DAY), after_labels=True),
    "docs_job": lambda paths, defs, instance: {},
    "hourly_scoring_job": _partition(hour_key(LAST_HOUR)),
    "label_evaluation_job": _partition(day_key(EVAL_DAY), after_labels=True),
    "microbatch_scoring_job": lambda paths, defs, instance: _land_microbatch(paths),
    "nightly_training_job": lambda paths, defs, instance: {},
    "reproduce_training_job": _reproduce_newest,
    "rollback_drill_job": lambda paths, defs, instance: {},
    # the world's challenger has scored since day 25: its shadow day, then the stage walk
    "rollout_job": lambda paths, defs, instance: {},
    "shadow_job": _partition(day_key(LAST_DAY)),
}
# Dagster's implicit job over every asset: the UI launches asset selections through it, which
# the scenario runs (scenarios/runner.py) exercise selection by selection.
IMPLICIT = {"__ASSET_JOB"}


def _job_names() -> list[str]:
    return sorted(j.name for j in build_definitions(SPEC, "/nonexistent-data-dir")
                  .resolve_all_job_defs())


def test_every_job_has_a_launch():
    assert set(_job_names()) - IMPLICIT == set(LAUNCHES)


@pytest.mark.parametrize("name", sorted(LAUNCHES))
def test_job_launches_and_succeeds(name, tmp_path):
    paths = world_copy(tmp_path / "w")
    defs = build_definitions(SPEC, str(paths.root))
    instance = dagster_instance(paths)
    launch = LAUNCHES[name](paths, defs, instance)
    job = defs.resolve_job_def(name)
    result = job.execute_in_process(run_config=launch.get("run_config"), instance=instance,
                                    partition_key=launch.get("partition"), raise_on_error=False)
    failures = [e.event_specific_data.error.to_string() for e in result.all_events
                if e.is_step_failure]
    assert result.success, f"{name}: {failures}"
    run = instance.get_run_by_id(result.run_id)
    assert run.is_success and run.job_name == name
    if name == "reproduce_training_job":  # the verdict: control plane and step metadata
        assert Workspace(paths, SPEC).registry.latest_drill_result(
            "reproduce", launch["version"])["ok"]
        output = next(e for e in result.all_events if e.event_type_value == "STEP_OUTPUT")
        assert output.event_specific_data.metadata["identical"].value is True
        assert not (paths.lake / "reproduce_version").exists()  # nothing went to the lake
