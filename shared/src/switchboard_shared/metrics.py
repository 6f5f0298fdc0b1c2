"""Prometheus metrics shared by every service: HTTP traffic, in-flight requests, breaker state, drops."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

HTTP_REQUESTS = Counter(
    "switchboard_http_requests_total", "HTTP requests handled", ["service", "method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "switchboard_http_request_duration_seconds",
    "HTTP request latency until the response starts streaming",
    ["service", "method", "route"],
    buckets=LATENCY_BUCKETS,
)
HTTP_IN_FLIGHT = Gauge("switchboard_http_in_flight_requests", "Requests being handled", ["service"])
BREAKER_STATE = Gauge(
    "switchboard_breaker_state", "Circuit breaker state (0 closed, 1 half-open, 2 open)", ["downstream"]
)
OUTBOUND_REQUESTS = Counter(
    "switchboard_outbound_requests_total", "Outbound HTTP calls", ["downstream", "outcome"]
)
OUTBOUND_LATENCY = Histogram(
    "switchboard_outbound_request_duration_seconds",
    "Outbound HTTP call latency",
    ["downstream"],
    buckets=LATENCY_BUCKETS,
)
EVENTS_DROPPED = Counter(
    "switchboard_analytics_events_dropped_total", "Analytics events dropped by the client buffer", ["service"]
)
