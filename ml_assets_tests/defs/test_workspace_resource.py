"""The ``project`` resource holds the spec object it was built with (a Workspace), never a name it
looks up again: a spec modified in a test, or one that is not built in, reaches the jobs as is."""

import dataclasses
import sys
from types import SimpleNamespace

import dagster as dg

from ml_assets.definitions import build_definitions
from ml_assets.lib.core.workspace import Workspace
from ml_assets.specs.fraud import FRAUD_SPEC


def _custom_spec():
    spec = dataclasses.replace(FRAUD_SPEC, name="card_fraud_custom", model_name="fraud_custom",
                               model=dataclasses.replace(FRAUD_SPEC.model, seed=11))
    return spec


def test_resource_holds_the_spec_object(tmp_path):
    spec = _custom_spec()
    defs = build_definitions(spec, str(tmp_path))
    with dg.build_resources({"project": defs.resources["project"]}) as resources:
        workspace = resources.project
    assert isinstance(workspace, Workspace)
    assert workspace.spec is spec
    assert workspace.paths.root == tmp_path.resolve()


def test_reproduce_job_runs_the_modified_spec(tmp_path, monkeypatch):
    spec = _custom_spec()
    defs = build_definitions(spec, str(tmp_path))
    job = next(j for j in defs.resolve_all_job_defs() if j.name.startswith("reproduce_training"))
    op_module = sys.modules[job.graph.node_defs[0].compute_fn.decorated_fn.__module__]
    seen = {}

    def fake_reproduce(workspace, version, **_):
        seen.update(paths=workspace.paths, spec=workspace.spec, version=version)
        return SimpleNamespace(version=version, identical=True, seconds=0.5, causes=[],
                               dataset_sha256_match=True, artifact_sha256_match=True,
                               frozen_reference_max_abs_diff=0.0,
                               as_dict=lambda: {"version": version, "identical": True})

    monkeypatch.setattr(op_module, "reproduce", fake_reproduce)
    run_config = {"ops": {job.graph.node_defs[0].name: {"config": {"version": "fraud_custom-v1"}}}}
    result = job.execute_in_process(run_config=run_config,
                                    instance=dg.DagsterInstance.ephemeral())
    assert result.success  # the verdict is step metadata; nothing goes to the lake IO manager
    assert seen["spec"] is spec  # the object itself: same seed, same model name
    assert seen["spec"].model.seed == 11 and seen["version"] == "fraud_custom-v1"
    assert seen["paths"].root == tmp_path.resolve()
