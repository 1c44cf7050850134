"""Prometheus metrics of the relay and the API, defined once (the projections' are in
projections/metrics.py). The API serves them all at /metrics; `relay` and `project` serve them
on METRICS_PORT when it is set."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS_RELAYED = Counter(
    "reintegration_events_relayed_total", "Events the relay published to Kafka (committed)."
)
RELAY_WITHHELD = Counter(
    "reintegration_relay_withheld_total",
    "Events the relay could not publish and withheld (a dead-letter record names each).",
)
RELAY_LAG = Gauge(
    "reintegration_relay_lag_events",
    "Events in the store not yet published: max notification id minus the relay's position.",
)
HTTP_REQUESTS = Counter(
    "reintegration_http_requests_total",
    "HTTP requests by route template, method and status.",
    ["method", "route", "status"],
)
HTTP_SECONDS = Histogram(
    "reintegration_http_request_seconds",
    "HTTP request duration by route template and method.",
    ["method", "route"],
)
