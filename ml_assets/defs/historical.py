"""Clock-following automation of a historical dataset (a spec with an ``end``).

Nothing lands after the end, so the schedules and sensors that follow the clock start
STOPPED, and a tick of one turned on anyway skips with the reason instead of waiting forever
for a period past the end. A live dataset (no ``end``) keeps them RUNNING and never skips
here."""

from datetime import datetime

import dagster as dg

from ml_assets.lib.core.datasets import DatasetSpec


def schedule_status(spec: DatasetSpec) -> dg.DefaultScheduleStatus:
    """RUNNING for a live dataset, STOPPED for a historical one."""
    return (dg.DefaultScheduleStatus.RUNNING if spec.end is None
            else dg.DefaultScheduleStatus.STOPPED)


def sensor_status(spec: DatasetSpec) -> dg.DefaultSensorStatus:
    """RUNNING for a live dataset, STOPPED for a historical one."""
    return (dg.DefaultSensorStatus.RUNNING if spec.end is None
            else dg.DefaultSensorStatus.STOPPED)


def past_end(spec: DatasetSpec, target: datetime) -> dg.SkipReason | None:
    """The skip of a tick whose target period starts at ``target`` (UTC) at or past the end of
    a historical dataset; None when the tick may run (a live dataset, or a period before the
    end, e.g. a replayed tick)."""
    end = spec.end_utc
    if end is None or target < end:
        return None
    return dg.SkipReason(f"{spec.name} is a historical dataset (ends at {end.isoformat()}): "
                         f"nothing lands for {target.isoformat()}")
