"""Prometheus metrics at ``GET /metrics``: requests, ingest rates, alert transitions, webhook
deliveries, queue depths and open live streams.

Counters live in this process (each replica exposes its own; Prometheus sums them). Database
figures (deliveries waiting in the outbox, runs by status) are read at scrape time, so every
replica reports the shared queue.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select

from monitor.models import Delivery, Run

REGISTRY = CollectorRegistry(auto_describe=True)

REQUESTS = Counter("ganwatch_http_requests", "HTTP requests served",
                   ["method", "route", "status"], registry=REGISTRY)
LATENCY = Histogram("ganwatch_http_request_duration_seconds", "HTTP request duration",
                    ["method", "route"], registry=REGISTRY,
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
POINTS = Counter("ganwatch_points_ingested", "Points stored", registry=REGISTRY)
BATCHES = Counter("ganwatch_batches", "Point batches received, by outcome",
                  ["outcome"], registry=REGISTRY)
SAMPLES = Counter("ganwatch_samples_ingested", "Sample grids stored", registry=REGISTRY)
TRANSITIONS = Counter("ganwatch_alert_transitions", "Alert notifications (committed)",
                      ["rule", "kind"], registry=REGISTRY)
DELIVERIES = Counter("ganwatch_webhook_deliveries",
                     "Webhook delivery attempts, by what became of the delivery",
                     ["outcome"], registry=REGISTRY)
LIVE_STREAMS = Gauge("ganwatch_live_streams", "Open dashboard live streams", registry=REGISTRY)
IN_FLIGHT = Gauge("ganwatch_webhook_in_flight", "Webhook sends in progress in this process",
                  registry=REGISTRY)
HANDED = Gauge("ganwatch_webhook_handoff_queue",
               "Deliveries handed to this process's worker, not yet started", registry=REGISTRY)

def count_transitions(committed) -> None:
    """Count alert notifications, given as (rule, kind) pairs, once they are committed (the
    ingest pipeline calls this after its commit, with what the commit kept)."""
    for rule, kind in committed:
        TRANSITIONS.labels(rule, kind).inc()


class DatabaseCollector:
    """Queue depths and run counts, read from the database when Prometheus scrapes."""

    def __init__(self, sessions) -> None:
        self.sessions = sessions

    def collect(self):
        pending = GaugeMetricFamily("ganwatch_outbox_pending",
                                    "Webhook deliveries waiting to be sent (all replicas)")
        runs = GaugeMetricFamily("ganwatch_runs", "Runs by status", labels=["status"])
        up = GaugeMetricFamily("ganwatch_database_up", "1 if the database answered the scrape")
        try:
            with self.sessions() as session:
                pending.add_metric([], session.scalar(
                    select(func.count()).select_from(Delivery)
                    .where(Delivery.status == "pending")) or 0)
                for status, n in session.execute(
                        select(Run.status, func.count()).group_by(Run.status)):
                    runs.add_metric([status], n)
            up.add_metric([], 1)
        except Exception:  # a scrape must answer even with the database away
            up.add_metric([], 0)
            yield up
            return
        yield from (pending, runs, up)


def render(sessions) -> bytes:
    database = CollectorRegistry(auto_describe=False)
    database.register(DatabaseCollector(sessions))
    return generate_latest(REGISTRY) + generate_latest(database)


def route_template(scope) -> str:
    """The request's path with its path parameters as ``{name}``, e.g.
    ``/api/v1/runs/{run_id}/points``: a bounded label. ``static`` for the dashboard's files,
    ``unmatched`` when no route took the request (so random URLs add no labels)."""
    path = scope.get("path", "")
    if path.startswith("/static"):
        return "static"
    if "endpoint" not in scope:  # set by the router once a route matched
        return "unmatched"
    params = {str(v): k for k, v in (scope.get("path_params") or {}).items()}
    return "/".join(f"{{{params[seg]}}}" if seg in params else seg for seg in path.split("/"))


ROUTE_KEY = "ganwatch.route"  # scope: a dict shared with inner copies of the scope


class RouteCapture:
    """Innermost: once the router has matched, note the route template where the outer
    MetricsMiddleware finds it (other middleware may hand the app a copy of the scope)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        try:
            await self.app(scope, receive, send)
        finally:
            holder = scope.get(ROUTE_KEY)
            if holder is not None:
                holder["template"] = route_template(scope)


class MetricsMiddleware:
    """Outermost: counts and times every HTTP request, those refused by other middleware
    (413, 400) included, by its route template (``/api/v1/runs/{run_id}``), never by the raw
    path, so run ids do not become label values."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        holder: dict = {}
        scope[ROUTE_KEY] = holder
        start = time.perf_counter()
        status = {"code": 500}

        async def send_status(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            template = holder.get("template") or route_template(scope)
            method = scope.get("method", "")
            REQUESTS.labels(method, template, str(status["code"])).inc()
            LATENCY.labels(method, template).observe(time.perf_counter() - start)
