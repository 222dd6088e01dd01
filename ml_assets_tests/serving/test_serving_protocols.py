"""The interfaces other tools speak, against a real uvicorn server: Open Inference Protocol
(KServe V2) routes, Prometheus ``/metrics`` and the OpenAPI document - each checked against the
protocol's own shapes and against ``/predict``, which they must agree with."""

import json

import httpx
import jsonschema
import pandas as pd
import pytest
from openapi_spec_validator import validate as validate_openapi
from prometheus_client.parser import text_string_to_metric_families

from ml_assets.lib.core.paths import DataPaths
from ml_assets.lib.core.workspace import Workspace
from ml_assets.lib.docs.interface_contract import load_contract
from ml_assets.lib.release import arms, rollout
from ml_assets.serving.app import running_server
from ml_assets_tests.fixtures.serving_world import SPEC, world_copy

INFER = f"/v2/models/{SPEC.model_name}/infer"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    paths = world_copy(tmp_path_factory.mktemp("protocols") / "w")
    with running_server(paths, SPEC, reload_seconds=0.2) as url:
        yield paths, httpx.Client(base_url=url, timeout=10)


@pytest.fixture(scope="module")
def event(server):
    paths, _ = server
    row = pd.read_parquet(sorted((paths.lake / "raw_events").glob("*.parquet"))[-2]).iloc[0]
    return {k: (None if pd.isna(v) else v.isoformat() if isinstance(v, pd.Timestamp)
                else v.item() if hasattr(v, "item") else v) for k, v in row.items()}


def tensors(client, rows: list[dict]) -> list[dict]:
    """Rows -> V2 input tensors, datatypes taken from the model metadata route."""
    meta = client.get(f"/v2/models/{SPEC.model_name}").json()
    return [{"name": t["name"], "datatype": t["datatype"], "shape": [len(rows)],
             "data": [r[t["name"]] for r in rows]} for t in meta["inputs"]]


def fresh(event: dict, i: int, amount: float | None = None) -> dict:
    """The event on a new card and merchant: its features depend on the row alone."""
    return {**event, "event_id": 910_000_000 + i, "card_id": 920_000_000 + i,
            "merchant_id": 930_000_000 + i, "amount": amount or event["amount"]}


def test_v2_health_and_model_metadata_come_from_the_contract(server):
    _, client = server
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}
    assert client.get(f"/v2/models/{SPEC.model_name}/ready").json() == {
        "name": SPEC.model_name, "ready": True}
    meta = client.get(f"/v2/models/{SPEC.model_name}").json()
    schema = load_contract(SPEC).input_schema()
    assert [t["name"] for t in meta["inputs"]] == list(schema)
    wire = {"integer": "INT64", "number": "FP64", "string": "BYTES"}
    assert {t["name"]: t["datatype"] for t in meta["inputs"]} == {
        k: wire[f["type"]] for k, f in schema.items()}
    assert {t["name"] for t in meta["outputs"]} >= {"score", "decision", "model_version"}
    assert meta["versions"] == ["fraud-v1", "fraud-v2", "fraud-v3"]
    r = client.get("/v2/models/not-ours")
    assert r.status_code == 404 and set(r.json()) == {"error"}


def test_v2_infer_scores_a_batch_exactly_as_predict_does(server, event):
    _, client = server
    rows = [fresh(event, i, amount=10.0 + 450 * i) for i in range(4)]
    r = client.post(INFER, json={"id": "batch-1", "inputs": tensors(client, rows)})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"] == "batch-1" and body["model_version"] == "fraud-v2"
    assert r.headers["x-model-version"] == "fraud-v2"
    out = {o["name"]: o for o in body["outputs"]}
    assert all(o["shape"] == [4] and len(o["data"]) == 4 for o in out.values())
    assert out["score"]["datatype"] == "FP64" and out["decision"]["datatype"] == "BOOL"
    assert out["event_id"]["data"] == [row["event_id"] for row in rows]
    assert len(set(out["score"]["data"])) > 1  # the rows differ, so do their scores
    for i, row in enumerate(rows):  # the same event on /predict (another fresh card/merchant)
        single = client.post("/predict", json=fresh(event, 100 + i, row["amount"])).json()
        assert single["score"] == out["score"]["data"][i]
        assert single["decision"] == out["decision"]["data"][i]
    only = client.post(INFER, json={"inputs": tensors(client, [fresh(event, 9)]),
                                    "outputs": [{"name": "score"}]}).json()
    assert [o["name"] for o in only["outputs"]] == ["score"]


def test_v2_infer_follows_the_rollout_arm_and_the_kill_switch(server, event):
    paths, client = server
    registry = Workspace(paths, SPEC).registry
    state = {"version": "fraud-v3", "champion": "fraud-v2", "stage": "50", "salt": "rollout-v1"}
    registry.set_setting(rollout.STATE_KEY, json.dumps(state), "tests", "stage 50")
    try:
        rows = [fresh(event, 200 + i) for i in range(24)]
        out = {o["name"]: o["data"] for o in client.post(
            INFER, json={"inputs": tensors(client, rows)}).json()["outputs"]}
        arm = [arms.entity_in_challenger_arm(r["card_id"], 50, "rollout-v1") for r in rows]
        assert out["role"] == ["challenger" if a else "champion" for a in arm]
        assert out["model_version"] == ["fraud-v3" if a else "fraud-v2" for a in arm]
        assert 0 < sum(arm) < len(arm)
        registry.set_setting("kill_switch", "on", "tests", "incident")
        r = client.post(INFER, json={"inputs": tensors(client, rows[:3])})
        assert r.json()["model_version"] == "fraud-v1"
        assert r.headers["x-model-version"] == "fraud-v1"
    finally:
        registry.set_setting("kill_switch", "off", "tests", "over")
        registry.set_setting(rollout.STATE_KEY, "", "tests", "rollout over")


def _mutate(case: str, client, event: dict) -> tuple[bytes, int]:
    inputs = tensors(client, [fresh(event, 300), fresh(event, 301)])
    by_name = {t["name"]: t for t in inputs}
    if case == "wrong_datatype":
        by_name["amount"]["datatype"] = "BYTES"
    elif case == "bad_row":
        by_name["amount"]["data"][1] = -5.0
    elif case == "unknown_input":
        inputs.append({"name": "colour", "datatype": "BYTES", "shape": [2], "data": ["a", "b"]})
    elif case == "ragged":
        by_name["amount"]["data"].pop()
        by_name["amount"]["shape"] = [1]
    elif case == "shape_mismatch":
        by_name["amount"]["shape"] = [3]
    elif case == "no_inputs":
        inputs = []
    elif case == "not_json":
        return b"{nope", 400
    elif case == "huge":
        inputs.append({"name": "pad", "datatype": "BYTES", "shape": [1], "data": ["x" * 50_000]})
    status = {"wrong_datatype": 422, "bad_row": 422, "unknown_input": 422, "ragged": 400,
              "shape_mismatch": 400, "no_inputs": 400, "huge": 413}[case]
    return json.dumps({"inputs": inputs}).encode(), status


@pytest.mark.parametrize("case", ["wrong_datatype", "bad_row", "unknown_input", "ragged",
                                  "shape_mismatch", "no_inputs", "not_json", "huge"])
def test_v2_errors_keep_predicts_status_in_the_protocols_shape(server, event, case):
    _, client = server
    raw, status = _mutate(case, client, event)
    r = client.post(INFER, content=raw, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    assert set(r.json()) == {"error"} and r.json()["error"]
    assert "x-model-version" not in r.headers  # an error is never dressed up as a score
    if case == "bad_row":
        assert r.json()["error"].startswith("invalid_field: row 1: amount")


def test_metrics_scrape_parses_and_carries_requests_and_state(server, event):
    paths, client = server
    assert client.post("/predict", json=fresh(event, 400)).status_code == 200
    assert client.post(INFER, json={"inputs": tensors(client, [fresh(event, 401)])}) \
        .status_code == 200
    assert client.get("/scores/123456789012").status_code == 404

    def scrape() -> dict:
        r = client.get("/metrics")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
        return {f.name: f for f in text_string_to_metric_families(r.text)}

    families = scrape()
    requests = [s for s in families["ml_assets_http_requests"].samples
                if s.name.endswith("_total")]
    labels = {(s.labels["route"], s.labels["status"], s.labels["model_version"])
              for s in requests}
    assert ("/predict", "200", "fraud-v2") in labels
    assert (INFER.replace(SPEC.model_name, "{name}"), "200", "fraud-v2") in labels
    assert ("/scores/{event_id}", "404", "") in labels  # templates, not raw paths
    latency = families["ml_assets_http_request_duration_seconds"]
    assert latency.type == "histogram"
    assert any(s.name.endswith("_bucket") and s.labels["route"] == "/predict"
               for s in latency.samples)

    def value(name: str) -> float:
        return families[name].samples[0].value

    assert value("ml_assets_ready") == 1 and value("ml_assets_kill_switch") == 0
    assert value("ml_assets_rollout_challenger_share_percent") == 0
    assert value("ml_assets_score_index_age_seconds") >= 0
    assert value("ml_assets_score_index_events") > 0
    assert value("ml_assets_prediction_log_dropped") == 0
    assert "ml_assets_prediction_log_queued" in families
    aliases = {s.labels["alias"]: s.labels["version"]
               for s in families["ml_assets_model_alias_info"].samples}
    assert aliases == {"champion": "fraud-v2", "challenger": "fraud-v3", "previous": "fraud-v1"}

    registry = Workspace(paths, SPEC).registry  # state is read at scrape time
    registry.set_setting("kill_switch", "on", "tests", "scrape")
    state = {"version": "fraud-v3", "champion": "fraud-v2", "stage": "25", "salt": "s"}
    registry.set_setting(rollout.STATE_KEY, json.dumps(state), "tests", "stage 25")
    try:
        families = scrape()
        assert value("ml_assets_kill_switch") == 1
        assert value("ml_assets_rollout_challenger_share_percent") == 25
        assert families["ml_assets_rollout_stage_info"].samples[0].labels == {
            "version": "fraud-v3", "stage": "25"}
    finally:
        registry.set_setting("kill_switch", "off", "tests", "over")
        registry.set_setting(rollout.STATE_KEY, "", "tests", "over")


def test_openapi_is_valid_and_describes_the_real_answers(server, event):
    _, client = server
    doc = client.get("/openapi.json").json()
    validate_openapi(doc)  # the OpenAPI 3.1 meta-schema

    def check(schema: str, instance) -> None:
        jsonschema.Draft202012Validator(
            {"$ref": f"#/components/schemas/{schema}", "components": doc["components"]}
        ).validate(instance)

    body = fresh(event, 500)
    check("Event", body)
    check("Answer", client.post("/predict", json=body).json())
    bad = client.post("/predict", json={**fresh(event, 501), "amount": "12"})
    assert bad.status_code == 422
    check("Error", bad.json())
    with pytest.raises(jsonschema.ValidationError):  # the schema refuses what the server does
        check("Event", {**body, "amount": "12"})
    with pytest.raises(jsonschema.ValidationError):
        check("Event", {**body, "colour": "red"})
    infer_in = {"inputs": tensors(client, [fresh(event, 502)])}
    check("InferenceRequest", infer_in)
    check("InferenceResponse", client.post(INFER, json=infer_in).json())
    check("InferenceError", client.post(INFER, json={"inputs": []}).json())
    documented = {f"{p} {m}".upper() for p, ops in doc["paths"].items() for m in ops}
    assert {"/PREDICT POST", "/V2/MODELS/{NAME}/INFER POST", "/METRICS GET"} <= documented
    assert set(doc["paths"]["/predict"]["post"]["responses"]) == {"200", "400", "413", "422",
                                                                  "503"}


def test_readiness_is_false_while_no_verified_model_can_serve(tmp_path):
    paths = DataPaths(tmp_path / "empty").ensure()
    with running_server(paths, SPEC, log_predictions=False) as url, \
            httpx.Client(base_url=url, timeout=10) as client:
        assert client.get("/v2/health/live").json() == {"live": True}
        r = client.get("/v2/health/ready")
        assert r.status_code == 503 and r.json() == {"ready": False}
        assert client.get(f"/v2/models/{SPEC.model_name}/ready").status_code == 503
        r = client.post(INFER, json={"inputs": [{"name": "amount", "datatype": "FP64",
                                                 "shape": [1], "data": [1.0]}]})
        assert r.status_code in (422, 503) and set(r.json()) == {"error"}
        ready = [f for f in text_string_to_metric_families(client.get("/metrics").text)
                 if f.name == "ml_assets_ready"]
        assert ready[0].samples[0].value == 0
