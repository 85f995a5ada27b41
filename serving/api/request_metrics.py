"""Prometheus metrics: requests by route and status, latency, and the service's state.

The model monitor's latest verdict and headline figures per outcome, and the
latest published scoring run's duration, size and finish time, and the failed
runs (``score_failures``: how many, the latest), are gauges set
from the database on each scrape (:meth:`Metrics.refresh_from`; issue 16).

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
        self.monitor_verdict = Gauge(
            "sunflower_monitor_verdict",
            "latest model-monitor verdict per outcome: 0 ok, 1 watch, 2 retrain recommended",
            ["outcome", "version"],
            registry=self.registry,
        )
        self.monitor_value = Gauge(
            "sunflower_monitor_value",
            "latest model-monitor headline figures per outcome (drift, CBPE, realised quality)",
            ["outcome", "metric"],
            registry=self.registry,
        )
        self.monitor_date = Gauge(
            "sunflower_monitor_date_seconds",
            "date of the run the latest monitor verdict is about (unix seconds)",
            ["outcome"],
            registry=self.registry,
        )
        self.run_seconds = Gauge(
            "sunflower_score_run_seconds",
            "duration of the latest published scoring run",
            registry=self.registry,
        )
        self.run_persons = Gauge(
            "sunflower_score_run_persons",
            "persons in the latest published scoring run",
            registry=self.registry,
        )
        self.run_failures = Gauge(
            "sunflower_score_failures",
            "scoring runs that failed (rolled back), all time",
            registry=self.registry,
        )
        self.run_last_failure = Gauge(
            "sunflower_score_last_failure_seconds",
            "when the latest scoring run failed (unix seconds, local time; 0 = never)",
            registry=self.registry,
        )
        self.run_finished = Gauge(
            "sunflower_score_run_finished_seconds",
            "when the latest published scoring run finished (unix seconds, local time)",
            registry=self.registry,
        )

    def refresh_from(self, engine: Any) -> None:
        """Set the monitor and daily-job gauges from the database (the latest rows)."""
        import json

        import sqlalchemy as sa

        from serving.db import monitor_runs, score_failures, score_runs

        with engine.connect() as conn:
            latest = conn.execute(
                sa.select(score_runs.c.seconds, score_runs.c.n_persons, score_runs.c.finished_at)
                .where(score_runs.c.status == "published")
                .order_by(score_runs.c.finished_at.desc())
                .limit(1)
            ).first()
            failures = conn.execute(
                sa.select(sa.func.count(), sa.func.max(score_failures.c.at))
            ).one()
            monitored = (
                conn.execute(
                    sa.select(monitor_runs).order_by(monitor_runs.c.as_of, monitor_runs.c.id)
                )
                .mappings()
                .all()
            )
        if latest is not None:
            self.run_seconds.set(latest.seconds or 0.0)
            self.run_persons.set(latest.n_persons)
            if latest.finished_at is not None:
                self.run_finished.set(latest.finished_at.timestamp())
        self.run_failures.set(failures[0] or 0)
        self.run_last_failure.set(failures[1].timestamp() if failures[1] is not None else 0)
        last = {r["outcome"]: r for r in monitored}  # ordered: the latest wins
        self.monitor_verdict.clear()
        for outcome, r in last.items():
            level = {"ok": 0, "watch": 1, "retrain": 2}.get(r["level"], 0)
            self.monitor_verdict.labels(outcome, r["model_version"] or "").set(level)
            self.monitor_date.labels(outcome).set(time.mktime(r["as_of"].timetuple()))
            for name, value in json.loads(r["headline"]).items():
                if value == value and value is not None:
                    self.monitor_value.labels(outcome, name).set(value)

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
