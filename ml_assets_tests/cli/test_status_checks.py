"""``ml-assets status`` judges a partitioned check over all its partitions (issue 16, item 1): an
hour that failed its contract stays failing after a later hour passed."""

import dagster as dg

from ml_assets.cli import status_report
from ml_assets.cli.status_report import check_line, latest_checks
from ml_assets.lib.core.paths import DataPaths
from ml_assets.scenarios.runner import open_instance

DAYS = dg.DailyPartitionsDefinition(start_date="2026-01-01")
BAD = {"2026-01-01", "2026-01-02"}


@dg.asset(partitions_def=DAYS)
def orders() -> None:
    return None


@dg.asset_check(asset=orders, partitions_def=DAYS)
def order_contract(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    day = context.partition_key
    # the first bad day only warns, the second is an error: the check is FAILING
    severity = dg.AssetCheckSeverity.WARN if day == "2026-01-01" else dg.AssetCheckSeverity.ERROR
    return dg.AssetCheckResult(passed=day not in BAD, description=f"{day}: 3 rows quarantined",
                               severity=severity)


@dg.asset
def summary() -> None:
    return None


@dg.asset_check(asset=summary)
def summary_ok() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=True, description="fine")


def test_an_earlier_failed_partition_is_reported_after_a_later_one_passed(tmp_path,
                                                                          monkeypatch):
    paths = DataPaths(tmp_path / "d")
    defs = dg.Definitions(assets=[orders, summary], asset_checks=[order_contract, summary_ok])
    instance = open_instance(paths)
    for day in ["2026-01-01", "2026-01-02", "2026-01-03"]:  # the newest day passes
        dg.materialize([orders, order_contract], instance=instance, partition_key=day)
    dg.materialize([summary, summary_ok], instance=instance)

    monkeypatch.setattr(status_report, "FAILING_NAMED", 1)
    contract, summary_check = latest_checks(paths, defs)
    assert contract == {
        "asset": "orders", "check": "order_contract", "passed": False, "severity": "ERROR",
        "description": "2026-01-02: 3 rows quarantined", "partitions": 3,
        "failing_partitions": 2, "first_failing": ["2026-01-01"],
        "latest_partition": "2026-01-03"}
    assert check_line(contract) == ("FAILING orders:order_contract (2 of 3 partition(s) failing: "
                                    "2026-01-01 and 1 more) - 2026-01-02: 3 rows quarantined")
    assert check_line({**contract, "severity": "WARN"}).startswith("WARNING orders:order_contract")
    assert summary_check["passed"] and summary_check["partitions"] is None
    assert summary_check["description"] == "fine"


def test_status_counts_the_partitions_missing_between_the_first_and_the_latest(tmp_path):
    """A range whose ingest failed leaves a hole that 'N partitions, latest X' hides."""
    from datetime import UTC, datetime, timedelta

    import pandas as pd

    from ml_assets.cli.status_report import lake_partitions
    from ml_assets.lib.core.catalog import RAW_LABELS, Catalog

    catalog = Catalog(tmp_path, "daily")
    day = datetime(2026, 1, 5, tzinfo=UTC)
    for d in (0, 1, 4, 6):  # days 2, 3 and 5 never written
        catalog.table(RAW_LABELS).write(day + timedelta(days=d), pd.DataFrame({"x": [1]}))
    labels = lake_partitions(catalog, day + timedelta(days=7))[RAW_LABELS]
    assert (labels["partitions"], labels["gaps"], labels["first_gap"], labels["behind"]) == (
        4, 3, "2026-01-07", 0)
    assert lake_partitions(Catalog(tmp_path / "empty"), day)[RAW_LABELS]["gaps"] == 0
