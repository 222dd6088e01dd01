"""Unknown values are left out of Dagster metadata: no -1 sentinel the UI would plot, no
"none" string turning a numeric series into text."""

import math

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from ml_assets.definitions import build_definitions
from ml_assets.defs.metadata import by_version, known_metadata, record_partitions
from ml_assets.defs.partitions import range_tags
from ml_assets.defs.release.rollback import build_rollback_defs
from ml_assets.defs.resources import default_resources
from ml_assets.lib.core.workspace import Workspace
from ml_assets.scenarios.runner import open_instance
from ml_assets.specs.fraud import FRAUD_SPEC


def test_unknown_values_are_omitted_and_numpy_scalars_become_python():
    md = known_metadata({"a": None, "b": math.nan, "c": np.float64("nan"), "d": pd.NA,
                         "e": np.float64(0.25), "f": np.int64(3), "g": "text",
                         "h": dg.MetadataValue.md("x"), "i": 0.0})
    assert list(md) == ["e", "f", "g", "h", "i"]
    assert type(md["e"]) is float and type(md["f"]) is int


def test_rollback_checks_omit_what_is_unknown_on_an_empty_control_plane(tmp_path):
    workspace = Workspace.open(tmp_path, FRAUD_SPEC)
    checks = {next(iter(c.check_specs)).name: c
              for c in build_rollback_defs(FRAUD_SPEC).asset_checks}
    recency = checks["drill_recency"](project=workspace)
    assert not recency.passed
    assert "age_days" not in recency.metadata  # never drilled: unknown, not -1
    assert recency.metadata["last_successful_drill"].value == "never"
    readiness = checks["rollback_readiness"](project=workspace)
    assert "previous_version" not in readiness.metadata  # no previous model: not "none"


def test_a_range_run_records_each_partitions_own_row_count(tmp_path):
    """One run over 3 days through the lake IO manager: each day's materialization carries its
    own rows (2, 0, 5), not the range's 7; a blocked day records nothing; the asset's own
    per-partition figures win over the IO manager's."""
    days = dg.DailyPartitionsDefinition(start_date="2026-01-01")
    sizes = {"2026-01-01": 2, "2026-01-02": 0, "2026-01-03": 5}

    @dg.asset(partitions_def=days, backfill_policy=dg.BackfillPolicy.single_run())
    def counted(context: dg.AssetExecutionContext) -> dict:
        out = {k: pa.table({"x": list(range(n))}) for k, n in sizes.items()}
        record_partitions(context, {"2026-01-03": out["2026-01-03"]},
                          {"2026-01-03": {"share": np.float64(0.5), "unknown": math.nan}})
        return out | {"2026-01-02": None}

    result = dg.materialize(
        [counted], instance=dg.DagsterInstance.ephemeral(),
        resources={"io_manager": default_resources(str(tmp_path), FRAUD_SPEC)["io_manager"]},
        tags=range_tags("2026-01-01", "2026-01-03"))
    md = {m.partition: m.metadata for m in result.asset_materializations_for_node("counted")}
    assert md["2026-01-01"]["rows"].value == 2 and md["2026-01-03"]["rows"].value == 5
    assert "rows" not in md["2026-01-02"]
    assert md["2026-01-03"]["share"].value == 0.5 and "unknown" not in md["2026-01-03"]
    assert not any("partitions_written" in m for m in md.values())


def test_series_are_keyed_by_model_version_with_the_role_beside_them():
    before = by_version(pd.DataFrame({"model_version": ["v1", "v2"], "role": ["champion", "challenger"],
                                      "auc": [0.9, 0.8]}), {"auc": "auc"})
    after = by_version(pd.DataFrame({"model_version": ["v2", "v1"], "role": ["champion", "previous"],
                                     "auc": [0.81, math.nan]}), {"auc": "auc"})
    assert before == {"v1/auc": 0.9, "v1/role": "champion", "champion": "v1",
                      "v2/auc": 0.8, "v2/role": "challenger"}
    # after the promotion v2's line continues as v2's (marked by `champion`), never as v1's
    assert after["champion"] == "v2" and after["v2/auc"] == 0.81 and after["v1/role"] == "previous"
    assert "v1/auc" not in known_metadata(after)


def _recorded_metadata(world) -> list[tuple[str, str | None, dict]]:
    """(asset or asset:check, partition, metadata) of every materialization and check
    evaluation the world's Dagster instance holds."""
    instance = open_instance(world["paths"])
    graph = build_definitions(world["spec"], str(world["paths"].root)).get_repository_def(
    ).asset_graph
    out = []
    for key in graph.materializable_asset_keys:
        for r in instance.fetch_materializations(key, limit=10_000).records:
            m = r.asset_materialization
            out.append((key.to_user_string(), m.partition, m.metadata))
    for check in graph.asset_check_keys:
        for r in instance.event_log_storage.get_asset_check_execution_history(check, 10_000):
            evaluation = r.event and r.event.dagster_event.event_specific_data
            if isinstance(evaluation, dg.AssetCheckEvaluation):
                out.append((f"{check.asset_key.to_user_string()}:{check.name}",
                            evaluation.partition, evaluation.metadata))
    return out


@pytest.mark.slow
def test_a_worlds_metadata_holds_no_sentinel_range_total_or_role_keyed_series(fraud_world):
    """Every materialization and check evaluation of the small world: no -1, no NaN and no
    "n/a"/"none" text where a value is unknown, no range total (``partitions_written``) and no
    series keyed by role (``champion/auc`` splices two models after a promotion)."""
    recorded = _recorded_metadata(fraud_world)
    assert len(recorded) > 1000
    bad = [(where, partition, name, v.value) for where, partition, md in recorded
           for name, v in md.items()
           if (isinstance(v.value, int | float) and not isinstance(v.value, bool)
               and (v.value == -1 or math.isnan(v.value)))
           or (isinstance(v.value, str) and v.value.strip().lower() in ("n/a", "none", "nan", "-1"))
           or name == "partitions_written"
           or name.partition("/")[0] in ("champion", "challenger", "previous") and "/" in name]
    assert not bad, bad[:10]
    # per-partition figures: each hour's rows is that hour's own count, not the range's
    hours = {p: md["rows"].value for where, p, md in recorded if where == "raw_events"}
    assert len(set(hours.values())) > 1
