"""What operators of the service itself read: liveness, readiness and the Prometheus metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool

from api.http.boundary import Utf8JsonRoute
from api.http.dependencies import container
from api.http.problems import problem

router = APIRouter(tags=["operations"], route_class=Utf8JsonRoute)


@router.get("/metrics", response_class=PlainTextResponse)
def prometheus_metrics() -> PlainTextResponse:
    return PlainTextResponse(generate_latest(), media_type=CONTENT_TYPE_LATEST)


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: the process answers. It says nothing of PostgreSQL or Kafka (see /readyz): a
    process that lost one recovers by itself and must not be restarted for it."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> Any:
    """Readiness: whether the API can serve, that is whether it reaches PostgreSQL (asked at
    most once a second). Kafka is not among them: commands are recorded in PostgreSQL and
    published when Kafka is back (the relay's and the projectors' own /readyz report Kafka)."""
    if not hasattr(request.app.state, "readiness"):
        from infra.resilience import POSTGRESQL, Readiness
        from infra.supervision import probes

        needed = probes(container(request))  # the API needs PostgreSQL only (see the docstring)
        request.app.state.readiness = Readiness({POSTGRESQL: needed[POSTGRESQL]})
    ready, states = await run_in_threadpool(request.app.state.readiness)
    if ready:
        return {"status": "ready", "dependencies": states}
    lost = ", ".join(name for name, state in states.items() if not state["up"])
    return problem(
        503,
        "Not ready",
        f"lost: {lost}; the process reconnects by itself",
        kind="not-ready",
        instance="/readyz",
        headers={"Retry-After": "1"},
        dependencies=states,
    )
