"""Serving jobs: the rollback drill and microbatch scoring."""

import dagster as dg


def build_serving_jobs() -> tuple:
    drill = dg.define_asset_job(
        "rollback_drill", selection=dg.AssetSelection.assets("rollback_drills"),
        description="Flip the kill switch, verify through HTTP that the previous model answers, "
                    "flip back, record the drill; then check drill recency and readiness.")
    microbatch = dg.define_asset_job(
        "microbatch_scoring_job", selection=dg.AssetSelection.assets("microbatch_scores"),
        description="Score one microbatch of landed event files with every live model.")
    return drill, microbatch
