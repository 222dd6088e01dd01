"""`reproduce_training_job`: retrain a registered version from raw landing data and report whether
the rerun is bit-identical (dataset, artifact, frozen-reference predictions) and, if not, why."""

import dagster as dg

from ml_assets.defs.metadata import known_metadata
from ml_assets.lib.core.workspace import Workspace
from ml_assets.lib.training.reproduce import reproduce


class ReproduceConfig(dg.Config):
    version: str
    """The registered version to retrain, e.g. ``fraud-v3`` (`ml-assets models` lists them)."""


def record_reproduction(project: dg.ResourceParam[Workspace], result) -> None:
    project.registry.record_drill_result("reproduce", result.version, result.identical,
                                         result.as_dict())


@dg.op(description="Rebuild raw -> features -> training set in a scratch directory, retrain "
                   "with the recorded seed and compare SHA-256s and frozen-reference scores.")
def reproduce_version(context: dg.OpExecutionContext, config: ReproduceConfig,
                      project: dg.ResourceParam[Workspace]) -> None:
    # The verdict lives in the control plane (drill results) and on this step's metadata; the
    # op has no data output, so nothing reaches the lake IO manager (a dict is not a partition).
    result = reproduce(project, config.version)
    record_reproduction(project, result)
    context.log.info(f"{config.version}: identical={result.identical} in {result.seconds:.1f}s")
    metadata = known_metadata({
        "identical": result.identical, "seconds": float(result.seconds),
        "dataset_sha256_match": result.dataset_sha256_match,
        "artifact_sha256_match": result.artifact_sha256_match,
        "frozen_reference_max_abs_diff": result.frozen_reference_max_abs_diff})
    if not result.identical:
        raise dg.Failure(description=f"{config.version} is not reproducible: " + "; ".join(
            f"{c.kind}: {c.detail}" for c in result.causes), metadata=metadata,
            allow_retries=False)
    context.add_output_metadata(metadata)


@dg.job(name="reproduce_training_job", tags={"team": "ml-platform"},
        description="Rerun a version's training from raw landing data (config: version) and "
                    "fail with the diagnosed causes unless the rerun is bit-identical.")
def reproduce_training_job():
    reproduce_version()
