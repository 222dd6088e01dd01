"""The HTTP serving app: precomputed lookups and realtime scoring, validated against the
interface contract. The kill switch and aliases are read from the control plane on every
request, so a flip takes effect on the next request.

    GET  /health               served version, kill switch, index and integrity status
    GET  /contract             the interface contract (schema, SLOs, ownership, authority)
    GET  /scores/{event_id}    precomputed score of one event (batch or microbatch)
    GET  /entities/{key}/{v}   latest precomputed score of an entity (e.g. a card)
    POST /predict              realtime: one event as the contract's input schema
    GET  /metrics              Prometheus metrics (serving/metrics.py)
    GET  /openapi.json         OpenAPI 3.1, generated from the contract (serving/openapi.py)
    /v2/...                    Open Inference Protocol (KServe V2) routes (serving/oip.py)
"""

import contextlib
import gc
import socket
import threading
import time
from collections.abc import Iterator

import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from threadpoolctl import threadpool_limits

from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.paths import DataPaths
from ml_assets.lib.core.registry import Registry
from ml_assets.lib.core.workspace import Workspace
from ml_assets.lib.docs.interface_contract import InterfaceContract, RequestError, load_contract
from ml_assets.lib.release.rollback import check_drill_allowed, run_rollback_drill
from ml_assets.lib.scoring.prediction_log import PredictionLogger
from ml_assets.lib.serving.read_path import NoServableModel, ScoringService
from ml_assets.serving.guard import BODY_TIMEOUT_S, HEADER_TIMEOUT_S, server_options
from ml_assets.serving.metrics import MetricsMiddleware, ServingMetrics
from ml_assets.serving.oip import oip_routes
from ml_assets.serving.openapi import openapi_document
from ml_assets.serving.realtime import RealtimeScorer, read_body, version_header

DEFAULT_HOST = "127.0.0.1"


def _error(exc: RequestError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status)


def _unavailable(exc: NoServableModel) -> JSONResponse:
    return JSONResponse({"error": "no_servable_model", "field": None, "detail": str(exc)},
                        status_code=503)


def _answer(body: dict) -> JSONResponse:
    """A 200 tagged with the answering version (header as well as body)."""
    return JSONResponse(body, headers=version_header(body["model_version"]))


def create_app(paths: DataPaths, spec: DatasetSpec, contract: InterfaceContract | None = None,
               log_predictions: bool = True, reload_seconds: float = 2.0,
               body_timeout_s: float = BODY_TIMEOUT_S) -> Starlette:
    contract = contract or load_contract(spec)
    service = ScoringService(Workspace(paths, spec), reload_seconds=reload_seconds)
    logger = PredictionLogger(paths)
    id_kind = contract.input_schema()[spec.event_id]["type"]
    scorer = RealtimeScorer(service, logger, contract, log_predictions)
    metrics = ServingMetrics(service, logger)
    openapi = openapi_document(contract)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        # One OpenMP thread per model call: on 2 cores more threads only fight the server.
        limits = threadpool_limits(limits=1, user_api="openmp")
        service.start()
        if log_predictions:
            logger.start()
        app.state.service, app.state.logger = service, logger
        # The score index and online state are ~250k long-lived objects: a full collection
        # walked them all, a ~200 ms pause under predict load (the p99 tail). Frozen, the
        # collector skips them (reference counting still frees them).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            gc.unfreeze()  # collectable again once this app is gone (tests run many apps)
            service.close()
            if log_predictions:
                logger.close()
            limits.restore_original_limits()

    async def health(request: Request) -> JSONResponse:
        try:
            body = service.health()
        except NoServableModel as exc:
            return _unavailable(exc)
        return JSONResponse({**body, "prediction_log": logger.stats()},
                            headers=version_header(body["model_version"]))

    async def contract_doc(request: Request) -> JSONResponse:
        return JSONResponse(contract.as_dict())

    async def openapi_doc(request: Request) -> JSONResponse:
        return JSONResponse(openapi)

    async def metrics_doc(request: Request) -> Response:
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)

    async def score(request: Request) -> JSONResponse:
        try:
            event_id = contract.parse_path_value(spec.event_id, id_kind,
                                                  request.path_params["event_id"])
            found = service.lookup(event_id)
        except RequestError as exc:
            return _error(exc)
        except NoServableModel as exc:
            return _unavailable(exc)
        if found is None:
            return JSONResponse({"error": "unknown_event", "field": spec.event_id,
                                 "detail": f"no precomputed score for {spec.event_id}="
                                           f"{event_id}; POST /predict scores it in realtime"},
                                status_code=404)
        return _answer(found)

    async def entity(request: Request) -> JSONResponse:
        key = request.path_params["key"]
        if key not in spec.entity_keys:
            return JSONResponse({"error": "unknown_entity_key", "field": key,
                                 "detail": f"entity keys are {list(spec.entity_keys)}"},
                                status_code=404)
        try:
            value = contract.parse_path_value(key, contract.entity_types[key],
                                             request.path_params["value"])
            found = service.lookup_entity(key, value)
        except RequestError as exc:
            return _error(exc)
        except NoServableModel as exc:
            return _unavailable(exc)
        if found is None:
            return JSONResponse({"error": "unknown_entity", "field": key,
                                 "detail": f"no precomputed score for {key}={value}"},
                                status_code=404)
        return _answer(found)

    async def predict(request: Request) -> JSONResponse:
        started = time.perf_counter()
        try:
            payload = contract.parse_body(await read_body(request, contract.max_body_bytes,
                                                          body_timeout_s))
            event, resolved = scorer.admit(payload)
            return _answer(await scorer.score(event, resolved, started))
        except RequestError as exc:
            return _error(exc)
        except NoServableModel as exc:
            return _unavailable(exc)

    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"error": "internal_error", "field": None,
                             "detail": type(exc).__name__}, status_code=500)

    return Starlette(
        # The router tries routes in order: the two hot paths first.
        routes=[Route("/scores/{event_id}", score), Route("/predict", predict, methods=["POST"]),
                Route("/health", health), Route("/contract", contract_doc),
                Route("/entities/{key}/{value}", entity), Route("/metrics", metrics_doc),
                Route("/openapi.json", openapi_doc), *oip_routes(service, contract, scorer, body_timeout_s)],
        middleware=[Middleware(MetricsMiddleware, metrics=metrics)],
        lifespan=lifespan, exception_handlers={Exception: internal_error})


def serve(app: Starlette, host: str = DEFAULT_HOST, port: int = 8000) -> None:
    """Serve ``app`` (``create_app``: built first, so its errors come before any banner) until
    stopped.

    One process, one event loop, the httptools parser (``serving/guard.py``). Not N workers
    sharing the port: each would hold its own online state, and an event scored (and learned)
    by one worker would be unseen by the others, so an entity's realtime features would
    depend on which worker answered; the micro-batches, metrics registry and the index's
    memory would be per worker too. On 2 cores the load generator or the batch jobs need the
    other core anyway."""
    uvicorn.run(app, host=host, port=port, log_level="warning",
                access_log=False, **server_options())


def free_port(host: str = DEFAULT_HOST) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_server(paths: DataPaths, spec: DatasetSpec, host: str = DEFAULT_HOST,
                   port: int | None = None, header_timeout_s: float = HEADER_TIMEOUT_S,
                   **app_kwargs) -> Iterator[str]:
    """A real uvicorn server on localhost in a background thread, with the connection guards
    of ``serving/guard.py``; yields its base URL."""
    port = port or free_port(host)
    config = uvicorn.Config(create_app(paths, spec, **app_kwargs), host=host, port=port,
                            log_level="warning", access_log=False, lifespan="on",
                            **server_options(header_timeout_s))
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    # No fixed deadline: startup loads the score index and online state, seconds on the demo
    # but 253 s at `demo --scale 20` (25M events). A startup that fails (lifespan error, port
    # taken) ends uvicorn's thread, which is what this waits on.
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError(f"serving app did not start on {host}:{port}")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def rollback_drill(registry: Registry, paths: DataPaths, spec: DatasetSpec, actor: str,
                   url: str | None = None, **drill_kwargs) -> dict:
    """The rollback drill against the server at ``url``, or against one started for it here.

    Before a server is started the drill's refusals are checked (``check_drill_allowed``):
    starting one loads the lake's score index, minutes at ``--scale 20``, and an actor the
    contract does not list is refused at once, not after that wait.

    Parameters
    ----------
    registry, paths, spec, actor
        As for ``run_rollback_drill``.
    url : str, optional
        A running server's base URL; None starts one on localhost for the drill.
    **drill_kwargs
        ``timeout_s``, ``confirm_requests``, ``lease_for`` of ``run_rollback_drill``.

    Returns
    -------
    dict
        ``run_rollback_drill``'s result.

    Raises
    ------
    NotAuthorized, RollbackRefused
        As ``check_drill_allowed``.
    """
    if url:
        return run_rollback_drill(registry, paths, spec, url, actor, **drill_kwargs)
    check_drill_allowed(registry, spec, actor)
    with running_server(paths, spec, log_predictions=False) as started:
        return run_rollback_drill(registry, paths, spec, started, actor, **drill_kwargs)
