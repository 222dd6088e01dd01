"""The one runner the scenarios (demo, incident replay, six-weeks drill) use around Dagster: open
the instance, run a selection of the real definitions in process, report failures.

The persistent instance is opened from its directory (``DataPaths.dagster_home``) with
``DagsterInstance.from_config``; nothing here writes ``os.environ``. ``make demo`` and ``make ui``
set ``DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS=1`` for their processes (one planned
event per asset of a range run instead of one per partition); without it a range run writes
more events but marks the partitions of a failed run as failed.
"""

from __future__ import annotations

import time
from datetime import datetime

import dagster as dg

from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.paths import DataPaths

QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


class StepFailed(RuntimeError):
    """A scenario run failed: a step raised, or a check failed while checks were binding."""


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
    paths.dagster_home.mkdir(parents=True, exist_ok=True)
    config = paths.dagster_home / "dagster.yaml"
    if not config.exists():
        config.write_text("telemetry:\n  enabled: false\n")
    return dg.DagsterInstance.from_config(str(paths.dagster_home))


def run(defs: dg.Definitions, instance: dg.DagsterInstance, selection: list[str],
        tags: dict | None = None, run_config: dict | None = None) -> dg.ExecuteInProcessResult:
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

    Returns
    -------
    dagster.ExecuteInProcessResult
        The run's result; failures are not raised (``raise_on_error=False``).
    """
    return dg.materialize(
        assets=[*defs.assets, *(defs.asset_checks or [])],
        selection=dg.AssetSelection.assets(*selection),
        instance=instance,
        resources=defs.resources,
        tags=tags or {},
        run_config={**QUIET_LOGS, **(run_config or {})},
        raise_on_error=False,
    )


def materialize(defs: dg.Definitions, instance: dg.DagsterInstance, selection: list[str],
                tags: dict | None = None, run_config: dict | None = None,
                fail_on_checks: bool = True) -> float:
    """:func:`run`, raising when it failed.

    Parameters
    ----------
    defs, instance, selection, tags, run_config
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
    result = run(defs, instance, selection, tags, run_config)
    failed_checks = [e for e in result.get_asset_check_evaluations()
                     if not e.passed and fail_on_checks]
    if not result.success or failed_checks:
        failures = [step_failure_message(e) for e in result.all_events if e.is_step_failure]
        failures += [f"check {e.check_name} failed: {e.description}" for e in failed_checks]
        raise StepFailed(f"materializing {selection} failed: {'; '.join(failures)}")
    return time.perf_counter() - t0


def step_failure_message(event: dg.DagsterEvent) -> str:
    """``<step key>: <message>`` of a step failure, from the user's (innermost) exception."""
    error = event.event_specific_data.error
    while error.cause is not None:
        error = error.cause
    return f"{event.step_key}: {error.message.strip()}"


def training_config(as_of: datetime, spec: DatasetSpec) -> dict:
    """Run config training the model as of ``as_of`` over the spec's training window (days)."""
    return {"ops": {"training_set": {"config": {"as_of": as_of.isoformat(),
                                                "window_days": spec.model.training_window_days}}}}
