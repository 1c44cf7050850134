"""What every route needs, as FastAPI dependencies: who is calling and whether their role may do
this, the command context a change is recorded under, the use cases, the read models, and the
record of a read of personal data. A route declares what it needs in its signature::

    def add_member(household_id: UUID, body: AddMemberIn, use: Use, _: Writer) -> ...

and the errors its use case raises become problems in one place (:mod:`api.http.problems`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, TypeVar
from uuid import UUID

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from api.http import scopes
from api.roles import AUDIT_ROLES, READ_ROLES, WRITE_ROLES
from application.services import Services
from domain import text
from domain.base import Actor, CommandContext, FieldError, ValidationFailed, acting_as
from infra import access_log
from infra.bootstrap import Container

bearer = HTTPBearer(auto_error=False)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
T = TypeVar("T")


def _authorized(request: Request, roles: tuple[str, ...]) -> Actor:
    actor: Actor | None = getattr(request.state, "actor", None)
    if actor is None:  # the boundary authenticates every path but the public ones
        raise HTTPException(401, "a valid bearer token is required")
    if actor.role not in roles:
        raise HTTPException(
            403, f"role {actor.role!r} may not do this; allowed: {', '.join(roles)}"
        )
    return actor


async def _in_scope(request: Request, actor: Actor) -> None:
    """A case outside a district-scoped caller's districts is not found (404); a command
    whose body names one is refused (403). See :mod:`api.http.scopes`."""
    if actor.national:
        return
    built = container(request)
    params = dict(request.path_params)
    named = await run_in_threadpool(scopes.districts_in_path, built.services, params, built.query)
    if not scopes.covers_all(actor, named):
        raise HTTPException(404, "not found")
    national_only = ("/api/v1/rule-sets",)  # rules apply to every district
    if request.method != "GET" and request.url.path.startswith(national_only):
        raise HTTPException(403, "rule sets are drafted and approved by national staff")
    if request.method in ("POST", "PUT", "PATCH") and request.headers.get(
        "content-type", ""
    ).startswith("application/json"):
        try:
            body = await request.json()
        except ValueError:
            return  # the route answers the malformed body
        in_body = await run_in_threadpool(scopes.districts_in_body, built.services, body)
        if not scopes.covers_all(actor, in_body):
            raise HTTPException(403, f"outside your districts ({', '.join(actor.districts)})")


def caller(*roles: str) -> Any:
    """For a read: the caller, when their role is one of ``roles`` (401 or 403 otherwise).
    ``credentials`` is declared so that the OpenAPI document shows the bearer scheme; the
    boundary has already authenticated the token."""

    async def dependency(request: Request, credentials: Credentials) -> Actor:
        actor = _authorized(request, roles)
        await _in_scope(request, actor)
        return actor

    return Depends(dependency)


def acting(*roles: str) -> Any:
    """For a command: the caller, when their role is one of ``roles``, with the command context
    every recorded event carries (who, which request, which correlation) set for the whole run
    of the route. The dependency is async, so it sets the context in the request's own
    context, which the worker thread of a plain ``def`` route copies."""

    async def dependency(request: Request, credentials: Credentials) -> AsyncIterator[Actor]:
        actor = _authorized(request, roles)
        await _in_scope(request, actor)
        context = CommandContext(actor, request.state.correlation_id, request.state.request_id)
        with acting_as(context):
            yield actor

    return Depends(dependency)


Reader = Annotated[Actor, caller(*READ_ROLES)]
Auditor = Annotated[Actor, caller(*AUDIT_ROLES)]
Verifier = Annotated[Actor, caller("integration", *READ_ROLES)]
Writer = Annotated[Actor, acting(*WRITE_ROLES)]
Handler = Annotated[Actor, caller(*WRITE_ROLES)]
"""An operator or supervisor handling a person's request (a read, not a command)."""
Supervisor = Annotated[Actor, acting("supervisor")]


def container(request: Request) -> Container:
    built: Container = request.app.state.container
    return built


# The dependencies below are async (they do no I/O): FastAPI runs a plain ``def`` dependency
# in a worker thread, a hop per dependency per request.


async def services(request: Request) -> Services:
    return container(request).services


Use = Annotated[Services, Depends(services)]
"""The use cases (:mod:`application`)."""


class ReadModels:
    """Runs a read-model query function (``view(cursor, *args)`` from ``projections/``) on a
    pooled connection; with a minimum log position, first waits until the view's projection
    has applied it (:mod:`infra.freshness`)."""

    def __init__(self, run: Callable[..., Any], wait: Callable[[str], None] | None = None) -> None:
        self._run = run
        self._wait = wait
        self._fresh: set[str] = set()

    def __call__(self, view: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if self._wait is not None:
            projection = view.__module__.rsplit(".", 1)[-1]  # projections.queries.<name>
            if projection not in self._fresh:
                self._wait(projection)
                self._fresh.add(projection)
        found: T = self._run(view, *args, **kwargs)
        return found


MinPosition = Annotated[
    int | None,
    Query(
        ge=1,
        le=2**63 - 1,
        description="Read your own writes: the `Log-Position` a command answered with. The "
        "read waits (at most 5 s) until the read model has applied it, else answers 503 with "
        "Retry-After.",
    ),
]


async def read_models(request: Request, min_position: MinPosition = None) -> ReadModels:
    built = container(request)
    if min_position is None:
        return ReadModels(built.query)

    def wait(projection: str) -> None:
        from infra.projection_admin import PROJECTIONS

        built.freshness.wait(
            built.read_pool.connection, PROJECTIONS[projection].schema, min_position
        )

    return ReadModels(built.query, wait)


Views = Annotated[ReadModels, Depends(read_models)]


class AccessLog:
    """Records a read of personal data (:mod:`infra.access_log`): who (user, role,
    districts), what (the route template: a path may hold a FIN), whose, when, from where
    (client address, user agent), why (the ``X-Access-Reason`` header or the ``reason`` query
    parameter, which wins: a client may send a session's purpose in the header and a request's
    own in the query; an auditor must give one) and a search's terms."""

    def __init__(self, request: Request) -> None:
        self.request = request
        header = request.headers.get("x-access-reason")
        if header is not None:  # HTTP headers arrive as Latin-1: read the bytes as UTF-8
            header = header.encode("latin-1").decode("utf-8", "replace")
        self.purpose = text.optional_text(
            "reason", request.query_params.get("reason") or header, text.LINE
        )
        actor: Actor | None = getattr(request.state, "actor", None)
        if actor is not None and actor.role == "auditor" and self.purpose is None:
            raise ValidationFailed(
                [
                    FieldError(
                        "X-Access-Reason",
                        "an auditor's read of personal data needs a purpose (this header or "
                        "the reason query parameter)",
                    )
                ]
            )

    def record(
        self, action: str, subjects: list[UUID], terms: dict[str, Any] | None = None
    ) -> None:
        request = self.request
        route = request.scope.get("route")
        client = request.client
        access_log.record(
            container(request).read_pool,
            access_log.Access(
                request.state.actor,
                action,
                str(getattr(route, "path", "unmatched")),
                subjects,
                self.purpose,
                request.state.correlation_id,
                client_address=client.host if client else None,
                user_agent=(request.headers.get("user-agent") or "")[:256] or None,
                search_terms=terms or {},
            ),
        )


async def access_log_of(request: Request) -> AccessLog:
    return AccessLog(request)


Reads = Annotated[AccessLog, Depends(access_log_of)]
