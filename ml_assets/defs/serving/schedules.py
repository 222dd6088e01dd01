"""The rollback drill runs monthly in a low-traffic window, well inside the 90-day rule."""

import dagster as dg


def build_serving_schedules(drill_job) -> list:
    return [dg.ScheduleDefinition(
        name="rollback_drill_schedule", job=drill_job, cron_schedule="0 4 1 * *",
        execution_timezone="UTC", default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Monthly rollback drill at 04:00 UTC (low traffic); a few seconds on the "
                    "previous model, then back.")]
