"""Item 4 of issue 15 through the real job: a microbatch file name with ``../`` pointing at a
lake partition fails the run naming it, is never retried, and the partition stays put."""

from datetime import timedelta

import dagster as dg
import pytest

from ml_assets.definitions import build_definitions
from ml_assets.lib.core.catalog import Catalog
from ml_assets.lib.scoring import microbatch as mb
from ml_assets_tests.fixtures.serving_world import CFG, SPEC, world_copy


@pytest.mark.parametrize("name", ["../../lake/raw_events/{stem}.parquet",
                                  "{root}/lake/raw_events/{stem}.parquet",
                                  "done/../../../lake/raw_events/{stem}.parquet"])
def test_X09_microbatch_job_refuses_a_file_name_outside_its_landing_dir(tmp_path, name):
    paths = world_copy(tmp_path / "w")
    partition = Catalog(paths.lake).table("raw_events").path(CFG.end - timedelta(hours=1))
    before = partition.read_bytes()
    name = name.format(stem=partition.stem, root=paths.root)
    defs = dg.Definitions.merge(build_definitions(SPEC, str(paths.root)), dg.Definitions(
        jobs=[dg.define_asset_job("retrying_microbatch", selection=["microbatch_scores"],
                                  op_retry_policy=dg.RetryPolicy(max_retries=2))]))
    instance = dg.DagsterInstance.ephemeral()
    result = defs.resolve_job_def("retrying_microbatch").execute_in_process(
        run_config={"ops": {"microbatch_scores": {"config": {"files": [name]}}}},
        instance=instance, raise_on_error=False)
    assert not result.success
    failure = result.failure_data_for_node("microbatch_scores")
    assert "microbatch file" in failure.error.message and name in failure.error.message
    kinds = [e.event_type_value for e in result.all_events]
    assert kinds.count("STEP_START") == 1 and "STEP_UP_FOR_RETRY" not in kinds  # never retried
    assert partition.read_bytes() == before  # the lake partition stayed where it was
    assert not (mb.landing_dir(paths) / "done").exists()
    assert not (paths.lake / "microbatch_scores").exists()
