"""What operators of the service itself read: liveness, readiness and the Prometheus metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.http.boundary import Utf8JsonRoute
from api.http.dependencies import container

router = APIRouter(tags=["operations"], route_class=Utf8JsonRoute)


@router.get("/metrics", response_class=PlainTextResponse)
def prometheus_metrics() -> PlainTextResponse:
    return PlainTextResponse(generate_latest(), media_type=CONTENT_TYPE_LATEST)


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: the process answers. It says nothing of PostgreSQL or Kafka (see /readyz): a
    process that lost one recovers by itself and must not be restarted for it."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    responses={
        503: {"description": "A dependency is lost; the body says which (Retry-After is set)"}
    },
)
async def readyz(request: Request) -> Any:
    """Readiness: whether this process reaches each dependency it needs (PostgreSQL; Kafka
    too for `serve`, which runs the relay), as its monitor saw it within the last second."""
    from infra.resilience import readiness

    ready, states = readiness(container(request).dependencies)
    body = {"status": "ready" if ready else "not ready", "dependencies": states}
    if ready:
        return body
    return JSONResponse(body, status_code=503, headers={"Retry-After": "1"})
