"""Sensor cursors the demo leaves behind: each sensor's state after one tick over what the demo
already did, stored where the daemon of ``make ui`` reads it.

Without a cursor, the first tick of ``label_arrival_sensor`` sees every label file as new and
re-evaluates every scored day (minutes), and ``docs_refresh_sensor`` re-renders the documents
the demo just rendered. A tick here records what they have seen; the runs it would request are
the demo's own runs again, so they are not launched (each is logged).

The daemon finds a sensor's state by its selector (``ui_origin.sensor_origin``). Dagster has no
public API to write a sensor's cursor from outside a tick, hence ``dagster._core`` below.
"""

from __future__ import annotations

import time
from pathlib import Path

import dagster as dg
from dagster._core.remote_origin import RemoteInstigatorOrigin
from dagster._core.scheduler.instigation import (
    InstigatorState,
    InstigatorStatus,
    InstigatorType,
    SensorInstigatorData,
)

from ml_assets.scenarios.ui_origin import WORKSPACE_FILE, sensor_origin


def tick(defs: dg.Definitions, instance: dg.DagsterInstance, sensor: dg.SensorDefinition,
         cursor: str | None):
    """One evaluation of ``sensor`` from ``cursor`` over the definitions' resources, as a
    daemon tick evaluates it; returns Dagster's ``SensorExecutionData`` (``cursor``,
    ``run_requests``, ``skip_message``).

    The context is closed on return: for a persistent instance it opens its own copy, and
    an open one left behind stays Dagster's current defs-state storage after it is collected
    (the next definitions load then fails on a dead weakref)."""
    with dg.build_sensor_context(instance=instance, cursor=cursor, resources=defs.resources,
                                 repository_def=defs.get_repository_def()) as context:
        return sensor.evaluate_tick(context)


def stored_cursor(instance: dg.DagsterInstance, origin: RemoteInstigatorOrigin) -> str | None:
    """The cursor the instance holds for the sensor of ``origin`` (None without one)."""
    state = instance.get_instigator_state(origin.get_id(), origin.get_selector().get_id())
    data = state.instigator_data if state else None
    return data.cursor if isinstance(data, SensorInstigatorData) else None


def settle_sensors(defs: dg.Definitions, instance: dg.DagsterInstance, log=print,
                   workspace: Path = WORKSPACE_FILE) -> dict[str, str | None]:
    """Tick every sensor of ``defs`` once over the work already done and store its cursor
    (status as declared in code), so the daemon's first tick continues from there.

    Parameters
    ----------
    defs : dagster.Definitions
        The definitions the demo ran (``build_definitions(spec, data_dir)``).
    instance : dagster.DagsterInstance
        The instance ``make ui`` reads.
    log : callable
        Receives one line per run request not launched.
    workspace : pathlib.Path
        The workspace file ``make ui`` serves.

    Returns
    -------
    dict
        Sensor name -> the cursor stored (None for a sensor that keeps none).

    Raises
    ------
    FileNotFoundError, ValueError
        As ``ui_origin.sensor_origin``.
    """
    cursors = {}
    for sensor in defs.sensors or []:
        origin = sensor_origin(sensor.name, workspace)
        data = tick(defs, instance, sensor, stored_cursor(instance, origin))
        for request in data.run_requests or []:
            log(f"{sensor.name}: not requesting {request.run_key or 'a run'} (the demo ran it)")
        now = time.time()
        state = InstigatorState(origin, InstigatorType.SENSOR, InstigatorStatus.DECLARED_IN_CODE,
                                SensorInstigatorData(
                                    last_tick_timestamp=now, cursor=data.cursor,
                                    min_interval=sensor.minimum_interval_seconds,
                                    sensor_type=sensor.sensor_type))
        if instance.get_instigator_state(origin.get_id(), origin.get_selector().get_id()):
            instance.update_instigator_state(state)
        else:
            instance.add_instigator_state(state)
        cursors[sensor.name] = data.cursor
    return cursors
