"""The one runner the scenarios (demo, incident replay, six-weeks drill) use around Dagster: open
the instance, run a selection of the real definitions in process, report failures.

The persistent instance is opened from its directory (``DataPaths.dagster_home``) with
``DagsterInstance.from_config``; nothing here writes ``os.environ``. Its event log is
``event_log.PooledSqliteEventLogStorage`` (one planned event per asset of a range run, engines
kept open), named in the ``dagster.yaml`` this module writes.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import dagster as dg
import yaml
from dagster._core.definitions.job_base import InMemoryJob
from dagster._core.execution.api import create_execution_plan, execute_run

from ml_assets.defs.partitions import RANGE_END_TAG, RANGE_START_TAG
from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.paths import (
    DataPaths,
    atomic_write_bytes,
    pid_alive,
    sweep_stale_temp_files,
)
from ml_assets.lib.core.stopping import raise_if_stopped
from ml_assets.scenarios.ui_origin import job_origin

QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
# For a command that reports failures itself (``StepFailed.failures``, the CLI): Dagster's
# console logger would print each step failure's stack trace first. The run's event log keeps
# the full error either way.
SILENT_LOGS = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


@dataclass(frozen=True)
class Failure:
    """One reason a run failed: a step's innermost error, or a failed check."""

    step: str  # the step key, or the check's name
    error: str  # the innermost exception's class name; "check" for a failed check
    message: str  # that exception's message (the check's description), stripped

    def __str__(self) -> str:
        return (f"check {self.step} failed: {self.message}" if self.error == "check"
                else f"{self.step}: {self.message}")


class StepFailed(RuntimeError):
    """A scenario run failed: a step raised, or a check failed while checks were binding.
    ``failures`` holds each reason (:class:`Failure`), for a caller that words them itself."""

    def __init__(self, message: str, failures: list[Failure] = ()):
        super().__init__(message)
        self.failures = list(failures)


# Run tags naming the process that executes a run in process, so a later runner can tell a run
# whose process was killed (kill -9 leaves it STARTED) from one still going.
PID_TAG, HOST_TAG = "ml_assets/pid", "ml_assets/host"

# The daemon (`make ui`) fails runs stuck starting or cancelling and any run past the maximum
# runtime: the only way it learns of a killed run under the default run launcher, which has no
# worker health check. Runs of the scenarios are also failed by `fail_orphaned_runs`.
RUN_MONITORING = {"enabled": True, "start_timeout_seconds": 180, "cancel_timeout_seconds": 180,
                  "max_runtime_seconds": 6 * 3600, "poll_interval_seconds": 60}
# Dagster's SQLite event log keeping its engines open (``event_log.py``): recording a partition
# costs a few milliseconds instead of 16-28.
EVENT_LOG_STORAGE = {"module": "ml_assets.scenarios.event_log",
                     "class": "PooledSqliteEventLogStorage"}


def dagster_instance(paths: DataPaths) -> dg.DagsterInstance:
    """The persistent instance under ``paths.dagster_home``, the one ``make ui`` reads.

    Parameters
    ----------
    paths : DataPaths
        Runtime state root; its ``dagster_home`` is created (with telemetry off) if missing.

    Returns
    -------
    dagster.DagsterInstance
        A persistent SQLite instance opened from that directory (``DAGSTER_HOME`` untouched).
    """
    instance = open_instance(paths)
    fail_orphaned_runs(instance)
    sweep_stale_temp_files(paths)
    return instance


def open_instance(paths: DataPaths) -> dg.DagsterInstance:
    """The persistent instance under ``paths.dagster_home``, its ``dagster.yaml`` written first
    (``write_instance_config``): with ``DAGSTER_HOME`` set, Dagster warns on every open of a
    directory without one, so each command would print that warning.

    Parameters
    ----------
    paths : DataPaths
        Runtime state root.

    Returns
    -------
    dagster.DagsterInstance
        A persistent SQLite instance (``DAGSTER_HOME`` untouched).
    """
    write_instance_config(paths)
    return dg.DagsterInstance.from_config(str(paths.dagster_home))


def write_instance_config(paths: DataPaths, profile: Path | None = None) -> None:
    """``dagster.yaml`` under ``paths.dagster_home``: telemetry off, run monitoring on
    (:data:`RUN_MONITORING`) and the event log on :data:`EVENT_LOG_STORAGE` under this home.
    Sections already there are kept, except that event log's directory: it follows the data
    directory when that is copied or moved (a copy must not write into the original's log).
    ``make ui`` writes it through ``python -m`` this module.

    Parameters
    ----------
    paths : DataPaths
        Runtime state root.
    profile : pathlib.Path, optional
        A deployment profile (``deploy/postgres/dagster.yaml``); default
        ``$ML_ASSETS_DAGSTER_PROFILE`` when set. Its sections replace those of the same name;
        with its own ``storage`` the SQLite event log section is dropped.

    Raises
    ------
    FileNotFoundError
        When the profile does not exist (named, with the variable it came from).
    ValueError
        When the profile is not a YAML mapping.
    """
    paths.dagster_home.mkdir(parents=True, exist_ok=True)
    path = paths.dagster_home / "dagster.yaml"
    config = (yaml.safe_load(path.read_text()) or {}) if path.exists() else {
        "telemetry": {"enabled": False}}
    wanted = {**config, **_profile(profile)}
    if "storage" in wanted and wanted.get("event_log_storage", {}).get("class") == \
            EVENT_LOG_STORAGE["class"]:
        del wanted["event_log_storage"]  # Dagster refuses `storage` next to a storage section
    wanted.setdefault("run_monitoring", RUN_MONITORING)
    ours = wanted.get("event_log_storage", EVENT_LOG_STORAGE)
    if "storage" not in wanted and {k: ours.get(k) for k in ("module", "class")} == EVENT_LOG_STORAGE:
        wanted["event_log_storage"] = {
            **EVENT_LOG_STORAGE,
            "config": {"base_dir": str(paths.dagster_home / "history" / "runs")}}
    if wanted != config or not path.exists():
        atomic_write_bytes(path, yaml.safe_dump(wanted, sort_keys=False).encode())


PROFILE_ENV = "ML_ASSETS_DAGSTER_PROFILE"


def _profile(profile: Path | None) -> dict:
    """The sections of the deployment profile (``profile``, else ``$ML_ASSETS_DAGSTER_PROFILE``);
    empty when neither is given."""
    source = "the profile" if profile else f"${PROFILE_ENV}"
    profile = profile or (Path(os.environ[PROFILE_ENV]) if os.environ.get(PROFILE_ENV) else None)
    if profile is None:
        return {}
    if not profile.is_file():
        raise FileNotFoundError(f"{source}: no Dagster instance profile at {profile}")
    sections = yaml.safe_load(profile.read_text())
    if not isinstance(sections, dict):
        raise ValueError(f"{source} {profile}: not a YAML mapping of dagster.yaml sections")
    return sections


def fail_orphaned_runs(instance: dg.DagsterInstance) -> list[str]:
    """Mark failed the STARTED runs this runner executed in a process that no longer exists
    on this host (killed with SIGKILL, or the machine's power went); returns their run ids."""
    failed = []
    for record in instance.get_run_records(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])):
        run = record.dagster_run
        pid = run.tags.get(PID_TAG)
        if (pid and run.tags.get(HOST_TAG) == socket.gethostname()
                and int(pid) != os.getpid() and not pid_alive(int(pid))):
            instance.report_run_failed(run, f"its process {pid} is gone (killed); the run "
                                            "did not finish")
            failed.append(run.run_id)
    return failed


def run(defs: dg.Definitions, instance: dg.DagsterInstance, selection: list[str],
        tags: dict | None = None, run_config: dict | None = None,
        job: str | None = None) -> dg.ExecuteInProcessResult | dg.JobExecutionResult:
    """One in-process run of ``selection`` (with its checks) over the definitions' resources.

    Parameters
    ----------
    defs : dagster.Definitions
        The project's definitions (``build_definitions(spec, data_dir)``).
    instance : dagster.DagsterInstance
        Where the run is recorded (persistent or ephemeral).
    selection : list of str
        Asset keys to materialize; their checks run with them.
    tags : dict, optional
        Run tags, e.g. ``dagster/partition`` or a partition range (``range_tags``).
    run_config : dict, optional
        Merged over quiet console logging.
    job : str, optional
        A job of ``defs`` holding every asset of ``selection``: the run carries its name and
        origin (the UI's run list and Overview timeline), as a run launched from the job's page
        does. Default: an unnamed asset run (``__ephemeral_asset_job__``).

    Returns
    -------
    dagster.ExecuteInProcessResult or dagster's JobExecutionResult
        The run's result; failures are not raised.

    Raises
    ------
    dagster.DagsterInvariantViolationError
        When ``job`` is not a job of ``defs``.
    """
    where = _where(selection, tags)
    raise_if_stopped(f"before {where}")
    run_tags = {**(tags or {}), PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}
    run_config = {**QUIET_LOGS, **(run_config or {})}
    try:
        if job is not None:
            result = _run_job(defs.resolve_job_def(job), instance, selection, run_tags,
                              run_config)
        else:
            result = dg.materialize(
                assets=[*defs.assets, *(defs.asset_checks or [])],
                selection=dg.AssetSelection.assets(*selection),
                instance=instance, resources=defs.resources, tags=run_tags,
                run_config=run_config, raise_on_error=False)
    except dg.DagsterExecutionInterruptedError:  # a signal during an op: the run is failed
        raise_if_stopped(f"during {where}")
        raise
    raise_if_stopped(f"after {where}")
    return result


def _run_job(job: dg.JobDefinition, instance: dg.DagsterInstance, selection: list[str],
             tags: dict, run_config: dict):
    """Run ``selection`` of ``job`` in this process as a run the UI attributes to that job of
    ``workspace.yaml``'s code location (``ui_origin.job_origin``): what ``execute_in_process``
    does, plus the origin, which the Overview timeline needs to show the run. Returns Dagster's
    ``JobExecutionResult`` (failures not raised)."""
    keys = [dg.AssetKey.from_user_string(a) for a in selection]
    subset = job.as_ephemeral_job(resource_defs={}, input_values={}, asset_selection=keys)
    plan = create_execution_plan(subset, run_config=run_config, instance_ref=(
        instance.get_ref() if instance.is_persistent else None))
    dagster_run = instance.create_run_for_job(
        job_def=subset, execution_plan=plan, run_config=run_config,
        tags={**subset.run_tags, **tags}, remote_job_origin=job_origin(job.name))
    return execute_run(InMemoryJob(subset), dagster_run, instance)


def _where(selection: list[str], tags: dict | None) -> str:
    """``materializing [...] (partitions a..b)``: what a run did, for the stop message."""
    tags = tags or {}
    parts = [tags[RANGE_START_TAG], tags[RANGE_END_TAG]] if RANGE_START_TAG in tags else \
        [v for k, v in tags.items() if "partition" in k]
    return f"materializing {selection}" + (f" (partitions {'..'.join(parts)})" if parts else "")


def materialize(defs: dg.Definitions, instance: dg.DagsterInstance, selection: list[str],
                tags: dict | None = None, run_config: dict | None = None,
                fail_on_checks: bool = True, job: str | None = None) -> float:
    """:func:`run`, raising when it failed.

    Parameters
    ----------
    defs, instance, selection, tags, run_config, job
        As for :func:`run`.
    fail_on_checks : bool, default True
        Whether a failed check fails the call. ``False`` is for monitoring, whose alarms are
        findings, not failures (a failed blocking check still fails its step).

    Returns
    -------
    float
        Wall-clock seconds of the run.

    Raises
    ------
    StepFailed
        With each failing step's innermost error and each failed check's description.
    """
    t0 = time.perf_counter()
    result = run(defs, instance, selection, tags, run_config, job)
    failed_checks = [e for e in result.get_asset_check_evaluations()
                     if not e.passed and fail_on_checks]
    if not result.success or failed_checks:
        failures = [step_failure(e) for e in result.all_events if e.is_step_failure]
        failures += [Failure(e.check_name, "check", (e.description or "").strip())
                     for e in failed_checks]
        raise StepFailed(f"materializing {selection} failed: {'; '.join(map(str, failures))}",
                         failures)
    return time.perf_counter() - t0


def step_failure(event: dg.DagsterEvent) -> Failure:
    """The user's (innermost) exception of a step failure event."""
    error = event.event_specific_data.error
    while error.cause is not None:
        error = error.cause
    # The message starts "package.module.ErrorClass: ", as Python prints an exception.
    head, sep, rest = error.message.strip().partition(": ")
    named = sep and head.rsplit(".", 1)[-1] == error.cls_name
    return Failure(event.step_key, error.cls_name or "", rest if named else error.message.strip())


def step_failure_message(event: dg.DagsterEvent) -> str:
    """``<step key>: <message>`` of a step failure, from the user's (innermost) exception."""
    return str(step_failure(event))


def training_config(as_of: datetime, spec: DatasetSpec) -> dict:
    """Run config training the model as of ``as_of`` over the spec's training window (days)."""
    return training_run_config({"as_of": as_of.isoformat(),
                                "window_days": spec.model.training_window_days})


def training_run_config(fields: dict) -> dict:
    """Run config of the training assets from ``TrainingConfig`` fields (``defs/training``)."""
    return {"ops": {"training_set": {"config": fields}}}


def exec_stoppable(command: list[str]) -> None:
    """Replace this process with ``command``, SIGINT and SIGTERM back at their defaults.

    A process started where SIGINT is ignored (in the background of a script, under nohup, by
    some CI runners) inherits the ignore, and ``dagster dev`` then ignores SIGTERM too: it maps
    SIGTERM to whatever SIGINT does. Reset here, both stop it within seconds.

    Parameters
    ----------
    command : list of str
        Program and arguments, looked up on ``PATH``.
    """
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_DFL)
    os.execvp(command[0], command)  # noqa: S606 - the Makefile's own command line


if __name__ == "__main__":  # `make ui`: python -m ml_assets.scenarios.runner DATA_DIR [COMMAND]
    write_instance_config(DataPaths(Path(sys.argv[1])))
    if len(sys.argv) > 2:
        exec_stoppable(sys.argv[2:])
