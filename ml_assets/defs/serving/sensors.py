"""Microbatch sensor: every 30 s, new files in landing/microbatch/ become scoring runs of
100-1000 rows. The cursor is the last file requested, so each file is scored once."""

import json
from datetime import UTC, datetime

import dagster as dg

from ml_assets.defs.resources import Project
from ml_assets.lib.scoring.microbatch import batch_id, pending_files, plan_batches


def build_serving_sensors(microbatch_job) -> list:
    @dg.sensor(name="microbatch_landing_sensor", job=microbatch_job, minimum_interval_seconds=30,
               default_status=dg.DefaultSensorStatus.RUNNING,
               description="Scores event files landing in landing/microbatch/ in batches of "
                           "100-1000 rows; a partial batch waits at most 2 minutes.")
    def microbatch_landing_sensor(context: dg.SensorEvaluationContext, project: Project):
        cursor = tuple(json.loads(context.cursor)) if context.cursor else None
        pending = pending_files(project.paths)
        batches, new_cursor = plan_batches(pending, cursor, datetime.now(UTC))
        if not batches:
            waiting = sum(f.rows for f in pending if cursor is None
                          or (f.mtime_ns, f.name) > cursor)
            return dg.SkipReason(f"{waiting} row(s) waiting; scoring at 100 rows or after 2 min")
        context.update_cursor(json.dumps(list(new_cursor)))
        return [dg.RunRequest(run_key=batch_id(names), run_config={
            "ops": {"microbatch_scores": {"config": {"files": names}}}}) for names in batches]

    return [microbatch_landing_sensor]
