"""What operators of the service itself read: liveness, readiness and the Prometheus metrics;
and what supervisors do for it: the messages the projections could not apply (dead letters),
replayed once their cause is fixed, as `reintegration dead-letters` does."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from api.http.boundary import Utf8JsonRoute
from api.http.dependencies import Supervisor, caller, container
from api.http.models import MAX_ID, Line, Strict
from api.http.problems import problem
from domain.base import Actor
from infra.bootstrap import PROJECTIONS

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


# --- dead letters ----------------------------------------------------------------------------

PROJECTION_NAMES = tuple(PROJECTIONS)
ProjectionQuery = Annotated[
    Literal[PROJECTION_NAMES] | None,  # type: ignore[valid-type]
    Query(description="Only this projection"),
]
ProjectionPath = Annotated[
    Literal[PROJECTION_NAMES],  # type: ignore[valid-type]
    Path(description="The projection it belongs to"),
]
SupervisorReads = Annotated[Actor, caller("supervisor")]


def _national(actor: Actor) -> None:
    if not actor.national:
        raise HTTPException(403, "dead letters are handled by national supervisors")


def _dead_letter(projection: str, row: Any) -> dict[str, Any]:
    if row.replayed_at:
        state = "replayed"
    elif row.discarded_at:
        state = "discarded"
    else:
        state = "pending"
    return {
        "projection": projection,
        "id": row.id,
        "state": state,
        "source": row.source,
        "partition": row.partition,
        "offset": row.offset,
        "event_type": row.event_type,
        "error_class": row.error_class,
        "error_message": row.error_message,
        "failed_at": row.failed_at,
        "parked": row.parked,
        "replayed_at": row.replayed_at,
        "replayed_by": row.replayed_by,
        "replay_reason": row.replay_reason,
        "discarded_at": row.discarded_at,
        "discarded_by": row.discarded_by,
        "discard_reason": row.discard_reason,
    }


@router.get("/api/v1/operations/dead-letters")
def list_dead_letters(
    request: Request,
    actor: SupervisorReads,
    projection: ProjectionQuery = None,
    include_resolved: Annotated[
        bool, Query(description="Also the replayed and discarded ones")
    ] = False,
) -> dict[str, Any]:
    """Messages a projection could not decode or apply (oldest first, per projection), with
    the reason (naming no value of the message) and how many later events of the same case
    wait behind each. National supervisors only."""
    from projections.admin import dead_letters

    _national(actor)
    database_url = container(request).database_url
    names = [projection] if projection else list(PROJECTIONS)
    return {
        "dead_letters": [
            _dead_letter(name, row)
            for name in names
            for row in dead_letters(database_url, PROJECTIONS[name], include_resolved)
        ]
    }


class ReplayIn(BaseModel):
    model_config = Strict
    reason: Line = Field(description="Why it is replayed now (what was fixed), kept with it")


@router.post(
    "/api/v1/operations/dead-letters/{projection}/{dead_letter_id}/replay",
    responses={
        404: {"description": "The projection has no such dead letter"},
        409: {"description": "It still fails, or waits behind an older dead letter of its case"},
    },
)
def replay_dead_letter(
    request: Request,
    projection: ProjectionPath,
    dead_letter_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    body: ReplayIn,
    actor: Supervisor,
) -> Any:
    """Apply a dead letter again after its cause was fixed, then the events of its case parked
    behind it, in order; recorded with who replayed it, when and why. A dead letter already
    replayed changes nothing (200, ``already replayed``); one that still fails changes nothing
    (409, with why). National supervisors only."""
    from projections.admin import replay_dead_letters

    _national(actor)
    built = container(request)
    (outcome,) = replay_dead_letters(
        built.database_url,
        PROJECTIONS[projection],
        actor.user_id,
        [dead_letter_id],
        prepare_schema=built.settings.manages_schema,
        reason=body.reason,
    )
    found = {
        "projection": projection,
        "id": outcome.id,
        "outcome": outcome.outcome,
        "reason": outcome.reason,
        "released": outcome.released,
        "new_dead_letter": outcome.new_dead_letter,
        "still_parked": outcome.still_parked,
        "replayed_by": actor.user_id,
    }
    if outcome.outcome == "not found":
        detail = f"{projection} has no dead letter #{dead_letter_id}"
        return problem(404, "Not found", detail, kind="not-found", instance=request.url.path)
    if not outcome.resolved:
        return problem(
            409,
            "Not replayed",
            f"dead letter #{dead_letter_id} {outcome.outcome}: {outcome.reason}",
            kind="dead-letter-unresolved",
            instance=request.url.path,
            outcome=outcome.outcome,
            projection=projection,
            id=outcome.id,
            released=outcome.released,
            new_dead_letter=outcome.new_dead_letter,
            still_parked=outcome.still_parked,
        )
    return found
