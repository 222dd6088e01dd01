"""Realtime scoring behind every protocol: ``POST /predict`` and the Open Inference Protocol's
``POST /v2/models/{name}/infer`` both go through one :class:`RealtimeScorer`, so validation,
the kill switch, the rollout arm, the shared model call, version tagging and the prediction
log exist once.

A request is handled in two steps: :meth:`RealtimeScorer.admit` validates the event against the
interface contract and resolves which version answers it (both can refuse it); then
:meth:`RealtimeScorer.score` computes its features and awaits a model call shared with every
other event parsed in the same event-loop pass. A batch admits all its rows before it scores
any, so a bad row refuses the whole batch and no state is touched.
"""

from __future__ import annotations

import asyncio
import math
import time
from datetime import UTC, datetime

import numpy as np
from starlette.requests import ClientDisconnect, Request

from ml_assets.lib.docs.interface_contract import InterfaceContract, RequestError
from ml_assets.lib.scoring.prediction_log import PredictionLogger
from ml_assets.lib.serving.models import predict_grouped
from ml_assets.lib.serving.read_path import NoServableModel, Resolved, ScoringService

#: Response header naming the version(s) that answered: proxies and metrics read it without
#: parsing the body.
VERSION_HEADER = "x-model-version"


def version_header(versions) -> dict[str, str]:
    """The version-tagging header for one response.

    Parameters
    ----------
    versions : str or iterable of str
        The model version that answered, or one per row of a batch.

    Returns
    -------
    dict
        ``{"x-model-version": "fraud-v2"}``; distinct versions of a batch are sorted and
        comma-separated.
    """
    if isinstance(versions, str):
        return {VERSION_HEADER: versions}
    return {VERSION_HEADER: ",".join(sorted(set(versions)))}


async def read_body(request: Request, limit: int, timeout: float = 10.0) -> bytes:
    """Read a request body of at most ``limit`` bytes without buffering a huge one.

    Parameters
    ----------
    request : Request
        The incoming request.
    limit : int
        Maximum body size in bytes (the contract's ``max_body_bytes``).
    timeout : float, default 10.0
        Seconds the whole body may take to arrive (a stalled upload holds no worker).

    Returns
    -------
    bytes
        The whole body.

    Raises
    ------
    RequestError
        413 ``payload_too_large`` as soon as the declared or streamed size exceeds ``limit``;
        408 ``request_timeout`` when the body has not arrived within ``timeout``; 400
        ``client_disconnected`` when the client hung up first (nobody reads the answer, but
        the metrics and error budget count a 4xx, not a 500).
    """
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise RequestError(413, "payload_too_large",
                           f"body is {declared} bytes; the limit is {limit}")
    chunks, size = [], 0
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                chunks.append(chunk)
                size += len(chunk)
                if size > limit:
                    raise RequestError(413, "payload_too_large", f"body exceeds {limit} bytes")
    except TimeoutError as exc:
        raise RequestError(408, "request_timeout", f"body did not arrive within {timeout:g} "
                           "s") from exc
    except ClientDisconnect as exc:  # the client's fault, not a 5xx against the error budget
        raise RequestError(400, "client_disconnected", "the client closed the connection "
                           "before its body arrived") from exc
    return b"".join(chunks)


class RealtimeScorer:
    """Score events that arrive over HTTP, one model call per event-loop pass.

    Parameters
    ----------
    service : ScoringService
        The read path: online state, model cache, aliases, kill switch and rollout.
    logger : PredictionLogger
        The prediction log; records are queued, never awaited.
    contract : InterfaceContract
        Validates each event (types, ranges, timestamps, unknown fields).
    log_predictions : bool
        Whether scored events are appended to the prediction log.
    """

    def __init__(self, service: ScoringService, logger: PredictionLogger,
                 contract: InterfaceContract, log_predictions: bool = True):
        self.service, self.logger, self.contract = service, logger, contract
        self.spec = service.spec
        self.log_predictions = log_predictions
        self.schema_version = self.spec.schema_version  # a hash over the declarations: once
        self._pending: list[tuple[dict, np.ndarray, asyncio.Future]] = []

    # -- shared model calls ---------------------------------------------------------------
    def _flush(self) -> None:
        # Runs once per event-loop pass: every event admitted in this pass shares one model
        # call. No thread, no timer: an idle server scores a lone request at once.
        batch = self._pending[:]
        self._pending.clear()
        results = predict_grouped([(m, x) for m, x, _ in batch], self.service.batch_stats)
        for (_, _, fut), result in zip(batch, results, strict=True):
            if isinstance(result, Exception):
                fut.set_exception(result)
            else:
                fut.set_result(result)

    def _submit(self, bundle: dict, x: np.ndarray) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        if not self._pending:
            loop.call_soon(self._flush)
        self._pending.append((bundle, x, fut))
        return fut

    # -- one event ------------------------------------------------------------------------
    def admit(self, payload: dict) -> tuple[dict, Resolved]:
        """Validate one event and resolve the version that answers it.

        Parameters
        ----------
        payload : dict
            One event as the contract's input schema (JSON types).

        Returns
        -------
        event : dict
            The event as the feature code expects it (timestamp parsed, UTC).
        resolved : Resolved
            ``previous`` while the kill switch is on, the challenger inside its rollout arm
            (by the first entity key), else the champion.

        Raises
        ------
        RequestError
            A field the contract refuses (status 422, ``field`` names it).
        NoServableModel
            No verified model can answer (status 503).
        """
        event = self.contract.validate_event(payload)
        return event, self.service.resolve(event[self.spec.entity_keys[0]])

    async def score(self, event: dict, resolved: Resolved, started: float) -> dict:
        """Score an admitted event, learn it into the online state and log it.

        Parameters
        ----------
        event, resolved : dict, Resolved
            What :meth:`admit` returned.
        started : float
            ``time.perf_counter()`` when the request arrived (seconds), for the logged latency.

        Returns
        -------
        dict
            The ``/predict`` response body: event id, ``model_version``, role, score in
            [0, 1], decision, kill switch, unknown entities, degraded.

        Raises
        ------
        NoServableModel
            The model returned a non-finite score (never handed out).
        """
        spec = self.spec
        x, feats, unknown = self.service.features_row(event)
        value = await self._submit(resolved.bundle, x)
        if not math.isfinite(value):
            raise NoServableModel(f"{resolved.version} returned a non-finite score")
        decision = bool(value >= resolved.bundle["decision_threshold"])
        self.service.state.add_event(event)  # after scoring: an event never sees itself
        eid = event[spec.event_id]
        if self.log_predictions:
            self.logger.log({spec.event_id: eid, spec.event_ts: event[spec.event_ts],
                             **{k: event[k] for k in spec.entity_keys},
                             "model_version": resolved.version, "role": resolved.role,
                             "score": value, "decision": decision,
                             "kill_switch": resolved.kill_switch,
                             "served_at": datetime.now(UTC),
                             "latency_ms": (time.perf_counter() - started) * 1e3,
                             "feature_schema_version": self.schema_version,
                             **{f"feature__{k}": v for k, v in feats.items()}})
        return {"event_id": eid, "model_version": resolved.version, "role": resolved.role,
                "score": value, "decision": decision, "source": "realtime",
                "kill_switch": resolved.kill_switch, "unknown_entities": unknown,
                "feature_schema_version": self.schema_version, "degraded": resolved.degraded}

    async def score_many(self, payloads: list[dict], started: float) -> list[dict]:
        """Admit every event, then score them together (one model call per version).

        Parameters
        ----------
        payloads : list of dict, length n
            Events as the contract's input schema.
        started : float
            ``time.perf_counter()`` at arrival (seconds).

        Returns
        -------
        list of dict, length n
            One ``/predict`` body per event, in order.

        Raises
        ------
        RequestError
            The first refused event; ``detail`` names its row. Nothing was scored or logged.
        NoServableModel
            No verified model can answer.
        """
        admitted = []
        for i, payload in enumerate(payloads):
            try:
                admitted.append(self.admit(payload))
            except RequestError as exc:  # say which row; status and field stay
                if len(payloads) > 1:
                    exc.detail = f"row {i}: {exc.detail}"
                raise
        return list(await asyncio.gather(*(self.score(e, r, started) for e, r in admitted)))
