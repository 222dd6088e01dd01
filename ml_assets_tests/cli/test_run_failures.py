"""``ml-assets run STEP`` failures (issue 16, item 3): a few plain lines naming the step, its
partitions and what to run first; exit 1, no Dagster stack trace on the terminal."""

from datetime import timedelta

from ml_assets.cli import main as cli
from ml_assets.cli.runs import failure_text
from ml_assets.defs.partitions import range_tags
from ml_assets.scenarios.runner import Failure, StepFailed, _where
from ml_assets.specs.loading import load_spec

SPEC = load_spec("card_fraud")


def test_features_before_ingest_says_what_to_run_first_without_a_trace(tmp_path, capfd):
    lo = SPEC.start_utc + timedelta(days=4)
    code = cli.main(["--data-dir", str(tmp_path / "d"), "run", "features", "--from",
                     f"{lo:%Y-%m-%d}", "--to", f"{lo + timedelta(days=1):%Y-%m-%d}"])
    out, err = capfd.readouterr()
    assert code == 1 and not out
    assert "Traceback" not in err and "Stack Trace" not in err and "dagster - ERROR" not in err
    lines = err.splitlines()
    assert lines[0].startswith(f"features {lo:%Y-%m-%d}-00:00..{lo:%Y-%m-%d}-23:00: "
                               "event_features: raw_events is missing")
    # from the spec's start: the features' look-back reaches there
    assert lines[1] == (f"run first: `ml-assets run ingest --from {SPEC.start_utc:%Y-%m-%d} "
                        f"--to {lo + timedelta(days=1):%Y-%m-%d}`")
    assert lines[2] == ("(steps done: none; the failed step may have written some partitions: "
                        "`ml-assets status`)") and len(lines) == 3


def test_failures_are_worded_per_step_and_check_with_the_runs_to_do_first_in_pipeline_order():
    lo = SPEC.start_utc + timedelta(days=4)
    exc = StepFailed("materializing failed", [
        Failure("prediction_drift", "MissingUpstreamError",
                "batch_scores lacks 24 hourly partition(s) in [2026-07-05, 2026-07-06) (first: "
                "2026-07-05-00:00); materialize batch_scores for those hours first"),
        Failure("business_metric", "MissingUpstreamError",
                "no raw_labels partitions yet: materialize raw_labels first"),
        Failure("event_contract", "check", "3 row(s) quarantined"),
        Failure("event_contract", "check", "3 row(s) quarantined"),  # another partition's
    ])
    text = failure_text("monitor 2026-07-05..2026-07-05", exc, SPEC, lo, lo + timedelta(days=1))
    assert text.splitlines() == [
        "monitor 2026-07-05..2026-07-05: prediction_drift: batch_scores lacks 24 hourly "
        "partition(s) in [2026-07-05, 2026-07-06) (first: 2026-07-05-00:00); materialize "
        "batch_scores for those hours first",
        "monitor 2026-07-05..2026-07-05: business_metric: no raw_labels partitions yet: "
        "materialize raw_labels first",
        "monitor 2026-07-05..2026-07-05: check event_contract failed: 3 row(s) quarantined "
        "(2 partitions)",
        "run first: `ml-assets run ingest --from 2026-07-05 --to 2026-07-06`, then "
        "`ml-assets run score --from 2026-07-05 --to 2026-07-06`",
    ]


def test_a_stop_message_names_a_range_from_its_start_to_its_end():
    """Tags sort end before start; the message said ``2026-03-31-23:00..2026-01-01-00:00``."""
    tags = range_tags("2026-01-01-00:00", "2026-03-31-23:00")
    assert _where(["raw_events"], tags) == (
        "materializing ['raw_events'] (partitions 2026-01-01-00:00..2026-03-31-23:00)")
    assert _where(["x"], {"dagster/partition": "2026-01-01"}) == (
        "materializing ['x'] (partitions 2026-01-01)")
