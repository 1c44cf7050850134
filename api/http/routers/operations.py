"""What operators of the service itself read: liveness and the Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.http.boundary import Utf8JsonRoute
from api.http.dependencies import container

router = APIRouter(tags=["operations"], route_class=Utf8JsonRoute)


@router.get("/metrics", response_class=PlainTextResponse)
def prometheus_metrics() -> PlainTextResponse:
    return PlainTextResponse(generate_latest(), media_type=CONTENT_TYPE_LATEST)


@router.get("/healthz")
def healthz(request: Request) -> dict[str, str]:
    with container(request).read_pool.connection() as conn:
        conn.execute("SELECT 1")
    return {"status": "ok"}
