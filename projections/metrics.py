"""Prometheus metrics of the projections, defined once (in the process's default registry, so
that /metrics and METRICS_PORT serve them with the others)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

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
PARKED_EVENTS = Gauge(
    "reintegration_projection_parked_events",
    "Events waiting behind a pending dead letter of their key, as of the projector's last batch.",
    ["projection"],
)
EVENTS_PARKED = Counter(
    "reintegration_projection_events_parked_total",
    "Events a projection parked behind a pending dead letter of their key.",
    ["projection"],
)
