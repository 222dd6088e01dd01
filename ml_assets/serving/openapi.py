"""The OpenAPI 3.1 document of the serving app (``GET /openapi.json``), generated from the
interface contract: request and response schemas come from the contract's input and output
schema and every documented error is a response. Nothing here is written by hand twice: a
field added to the dataset spec appears in the contract, the validation and this document.
"""

from __future__ import annotations

from ml_assets.lib.docs.interface_contract import InterfaceContract
from ml_assets.serving.oip import DATATYPES, input_tensors, output_tensors

_REF = "#/components/schemas/"
_KEYWORDS = ("enum", "minimum", "maximum")
#: Fields every answer carries (lookups add ``event_ts``; realtime adds ``unknown_entities``).
_ANSWER_REQUIRED = ["event_id", "model_version", "role", "score", "decision", "source",
                    "kill_switch"]


def field_schema(field: dict) -> dict:
    """One contract field as a JSON Schema (draft 2020-12, as OpenAPI 3.1 uses).

    Parameters
    ----------
    field : dict
        A field of ``InterfaceContract.input_schema()`` or ``output_schema()``: ``type``,
        optional ``nullable``, ``minimum``/``maximum``, ``enum``, ``items``, ``format``,
        ``meaning`` and ``example``.

    Returns
    -------
    dict
        The schema; a nullable field's type is ``[type, "null"]``.
    """
    out: dict = {"type": [field["type"], "null"] if field.get("nullable") else field["type"]}
    out.update({k: field[k] for k in _KEYWORDS if k in field})
    if field["type"] == "array":
        out["items"] = {"type": field.get("items", "string")}
    if "format" in field:  # the contract writes a sentence; it means RFC 3339 with an offset
        out["format"], out["description"] = "date-time", field["format"]
    if "meaning" in field:
        out["description"] = field["meaning"]
    if "example" in field:
        out["examples"] = [field["example"]]
    return out


def _schemas(contract: InterfaceContract) -> dict:
    fields = contract.input_schema()
    event = {"type": "object", "properties": {k: field_schema(f) for k, f in fields.items()},
             "required": [k for k, f in fields.items() if f["required"]],
             "additionalProperties": contract.config["input"]["unknown_fields"] != "reject"}
    answer = {"type": "object", "required": _ANSWER_REQUIRED,
              "properties": {k: field_schema(f) for k, f in contract.output_schema().items()}}
    answer["properties"]["event_ts"] = {"type": "string", "format": "date-time"}
    answer["properties"]["feature_schema_version"] = {"type": "string"}
    error = {"type": "object", "required": ["error", "field", "detail"],
             "properties": {"error": {"type": "string"}, "field": {"type": ["string", "null"]},
                            "detail": {"type": "string"}}}
    tensor = {"type": "object", "required": ["name", "shape", "datatype", "data"],
              "properties": {"name": {"type": "string"},
                             "shape": {"type": "array", "items": {"type": "integer"}},
                             "datatype": {"type": "string",
                                          "enum": sorted({*DATATYPES.values(), "BOOL"})},
                             "data": {"type": "array"}}}
    infer_in = {"type": "object", "required": ["inputs"], "properties": {
        "id": {"type": "string"},
        "inputs": {"type": "array", "minItems": 1, "items": {"$ref": _REF + "Tensor"},
                   "description": "one tensor per contract field, shape [n]: "
                                  + ", ".join(f"{k} ({t})" for k, t in
                                              input_tensors(contract).items())},
        "outputs": {"type": "array", "items": {
            "type": "object", "required": ["name"],
            "properties": {"name": {"enum": list(output_tensors(contract))}}}}}}
    infer_out = {"type": "object", "required": ["model_name", "outputs"], "properties": {
        "model_name": {"type": "string"}, "model_version": {"type": "string"},
        "id": {"type": "string"},
        "outputs": {"type": "array", "items": {"$ref": _REF + "Tensor"}}}}
    infer_error = {"type": "object", "required": ["error"],
                   "properties": {"error": {"type": "string"}}}
    return {"Event": event, "Answer": answer, "Error": error, "Tensor": tensor,
            "InferenceRequest": infer_in, "InferenceResponse": infer_out,
            "InferenceError": infer_error}


def _json(schema: str, description: str) -> dict:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": _REF + schema}}}}


def _errors(contract: InterfaceContract, statuses: tuple[int, ...], schema: str) -> dict:
    """The contract's documented errors for these statuses, one response per status."""
    out: dict[str, dict] = {}
    for key, meaning in contract.errors().items():
        status, code = key.split(" ", 1)
        if int(status) in statuses:
            prior = out.get(status, {}).get("description")
            text = f"{code}: {meaning}" if prior is None else f"{prior}; {code}: {meaning}"
            out[status] = _json(schema, text)
    return out


def _plain(description: str, content_type: str = "application/json") -> dict:
    return {"description": description, "content": {content_type: {"schema": {}}}}


def openapi_document(contract: InterfaceContract) -> dict:
    """The OpenAPI 3.1 document of every route of the serving app.

    Parameters
    ----------
    contract : InterfaceContract
        Source of the schemas, the error list and the feature schema version.

    Returns
    -------
    dict
        A JSON-serialisable OpenAPI 3.1.0 document.
    """
    spec, name = contract.spec, contract.spec.model_name
    id_type = contract.input_schema()[spec.event_id]["type"]
    unknown_model = {"404": _json("InferenceError", "unknown_model: another model's name")}

    def param(pname: str, ptype: str) -> dict:
        return {"name": pname, "in": "path", "required": True, "schema": {"type": ptype}}

    def v2(summary: str, responses: dict, **extra) -> dict:
        return {"summary": summary, "tags": ["Open Inference Protocol (V2)"],
                "responses": responses, **extra}

    model = [param("name", "string")]
    paths = {
        "/predict": {"post": {
            "summary": "Score one event in realtime",
            "requestBody": {"required": True, "content": {
                "application/json": {"schema": {"$ref": _REF + "Event"}}}},
            "responses": {"200": _json("Answer", "the score, decision and answering version"),
                          **_errors(contract, (400, 413, 422, 503), "Error")}}},
        "/scores/{event_id}": {"get": {
            "summary": "Precomputed score of one event",
            "parameters": [param("event_id", id_type)],
            "responses": {"200": _json("Answer", "the precomputed score"),
                          **_errors(contract, (404, 422, 503), "Error")}}},
        "/entities/{key}/{value}": {"get": {
            "summary": "Latest precomputed score of an entity",
            "parameters": [{**param("key", "string"),
                            "schema": {"type": "string", "enum": list(spec.entity_keys)}},
                           param("value", "string")],
            "responses": {"200": _json("Answer", "the entity's latest precomputed score"),
                          **_errors(contract, (404, 422, 503), "Error")}}},
        "/health": {"get": {"summary": "Served version, kill switch, index and integrity",
                            "responses": {"200": _plain("status document"),
                                          **_errors(contract, (503,), "Error")}}},
        "/contract": {"get": {"summary": "The interface contract",
                              "responses": {"200": _plain("the merged contract")}}},
        "/metrics": {"get": {"summary": "Prometheus metrics",
                             "responses": {"200": _plain("text exposition format 0.0.4",
                                                         "text/plain")}}},
        "/openapi.json": {"get": {"summary": "This document",
                                  "responses": {"200": _plain("OpenAPI 3.1")}}},
        "/v2": {"get": v2("Server metadata", {"200": _plain("name, version, extensions")})},
        "/v2/health/live": {"get": v2("Liveness", {"200": _plain("{live: true}")})},
        "/v2/health/ready": {"get": v2("Readiness: a verified model can serve", {
            "200": _plain("{ready: true}"), "503": _plain("{ready: false}")})},
        "/v2/models/{name}": {"get": v2("Model metadata: tensors from the contract",
                                        {"200": _plain("name, versions, inputs, outputs"),
                                         **unknown_model}, parameters=model)},
        "/v2/models/{name}/ready": {"get": v2("Model readiness", {
            "200": _plain("{name, ready: true}"), "503": _plain("{name, ready: false}"),
            **unknown_model}, parameters=model)},
        "/v2/models/{name}/infer": {"post": v2(
            "Score a batch of events (one row per event)",
            {"200": _json("InferenceResponse", "score, decision, model_version per row"),
             **_errors(contract, (400, 413, 422, 503), "InferenceError"), **unknown_model},
            parameters=model, requestBody={"required": True, "content": {
                "application/json": {"schema": {"$ref": _REF + "InferenceRequest"}}}})},
    }
    return {"openapi": "3.1.0",
            "info": {"title": f"ml_assets {name} scoring service",
                     "version": f"contract {contract.config['contract']['version']}, "
                                f"features {spec.schema_version}",
                     "description": "Generated from the interface contract (GET /contract)."},
            "paths": paths, "components": {"schemas": _schemas(contract)}}
