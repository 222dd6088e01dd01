"""What a person sees in the UI, asked of the real `dagster-webserver` over its GraphQL API.

The small fraud world (``fraud_world``) gets one more run of ``rollout_state`` and a run of the
named ``docs_job``; then the webserver starts on 127.0.0.1 at a free port with the project's
``workspace.yaml`` and the world's DAGSTER_HOME, and is asked what the UI would show: every
asset in its group, the checks, schedules and sensors of the definitions, the runs by job name,
the champion on ``rollout_state`` and no -1/NaN among the latest metadata values.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import httpx
import pytest

from ml_assets.definitions import build_definitions
from ml_assets.lib.core.workspace import Workspace
from ml_assets.scenarios.runner import materialize, open_instance
from ml_assets_tests.fixtures.services import free_port

REPO = Path(__file__).resolve().parents[2]
WEBSERVER = Path(sys.executable).with_name("dagster-webserver")
START_TIMEOUT_S, STOP_TIMEOUT_S = 180, 20

QUERY = """{
  repositoriesOrError { __typename ... on RepositoryConnection { nodes {
      name schedules { name } sensors { name } jobs { name } } } }
  assetNodes { assetKey { path } groupName
    assetChecksOrError { __typename ... on AssetChecks { checks { name } } }
    assetMaterializations(limit: 1) { runId metadataEntries { __typename label
      ... on TextMetadataEntry { text } ... on FloatMetadataEntry { floatRepr }
      ... on IntMetadataEntry { intRepr } } } }
  runsOrError(limit: 10000) { __typename ... on Runs { results { runId jobName status } } }
}"""


def _post(url: str, query: str) -> dict:
    body = httpx.post(url, json={"query": query}, timeout=120).raise_for_status().json()
    assert "errors" not in body, body["errors"]
    return body["data"]


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM to the webserver's process group (it and its code server), SIGKILL on timeout."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(STOP_TIMEOUT_S)


@pytest.fixture
def webserver(fraud_world, tmp_path):
    """The world's runs plus one ``rollout_state`` run and one ``docs_job`` run, served by a
    real webserver; yields its GraphQL URL."""
    paths, spec = fraud_world["paths"], fraud_world["spec"]
    defs = build_definitions(spec, str(paths.root))
    instance = open_instance(paths)
    materialize(defs, instance, ["rollout_state"], fail_on_checks=False)
    defs.resolve_job_def("docs_job").execute_in_process(instance=instance)
    port = free_port()
    env = {**os.environ, "ML_ASSETS_DATA_DIR": str(paths.root),
           "DAGSTER_HOME": str(paths.dagster_home), "PYTHONWARNINGS": "ignore"}
    log = (tmp_path / "webserver.log").open("w")
    proc = subprocess.Popen([str(WEBSERVER), "-w", "workspace.yaml", "-h", "127.0.0.1",
                             "-p", str(port)], cwd=REPO, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/graphql"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            assert proc.poll() is None, (tmp_path / "webserver.log").read_text()[-3000:]
            try:
                loaded = _post(url, "{ repositoriesOrError { __typename } }")
                if loaded["repositoriesOrError"]["__typename"] == "RepositoryConnection":
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "webserver did not answer in time"
            time.sleep(1)
        champion = Workspace(paths, spec).registry.aliases(spec.model_name)["champion"]
        yield url, defs, instance, champion
    finally:
        _stop(proc)
        log.close()


def _bad_number(entry: dict) -> bool:
    repr_ = entry.get("floatRepr") or entry.get("intRepr")
    return repr_ is not None and repr_.strip().lower() in ("-1", "-1.0", "nan", "inf", "-inf")


@pytest.mark.slow
def test_the_webserver_shows_what_the_definitions_and_the_world_hold(webserver):
    url, defs, instance, champion = webserver
    data = _post(url, QUERY)
    graph = defs.get_repository_def().asset_graph
    nodes = {"/".join(n["assetKey"]["path"]): n for n in data["assetNodes"]}

    # every asset of the definitions, in its group
    assert {k: graph.get(dg.AssetKey.from_user_string(k)).group_name for k in nodes} == \
        {k.to_user_string(): graph.get(k).group_name for k in graph.materializable_asset_keys}
    # every check, on its asset
    shown = {(k, c["name"]) for k, n in nodes.items()
             for c in n["assetChecksOrError"].get("checks", [])}
    assert shown == {(c.asset_key.to_user_string(), c.name) for c in graph.asset_check_keys}
    # schedules, sensors and jobs of the one code location
    [repo] = data["repositoriesOrError"]["nodes"]
    assert {s["name"] for s in repo["schedules"]} == {s.name for s in defs.schedules}
    assert {s["name"] for s in repo["sensors"]} == {s.name for s in defs.sensors}
    # the runs are listed, a named job's run under its name
    runs = data["runsOrError"]["results"]
    assert len(runs) == instance.get_runs_count() > 10
    assert any(r["jobName"] == "docs_job" and r["status"] == "SUCCESS" for r in runs)
    assert {r["jobName"] for r in runs} <= {j["name"] for j in repo["jobs"]} | {
        "__ASSET_JOB", "__ephemeral_asset_job__"}
    # which model is champion: named on rollout_state, the same as the control plane says
    [latest] = nodes["rollout_state"]["assetMaterializations"]
    rollout_md = {e["label"]: e for e in latest["metadataEntries"]}
    assert rollout_md["champion"]["text"] == champion
    # no sentinel or NaN among the latest metadata of any asset
    bad = [(k, e["label"]) for k, n in nodes.items() for m in n["assetMaterializations"]
           for e in m["metadataEntries"] if _bad_number(e)]
    assert not bad, bad
