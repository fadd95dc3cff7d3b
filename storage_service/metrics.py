"""Prometheus metrics of the storage service, served at ``GET /metrics`` (text format).

Each app has a registry of its own (not prometheus_client's global one), so several apps in
one process (the tests) never share or collide on a metric. Request metrics are counted by a
pure ASGI middleware, labelled by the route *template* (``/api/buckets/{bucket}``), never by the
raw path, so the label set stays bounded; a path no route matches is ``<unmatched>``.

The rest is read when scraped: outbox depth and the age of its oldest event, events published
and publisher failures (counted by the publisher on the outbox), the stream sequence of the last
ack, and objects and bytes per bucket from the index. The scrape needs the API key
(``Authorization: Bearer <key>``) since it names the buckets.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lakehouse.settings import Settings
from storage_service.pipeline_state import run_counts_by_table, sensor_cursor, stream_tail

if TYPE_CHECKING:
    from storage_service.runtime import ServiceRuntime

log = logging.getLogger(__name__)

UNMATCHED = "<unmatched>"
METHODS = frozenset({"GET", "HEAD", "PUT", "POST", "DELETE", "PATCH", "OPTIONS"})
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class ServiceMetrics:
    """The app's registry and its request metrics; the runtime's gauges join at start."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "lakewire_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "lakewire_http_request_duration_seconds",
            "Time from request to the last byte of the response, by method and route template.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.bytes_in = Counter(
            "lakewire_http_received_bytes",
            "Request body bytes received, by route template.",
            ["route"],
            registry=r,
        )
        self.bytes_out = Counter(
            "lakewire_http_sent_bytes",
            "Response body bytes sent, by route template.",
            ["route"],
            registry=r,
        )
        self._collectors: list[Collector] = []

    def bind(self, rt: ServiceRuntime) -> None:
        """Export the runtime's state (outbox, publisher, index) and the ingestion side's
        (sensor lag, run outcomes per table) from now on."""
        self.unbind()
        self._collectors = [RuntimeCollector(rt), PipelineCollector(rt.settings)]
        for collector in self._collectors:
            self.registry.register(collector)

    def unbind(self) -> None:
        for collector in self._collectors:
            self.registry.unregister(collector)
        self._collectors = []


def flat_routes(routes: Iterable[BaseRoute]) -> list[Any]:
    """Every route with its full template: FastAPI >= 0.16x keeps an included router whole (its
    routes lack the prefix) and gives ``effective_route_contexts()`` with the prefixed paths."""
    flat: list[Any] = []
    for route in routes:
        contexts = getattr(route, "effective_route_contexts", None)
        flat.extend(contexts() if callable(contexts) else [route])
    return flat


def route_template(routes: Iterable[Any], scope: Scope) -> str:
    """The path template of the route that will answer, matched before the router runs."""
    partial = None
    probe = dict(scope)  # matching reads the scope only; the router gets the real one
    for route in routes:
        match, _ = route.matches(probe)
        template = getattr(route, "path_format", None) or getattr(route, "path", None)
        if match == Match.FULL:
            return str(template or UNMATCHED)
        if match == Match.PARTIAL and partial is None:  # the path matches, the method does not
            partial = template
    return str(partial or UNMATCHED)


class MetricsMiddleware:
    """Counts every HTTP request: status, latency, body bytes in and out."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics, routes: list[BaseRoute]) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = routes
        self._flat: list[Any] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self._flat is None:  # every route is in place by the first request
            self._flat = flat_routes(self.routes)
        route = route_template(self._flat, scope)
        method = scope["method"] if scope["method"] in METHODS else "OTHER"  # bounded labels
        counts = {"in": 0, "out": 0, "status": 500}
        start = time.perf_counter()

        async def counting_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                counts["in"] += len(message.get("body", b""))
            return message

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                counts["status"] = message["status"]
            elif message["type"] == "http.response.body":
                counts["out"] += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, counting_receive, counting_send)
        finally:
            m = self.metrics
            m.requests.labels(method, route, str(counts["status"])).inc()
            m.latency.labels(method, route).observe(time.perf_counter() - start)
            if counts["in"]:
                m.bytes_in.labels(route).inc(counts["in"])
            if counts["out"]:
                m.bytes_out.labels(route).inc(counts["out"])


def event_age_seconds(payload: bytes, now: datetime) -> float:
    """Seconds since the event in an outbox row happened (0 when its time cannot be read)."""
    try:
        body: dict[str, Any] = json.loads(payload)
        stamp = body["Records"][0]["eventTime"]
        then = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    except (ValueError, KeyError, IndexError, TypeError):
        return 0.0
    return max(0.0, (now - then).total_seconds())


class RuntimeCollector(Collector):
    """Read at scrape time: nothing here is kept twice."""

    def __init__(self, rt: ServiceRuntime) -> None:
        self.rt = rt

    def collect(self) -> Iterator[Metric]:
        rt = self.rt
        outbox = rt.outbox
        try:
            depth = outbox.count()
            oldest = outbox.pending(1)
        except Exception as exc:  # a closed database at shutdown: export what is left
            log.debug("metrics: outbox unreadable: %s", exc)
            depth, oldest = 0, []
        yield GaugeMetricFamily(
            "lakewire_outbox_events", "Events on disk waiting for a JetStream ack.", value=depth
        )
        age = event_age_seconds(oldest[0][3], datetime.now(UTC)) if oldest else 0.0
        yield GaugeMetricFamily(
            "lakewire_outbox_oldest_age_seconds",
            "Age of the oldest event still in the outbox (0 when empty).",
            value=age,
        )
        yield CounterMetricFamily(
            "lakewire_events_published",
            "Events JetStream acked since the service started.",
            value=outbox.published,
        )
        yield CounterMetricFamily(
            "lakewire_events_duplicates",
            "Events JetStream acked as duplicates (same Nats-Msg-Id inside its window) and kept"
            " once: a batch published again after a crash before its outbox delete.",
            value=outbox.duplicates,
        )
        yield CounterMetricFamily(
            "lakewire_events_publish_failures",
            "Publisher failures (NATS down, stream missing, timeout) since the service started;"
            " the events stay in the outbox and are retried.",
            value=outbox.failures,
        )
        yield GaugeMetricFamily(
            "lakewire_stream_last_seq",
            "Stream sequence of the last event this service published (0 before the first).",
            value=outbox.stream_seq,
        )
        objects = GaugeMetricFamily(
            "lakewire_bucket_objects", "Objects in the bucket, from the index.", labels=["bucket"]
        )
        size = GaugeMetricFamily(
            "lakewire_bucket_bytes", "Bytes in the bucket, from the index.", labels=["bucket"]
        )
        try:
            for bucket in sorted(rt.index.buckets()):
                stats = rt.index.stats(bucket)
                objects.add_metric([bucket], stats.objects)
                size.add_metric([bucket], stats.size)
        except Exception as exc:
            log.debug("metrics: index unreadable: %s", exc)
        yield objects
        yield size


class PipelineCollector(Collector):
    """The ingestion side, asked at scrape time with short timeouts: the event sensor's
    consumer lag (stream tail minus its cursor) and the finished ingestion runs per table and
    outcome. ``lakewire_pipeline_up`` says whether Dagster and NATS answered; what did not
    answer is left out rather than exported as zero."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "lakewire_pipeline_up",
            "Whether the part answered this scrape (1) or not (0).",
            labels=["part"],
        )
        tail = cursor = None
        try:
            tail = stream_tail(self.settings)
            up.add_metric(["nats"], 1)
        except Exception as exc:
            log.debug("metrics: NATS unreachable: %s", exc)
            up.add_metric(["nats"], 0)
        counts: dict[tuple[str, str], int] | None = None
        try:
            cursor = sensor_cursor(self.settings, timeout=2.0)
            counts = run_counts_by_table(self.settings, timeout=2.0)
            up.add_metric(["dagster"], 1)
        except Exception as exc:
            log.debug("metrics: Dagster unreachable: %s", exc)
            up.add_metric(["dagster"], 0)
        yield up
        if cursor is not None:
            yield GaugeMetricFamily(
                "lakewire_sensor_cursor",
                "Stream sequence the ingestion sensor has read up to.",
                value=cursor,
            )
        if tail is not None:
            yield GaugeMetricFamily(
                "lakewire_stream_tail", "The event stream's last sequence.", value=tail
            )
        if tail is not None and cursor is not None:
            yield GaugeMetricFamily(
                "lakewire_sensor_lag_events",
                "Events in the stream the ingestion sensor has not read yet (tail - cursor).",
                value=max(0, tail - cursor),
            )
        if counts is not None:
            runs = CounterMetricFamily(
                "lakewire_ingestion_runs",
                "Finished ingestion runs, by target table and outcome (Dagster run status).",
                labels=["table", "status"],
            )
            for (table, status), n in sorted(counts.items()):
                runs.add_metric([table, status], n)
            yield runs
