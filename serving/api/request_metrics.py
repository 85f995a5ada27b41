"""Prometheus metrics: requests by route and status, latency, and the service's state.

Contract: :class:`Metrics` owns a private registry (so several apps can live
in one test process); :class:`MetricsMiddleware` is a plain ASGI middleware
(cheaper than ``BaseHTTPMiddleware``) that counts requests and observes their
latency under the route *template* (``/api/v1/persons/{person_id}``), never the
raw path, so person ids never become label values.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "sunflower_http_requests_total",
            "HTTP requests by route template, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "sunflower_http_request_seconds",
            "HTTP request latency by route template",
            ["route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5),
            registry=self.registry,
        )
        self.models = Gauge(
            "sunflower_champion_loaded",
            "1 when a champion is loaded for the outcome",
            ["outcome", "version"],
            registry=self.registry,
        )
        self.reloads = Counter(
            "sunflower_model_reloads_total", "champion reloads", registry=self.registry
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics, prefix: str = "") -> None:
        self.app, self.metrics, self.prefix = app, metrics, prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def sent(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sent)
        finally:
            route: Any = scope.get("route")
            name = getattr(route, "path", None) or "unmatched"
            # Routes of an included router keep their own path; add the mount prefix back.
            if self.prefix and scope["path"].startswith(self.prefix) and route is not None:
                name = name if name.startswith(self.prefix) else self.prefix + name
            self.metrics.requests.labels(name, scope["method"], str(status[0])).inc()
            self.metrics.latency.labels(name).observe(time.perf_counter() - started)
