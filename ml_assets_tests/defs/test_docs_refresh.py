"""The documents follow the control plane by automation (issue 20): a drill recorded after the
documents were rendered moves ``docs_refresh_sensor``'s cursor, its run re-renders them, and
the runbook then shows that drill instead of "no rollback drill recorded"."""

import dagster as dg

from ml_assets.defs.docs.definitions import build_defs
from ml_assets.lib.core.workspace import Workspace
from ml_assets.lib.docs import documents
from ml_assets_tests.fixtures.dagster_contexts import call_sensor
from ml_assets_tests.fixtures.shadow_world import SPEC, world_copy


def test_a_recorded_drill_reaches_the_runbook_through_the_sensor(tmp_path):
    world = world_copy(tmp_path / "w")
    project = Workspace.open(world.paths.root, SPEC)
    defs = dg.Definitions.merge(build_defs(SPEC), dg.Definitions(resources={"project": project}))
    sensor = next(s for s in defs.sensors if s.name == "docs_refresh_sensor")
    job = defs.resolve_job_def("docs_job")

    def tick(cursor):
        return call_sensor(sensor, cursor=cursor, resources={"project": project})

    first = tick(None)  # a new sensor renders once: the documents may predate it
    assert [r.run_key for r in first.run_requests] == [f"audit-{first.cursor}"]
    assert job.execute_in_process(instance=dg.DagsterInstance.ephemeral()).success
    champion = project.registry.aliases(SPEC.model_name)["champion"]
    runbook = documents.document_dir(project.paths, SPEC, champion) / "rollback_runbook.md"
    assert documents.parse_fields(runbook.read_text())["Last drill"].startswith("no rollback")
    assert isinstance(tick(first.cursor), dg.SkipReason)  # nothing changed: no run

    project.registry.record_drill(SPEC.model_name, "rollback", "tests", True, 412.5, champion,
                                  world.versions["identical"], {})
    second = tick(first.cursor)
    assert int(second.cursor) > int(first.cursor)
    assert [r.run_key for r in second.run_requests] == [f"audit-{second.cursor}"]
    assert job.execute_in_process(instance=dg.DagsterInstance.ephemeral()).success
    last = documents.parse_fields(runbook.read_text())["Last drill"]
    assert "PASSED" in last and "412.5 ms" in last, last
