"""Against a real uvicorn server on localhost: lookups, realtime scoring, the kill switch
flipped under load, bad requests answered as the contract documents, predictions logged."""

import json
import threading
import time

import httpx
import pandas as pd
import pytest

from ml_assets.lib.core.lake import read_parquet_files
from ml_assets.lib.core.registry import Registry
from ml_assets.lib.release import rollback
from ml_assets.serving.app import running_server
from ml_assets_tests.fixtures.serving_world import SPEC, world_copy


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    paths = world_copy(tmp_path_factory.mktemp("http") / "w")
    with running_server(paths, SPEC, reload_seconds=0.2) as url:
        yield paths, url, httpx.Client(base_url=url, timeout=5)


@pytest.fixture(scope="module")
def sample(server):
    paths, _, _ = server
    scores = pd.read_parquet(sorted((paths.lake / "batch_scores").glob("*.parquet"))[-3])
    row = scores.iloc[0]
    event = pd.read_parquet(sorted((paths.lake / "raw_events").glob("*.parquet"))[-2]).iloc[0]
    body = {k: (None if pd.isna(v) else v.isoformat() if isinstance(v, pd.Timestamp)
                else v.item() if hasattr(v, "item") else v) for k, v in event.items()}
    return {"event_id": int(row["event_id"]), "card_id": int(row["card_id"]),
            "scores": scores[scores["event_id"] == row["event_id"]].set_index("model_version"),
            "body": body}


def test_every_200_names_the_model_version(server, sample):
    _, _, client = server
    answers = [client.get("/health"), client.get(f"/scores/{sample['event_id']}"),
               client.get(f"/entities/card_id/{sample['card_id']}"),
               client.post("/predict", json={**sample["body"], "event_id": 900_000_001})]
    for r in answers:
        assert r.status_code == 200, r.text
        assert r.json()["model_version"] == "fraud-v2"
    lookup = answers[1].json()
    assert lookup["score"] == pytest.approx(sample["scores"].loc["fraud-v2", "score"], abs=0)
    assert lookup["source"] == "batch" and lookup["kill_switch"] is False
    assert 0.0 <= answers[3].json()["score"] <= 1.0


def test_kill_switch_flip_under_load_takes_effect_at_once_and_drops_nothing(server, sample):
    paths, url, _ = server
    registry = Registry(paths.control_db)
    log, stop = [], threading.Event()

    def client_loop(kind: str):
        with httpx.Client(base_url=url, timeout=5) as c:
            i = 0
            while not stop.is_set():
                sent = time.perf_counter()
                if kind == "lookup":
                    r = c.get(f"/scores/{sample['event_id']}")
                else:
                    i += 1
                    r = c.post("/predict", json={**sample["body"], "event_id": 800_000_000 + i})
                log.append((kind, sent, time.perf_counter(), r.status_code,
                            r.json().get("model_version")))

    threads = [threading.Thread(target=client_loop, args=(k,)) for k in ("lookup", "predict")]
    for t in threads:
        t.start()
    time.sleep(0.5)
    flip = time.perf_counter()
    rollback.set_kill_switch(registry, paths, SPEC, True, "tests", "flip under load")
    flipped = time.perf_counter()
    time.sleep(1.0)
    stop.set()
    for t in threads:
        t.join()
    rollback.set_kill_switch(registry, paths, SPEC, False, "tests", "restore")

    assert all(status == 200 for _, _, _, status, _ in log), "a request failed during the flip"
    after = [e for e in log if e[1] > flipped]
    before = [e for e in log if e[2] < flip]
    assert len(after) > 20 and len(before) > 5
    assert {e[4] for e in before} == {"fraud-v2"}
    assert {e[4] for e in after} == {"fraud-v1"}, "a request sent after the flip got the champion"
    first_previous = min(e[2] for e in log if e[4] == "fraud-v1")
    assert first_previous - flip < 1.0  # time to effect
    assert {k for k, *_ in after} == {"lookup", "predict"}  # both paths switched
    with httpx.Client(base_url=url) as c:
        assert c.get(f"/scores/{sample['event_id']}").json()["model_version"] == "fraud-v2"


def _post(client, body, raw: bytes | None = None):
    return client.post("/predict", content=raw if raw is not None else json.dumps(body),
                       headers={"content-type": "application/json"})


@pytest.mark.parametrize("case,status,field", [
    ("missing_required", 422, "amount"),
    ("wrong_type_number", 422, "amount"),
    ("wrong_type_entity", 422, "card_id"),
    ("bool_as_number", 422, "distance_km"),
    ("nan", 422, "amount"),
    ("infinity", 422, "distance_km"),
    ("null_not_allowed", 422, "country"),
    ("out_of_range", 422, "amount"),
    ("unexpected_field", 422, "colour"),
    ("naive_timestamp", 422, "event_ts"),
    ("future_timestamp", 422, "event_ts"),
    ("not_json", 400, None),
    ("json_array", 400, None),
    ("huge_payload", 413, None),
])
def test_bad_requests_get_the_documented_answer(server, sample, case, status, field):
    _, _, client = server
    body = {**sample["body"], "event_id": 700_000_000}
    raw = None
    if case == "missing_required":
        body.pop("amount")
    elif case == "wrong_type_number":
        body["amount"] = "12.5"
    elif case == "wrong_type_entity":
        body["card_id"] = 1.5
    elif case == "bool_as_number":
        body["distance_km"] = True
    elif case == "nan":
        raw = json.dumps(body).replace(json.dumps(body["amount"]), "NaN", 1).encode()
        assert b"NaN" in raw
    elif case == "infinity":
        body["distance_km"] = 1.0
        raw = json.dumps(body).replace('"distance_km": 1.0', '"distance_km": Infinity').encode()
    elif case == "null_not_allowed":
        body["country"] = None
    elif case == "out_of_range":
        body["amount"] = -5
    elif case == "unexpected_field":
        body["colour"] = "red"
    elif case == "naive_timestamp":
        body["event_ts"] = "2026-08-01T12:00:00"
    elif case == "future_timestamp":
        body["event_ts"] = "2099-01-01T00:00:00+00:00"
    elif case == "not_json":
        raw = b"{not json"
    elif case == "json_array":
        raw = b"[1, 2]"
    elif case == "huge_payload":
        raw = json.dumps({**body, "pad": "x" * 50_000}).encode()
    r = _post(client, body, raw)
    assert r.status_code == status, r.text
    payload = r.json()
    assert payload["field"] == field and payload["error"] and payload["detail"]
    assert "model_version" not in payload  # an error is never dressed up as a score


def test_unknown_entities_and_nullable_fields_are_scored_and_flagged(server, sample):
    _, _, client = server
    body = {**sample["body"], "event_id": 700_000_001, "card_id": 987_654_321,
            "device": None, "merchant_category": "never-seen-before"}
    body.pop("distance_km")  # nullable: may be omitted
    r = _post(client, body)
    assert r.status_code == 200, r.text
    assert r.json()["unknown_entities"] == ["card_id"]
    assert 0.0 <= r.json()["score"] <= 1.0


def test_unknown_event_and_bad_path_parameters(server):
    _, _, client = server
    r = client.get("/scores/123456789012")
    assert r.status_code == 404 and r.json()["error"] == "unknown_event"
    r = client.get("/scores/abc")
    assert r.status_code == 422 and r.json()["field"] == "event_id"
    r = client.get("/entities/colour/3")
    assert r.status_code == 404 and r.json()["error"] == "unknown_entity_key"
    r = client.get("/entities/card_id/987654320")
    assert r.status_code == 404 and r.json()["error"] == "unknown_entity"


def test_realtime_predictions_are_logged_with_their_features(server, sample):
    paths, _, client = server
    ids = [600_000_000 + i for i in range(5)]
    for eid in ids:
        assert _post(client, {**sample["body"], "event_id": eid}).status_code == 200
    deadline = time.monotonic() + 10
    logged = pd.DataFrame()
    while time.monotonic() < deadline:
        files = sorted((paths.lake / "prediction_log").glob("*/*.parquet"))
        logged = read_parquet_files(files) if files else logged
        if set(ids) <= set(logged.get("event_id", [])):
            break
        time.sleep(0.2)
    rows = logged[logged["event_id"].isin(ids)]
    assert len(rows) == len(ids)
    assert rows["model_version"].notna().all()
    assert {f"feature__{n}" for n in SPEC.feature_names} <= set(rows.columns)
    assert not list((paths.lake / "prediction_log").glob("*/.*.tmp"))  # no half-written file


def test_the_state_learns_from_served_events(server, sample):
    """A second event of a brand-new card sees the first one (1h count goes 0 -> 1)."""
    paths, _, client = server
    card = 555_000_111
    t = pd.Timestamp(sample["body"]["event_ts"])
    first = {**sample["body"], "event_id": 500_000_001, "card_id": card}
    second = {**first, "event_id": 500_000_002,
              "event_ts": (t + pd.Timedelta(minutes=5)).isoformat()}
    assert _post(client, first).json()["unknown_entities"] == ["card_id"]
    assert _post(client, second).json()["unknown_entities"] == []


def test_a_server_that_cannot_start_fails_at_once_naming_its_address(server):
    """``running_server`` has no fixed start deadline (a large index loads for minutes), so a
    failed start must end the wait by itself: here the port is already taken."""
    paths, url, _ = server
    port = int(url.rsplit(":", 1)[1])
    began = time.monotonic()
    with (pytest.raises(RuntimeError, match=f"did not start on 127.0.0.1:{port}"),
          running_server(paths, SPEC, port=port, log_predictions=False)):
        pass
    assert time.monotonic() - began < 30
