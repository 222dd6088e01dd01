"""Open Inference Protocol (KServe V2, REST) routes beside the app's own.

    GET  /v2                         server metadata
    GET  /v2/health/live             the process answers (liveness)
    GET  /v2/health/ready            a verified model can serve (readiness; 503 when not)
    GET  /v2/models/{name}           model metadata: inputs and outputs from the contract
    GET  /v2/models/{name}/ready     the model's readiness
    POST /v2/models/{name}/infer     columnar tensors in, score/decision/model_version out

An infer request carries one tensor per contract field (``shape [n]`` or ``[n, 1]``, all of
one length ``n``); row ``i`` of every tensor is one event, scored exactly as ``POST /predict``
scores it (same validation, kill switch, rollout arm, shared model call and prediction log).
Errors keep ``/predict``'s status codes (400, 408, 413, 422, 503, and 404 for an unknown model) in
the protocol's error shape ``{"error": "<code>: <detail>"}``.
"""

from __future__ import annotations

import time
from importlib.metadata import PackageNotFoundError, version

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ml_assets.lib.docs.interface_contract import InterfaceContract, RequestError
from ml_assets.lib.serving.read_path import NoServableModel, ScoringService
from ml_assets.serving.metrics import readiness
from ml_assets.serving.realtime import RealtimeScorer, read_body, version_header

#: Contract field types -> V2 tensor datatypes (timestamps and categories travel as BYTES).
DATATYPES = {"integer": "INT64", "number": "FP64", "string": "BYTES"}
OUTPUTS = ("event_id", "score", "decision", "model_version", "role")


def input_tensors(contract: InterfaceContract) -> dict[str, str]:
    """The infer inputs: contract field name -> V2 datatype, in the contract's order."""
    return {name: DATATYPES[f["type"]] for name, f in contract.input_schema().items()}


def output_tensors(contract: InterfaceContract) -> dict[str, str]:
    """The infer outputs: name -> V2 datatype (the event id keeps the contract's type)."""
    id_type = contract.input_schema()[contract.spec.event_id]["type"]
    return {"event_id": DATATYPES[id_type], "score": "FP64", "decision": "BOOL",
            "model_version": "BYTES", "role": "BYTES"}


def oip_error(status: int, code: str, detail: str) -> JSONResponse:
    """An error in the protocol's shape, with ``/predict``'s status code and error code."""
    return JSONResponse({"error": f"{code}: {detail}"}, status_code=status)


def _column(tensor, expected: dict[str, str]) -> tuple[str, list]:
    """One input tensor as (name, values); a malformed tensor is a 400, a wrong datatype 422."""
    if not isinstance(tensor, dict) or not isinstance(tensor.get("name"), str):
        raise RequestError(400, "invalid_json", "each input is an object with a string name")
    name, shape, data = tensor["name"], tensor.get("shape"), tensor.get("data")
    if not isinstance(data, list) or not isinstance(shape, list) or not shape \
            or not all(isinstance(d, int) and not isinstance(d, bool) for d in shape):
        raise RequestError(400, "invalid_json", f"input {name!r} needs a shape (list of "
                           "integers) and data (list)", field=name)
    if len(shape) > 2 or len(shape) == 2 and shape[1] != 1:
        raise RequestError(400, "invalid_json", f"input {name!r} has shape {shape}; one "
                           "value per row: [n] or [n, 1]", field=name)
    values = [v[0] if isinstance(v, list) and len(v) == 1 else v for v in data]  # [n, 1]
    if len(values) != shape[0]:
        raise RequestError(400, "invalid_json", f"input {name!r} declares shape {shape} but "
                           f"carries {len(values)} values", field=name)
    if name in expected and tensor.get("datatype") != expected[name]:
        raise RequestError(422, "invalid_field", f"input {name!r} must have datatype "
                           f"{expected[name]}, got {tensor.get('datatype')!r}", field=name)
    return name, values


def parse_infer(payload: dict, expected: dict[str, str]) -> list[dict]:
    """Columnar V2 inputs -> one event dict per row.

    Parameters
    ----------
    payload : dict
        The parsed request body (``{"inputs": [...], "id"?: str, "outputs"?: [...]}``).
    expected : dict
        Contract field -> V2 datatype (:func:`input_tensors`). Unknown inputs are passed on,
        so the contract's own ``unknown_fields`` rule refuses them exactly as ``/predict`` does.

    Returns
    -------
    list of dict, length n
        Row ``i`` of every tensor; a field whose tensor is absent is absent from every row.

    Raises
    ------
    RequestError
        400 for a malformed request (no inputs, duplicate names, ragged lengths), 422 for a
        wrong datatype.
    """
    inputs = payload.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise RequestError(400, "invalid_json", "inputs must be a non-empty list of tensors")
    columns: dict[str, list] = {}
    for tensor in inputs:
        name, values = _column(tensor, expected)
        if name in columns:
            raise RequestError(400, "invalid_json", f"input {name!r} appears twice", field=name)
        columns[name] = values
    lengths = {len(v) for v in columns.values()}
    if len(lengths) != 1 or 0 in lengths:
        raise RequestError(400, "invalid_json", "every input needs the same number of rows "
                           f"(at least 1); got {sorted(lengths)}")
    n = lengths.pop()
    return [{name: values[i] for name, values in columns.items()} for i in range(n)]


def _wanted_outputs(requested, outputs: dict[str, str]) -> list[str]:
    """The output names a request asks for (all by default); anything else is a 400."""
    if requested is None or requested == []:
        return list(OUTPUTS)
    wanted = [o.get("name") if isinstance(o, dict) else None
              for o in (requested if isinstance(requested, list) else [None])]
    if not all(isinstance(w, str) and w in outputs for w in wanted):
        raise RequestError(400, "invalid_json", "outputs must be a list of objects naming "
                           f"{list(outputs)}")
    return wanted


def _outputs(bodies: list[dict], wanted: list[str], datatypes: dict[str, str]) -> list[dict]:
    return [{"name": name, "datatype": datatypes[name], "shape": [len(bodies)],
             "data": [b[name] for b in bodies]} for name in wanted]


def oip_routes(service: ScoringService, contract: InterfaceContract,
               scorer: RealtimeScorer, body_timeout_s: float = 10.0) -> list[Route]:
    """The V2 routes over the app's read path and realtime scorer.

    Parameters
    ----------
    service : ScoringService
        Readiness and the registered versions.
    contract : InterfaceContract
        Input and output tensors are generated from it.
    scorer : RealtimeScorer
        The one realtime path ``/predict`` uses too.
    body_timeout_s : float, default 10.0
        Seconds an infer body may take to arrive (408 after).

    Returns
    -------
    list of Route
        To be appended to the app's routes.
    """
    name = contract.spec.model_name
    inputs, outputs = input_tensors(contract), output_tensors(contract)
    try:
        server_version = version("ml_assets")
    except PackageNotFoundError:  # running from a source tree that was never installed
        server_version = "0+unknown"

    def _known(request: Request) -> JSONResponse | None:
        asked = request.path_params["name"]
        if asked == name:
            return None
        return oip_error(404, "unknown_model", f"this server serves {name!r}, not {asked!r}")

    async def server_metadata(request: Request) -> JSONResponse:
        return JSONResponse({"name": "ml_assets", "version": server_version, "extensions": []})

    async def live(request: Request) -> JSONResponse:
        return JSONResponse({"live": True})

    async def ready(request: Request) -> JSONResponse:
        ok, _ = readiness(service)
        return JSONResponse({"ready": ok}, status_code=200 if ok else 503)

    async def model_ready(request: Request) -> JSONResponse:
        if (unknown := _known(request)) is not None:
            return unknown
        ok, _ = readiness(service)
        return JSONResponse({"name": name, "ready": ok}, status_code=200 if ok else 503)

    async def metadata(request: Request) -> JSONResponse:
        if (unknown := _known(request)) is not None:
            return unknown
        aliases, _, _ = service.control.read()
        return JSONResponse({
            "name": name, "versions": sorted(set(aliases.values())), "platform": "ml_assets",
            "inputs": [{"name": k, "datatype": t, "shape": [-1]} for k, t in inputs.items()],
            "outputs": [{"name": k, "datatype": t, "shape": [-1]} for k, t in outputs.items()]})

    async def infer(request: Request) -> JSONResponse:
        started = time.perf_counter()
        if (unknown := _known(request)) is not None:
            return unknown
        try:
            # The same body limit and JSON rules as /predict.
            payload = contract.parse_body(await read_body(request, contract.max_body_bytes,
                                                          body_timeout_s))
            wanted = _wanted_outputs(payload.get("outputs"), outputs)
            bodies = await scorer.score_many(parse_infer(payload, inputs), started)
        except RequestError as exc:
            return oip_error(exc.status, exc.code, exc.detail)
        except NoServableModel as exc:
            return oip_error(503, "no_servable_model", str(exc))
        versions = [b["model_version"] for b in bodies]
        body = {"model_name": name, "outputs": _outputs(bodies, wanted, outputs)}
        if len(set(versions)) == 1:  # a batch split across rollout arms names no single one
            body["model_version"] = versions[0]
        if isinstance(payload.get("id"), str):
            body["id"] = payload["id"]
        return JSONResponse(body, headers=version_header(versions))

    return [Route("/v2", server_metadata), Route("/v2/health/live", live),
            Route("/v2/health/ready", ready), Route("/v2/models/{name}", metadata),
            Route("/v2/models/{name}/ready", model_ready),
            Route("/v2/models/{name}/infer", infer, methods=["POST"])]
