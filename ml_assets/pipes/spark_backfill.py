"""``python -m ml_assets.pipes.spark_backfill``: the Spark driver that ``spark_event_features``
starts through Dagster Pipes. The extras say what to compute (``lib.features.spark_backfill``)."""

from dagster_pipes import open_dagster_pipes

from ml_assets.lib.features.spark_backfill import run_backfill


def main() -> None:
    """The Pipes entry point: read the extras, run, report the materialization (facts true of
    every partition) and, as a custom message, each partition's rows and the timings."""
    with open_dagster_pipes() as pipes:
        pipes.log.info(f"Spark feature backfill of [{pipes.extras['start']}, "
                       f"{pipes.extras['end']})")
        done = run_backfill(pipes.extras)
        pipes.report_custom_message({k: done[k] for k in
                                     ("rows", "spark_seconds", "session_seconds")})
        pipes.report_asset_materialization(metadata={
            "spark_master": done["spark_master"], "spark_version": done["spark_version"]})


if __name__ == "__main__":
    main()
