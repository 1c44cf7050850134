"""Prometheus metrics, defined once. The API serves them at /metrics; `relay` and `project`
serve them on METRICS_PORT when it is set."""

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
PROJECTION_LAG = Gauge(
    "reintegration_projection_lag_messages",
    "Messages (offsets) between a projection's stored position and the end of its source.",
    ["projection", "source", "partition"],
)
PROJECTION_APPLIED = Counter(
    "reintegration_projection_events_applied_total",
    "Events a projection applied to its read model.",
    ["projection"],
)
PROJECTION_APPLY_SECONDS = Histogram(
    "reintegration_projection_apply_seconds",
    "Time to apply one batch to a read model and commit it with its offsets.",
    ["projection"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
DEAD_LETTERS = Counter(
    "reintegration_dead_letters_total",
    "Messages a projection could not decode or apply and sent to the dead letters.",
    ["projection", "error_class"],
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
