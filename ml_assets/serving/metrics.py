"""Prometheus metrics of the serving app (``GET /metrics``, the text exposition format).

Two kinds: request counters and latency histograms, observed by an ASGI middleware per route
template, method, status and the ``x-model-version`` header the handler set; and the serving
state (kill switch, aliases, rollout stage and challenger share, score-index age, prediction-log
queue and drops), read from the service when scraped, so a scrape always sees the control plane
as the next request would. Each app owns its own ``CollectorRegistry``: several apps in one
process (tests, benchmarks) never share or clash.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from ml_assets.lib.release.arms import acting_share
from ml_assets.lib.scoring.prediction_log import PredictionLogger
from ml_assets.lib.serving.read_path import NoServableModel, ScoringService
from ml_assets.serving.realtime import VERSION_HEADER

#: Latency buckets in seconds: lookups answer in ~1 ms, realtime in a few, the SLOs sit at 5-50.
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_VERSION_KEY = VERSION_HEADER.encode()


def readiness(service: ScoringService) -> tuple[bool, str | None]:
    """Whether a verified model can answer now (liveness needs only the process).

    Parameters
    ----------
    service : ScoringService
        The started read path.

    Returns
    -------
    ready : bool
        True when the resolved version, or the last good one, is loaded and verified.
    why : str or None
        Why not, when not ready.
    """
    try:
        service.resolve()
    except NoServableModel as exc:
        return False, str(exc)
    return True, None


class _ServingState(Collector):
    """Gauges read from the service at scrape time (one control-plane read per scrape)."""

    def __init__(self, service: ScoringService, logger: PredictionLogger):
        self.service, self.logger = service, logger

    def collect(self):
        service, spec = self.service, self.service.spec
        aliases, kill, state = service.control.read()
        yield _gauge("ml_assets_ready", "1 when a verified model can serve", readiness(service)[0])
        yield _gauge("ml_assets_kill_switch", "1 while the kill switch is on (previous answers)",
                     kill)
        info = GaugeMetricFamily("ml_assets_model_alias_info", "Registered version per alias",
                                 labels=["model", "alias", "version"])
        for alias, version in sorted(aliases.items()):
            info.add_metric([spec.model_name, alias, version], 1)
        yield info
        stage = GaugeMetricFamily("ml_assets_rollout_stage_info", "The challenger's rollout "
                                  "stage (shadow, 1..100, paused)", labels=["version", "stage"])
        if state:
            stage.add_metric([str(state.get("version")), str(state.get("stage", "shadow"))], 1)
        yield stage
        yield _gauge("ml_assets_rollout_challenger_share_percent", "Percent of entities the "
                     "challenger answers for", acting_share(state, aliases.get("challenger")))
        index = service.index
        yield _gauge("ml_assets_score_index_age_seconds", "Seconds since the precomputed score "
                     "index was (re)loaded; grows while no new score files land",
                     (datetime.now(UTC) - index.loaded_at).total_seconds())
        yield _gauge("ml_assets_score_index_events", "Events in the precomputed score index",
                     len(index))
        log = self.logger.stats()
        yield _gauge("ml_assets_prediction_log_queued", "Prediction-log records waiting to be "
                     "written", log["queued"])
        for name, help_text in (("written", "Prediction-log records written to the lake"),
                                ("dropped", "Prediction-log records dropped (queue full or a "
                                            "write failed); requests are never delayed")):
            yield CounterMetricFamily(f"ml_assets_prediction_log_{name}", help_text,
                                      value=log[name])
        stats = service.batch_stats
        yield CounterMetricFamily("ml_assets_realtime_model_calls", "Shared model calls for "
                                  "realtime events", value=stats.batches)
        yield CounterMetricFamily("ml_assets_realtime_rows", "Realtime events scored",
                                  value=stats.rows)


def _gauge(name: str, help_text: str, value: float | bool) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, help_text, value=float(value))


class ServingMetrics:
    """The metrics of one app: request counters, latency histograms and the state collector.

    Parameters
    ----------
    service : ScoringService
        Read at scrape time for the state gauges.
    logger : PredictionLogger
        Its queue length, written and dropped counts.
    """

    def __init__(self, service: ScoringService, logger: PredictionLogger):
        self.registry = CollectorRegistry()
        labels = ["route", "method", "status", "model_version"]
        self.requests = Counter("ml_assets_http_requests", "HTTP requests answered",
                                labels, registry=self.registry)
        self.latency = Histogram("ml_assets_http_request_duration_seconds", "Time from request "
                                 "to the end of the response, in seconds", labels,
                                 buckets=LATENCY_BUCKETS, registry=self.registry)
        self.registry.register(_ServingState(service, logger))
        # (counter, histogram) per label tuple: ``labels()`` takes a lock and builds the tuple
        # again on every call; the label sets are bounded (route templates, versions).
        self._children: dict[tuple, tuple] = {}

    def observe(self, route: str, method: str, status: int, version: str,
                seconds: float) -> None:
        """Count one answered request.

        Parameters
        ----------
        route : str
            The route template (``/scores/{event_id}``), never the raw path: bounded labels.
        method : str
            HTTP method.
        status : int
            Response status code.
        version : str
            The ``x-model-version`` header, empty when no model answered.
        seconds : float
            Wall time of the request, in seconds.
        """
        key = (route, method, status, version)
        children = self._children.get(key)
        if children is None:
            labels = (route, method, str(status), version)
            children = self._children[key] = (self.requests.labels(*labels),
                                              self.latency.labels(*labels))
        children[0].inc()
        children[1].observe(seconds)

    def exposition(self) -> tuple[bytes, str]:
        """The scrape body and its content type (Prometheus text format 0.0.4)."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class MetricsMiddleware:
    """Pure ASGI middleware: times each HTTP request and records its route template, status
    and answering version (from the response header, so no body is parsed).

    Parameters
    ----------
    app : ASGI app
        The wrapped application.
    metrics : ServingMetrics
        Where observations go.
    """

    def __init__(self, app, metrics: ServingMetrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        seen = [500, ""]  # status and version; unchanged if the app raised before answering

        async def send_and_note(message):
            if message["type"] == "http.response.start":
                seen[0] = message["status"]
                for k, v in message.get("headers", ()):
                    if k == _VERSION_KEY:
                        seen[1] = v.decode()
                        break
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            # The router records the matched route in the scope; unmatched paths share one
            # label so a scanner cannot blow up the series count.
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.observe(route, scope["method"], seen[0], seen[1],
                                 time.perf_counter() - started)
