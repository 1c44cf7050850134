"""The HTTP API (FastAPI). Thin: parse the request, run the command as the caller, map errors."""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import structlog
from fastapi import Depends, FastAPI, Query, Request, Response
from fastapi.responses import HTMLResponse, PlainTextResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from api import eligibility, housing, problems, registry, surveys
from api.boundary import PUBLIC_PATHS, Boundary, Utf8JsonRoute, bearer_token
from api.http_models import MAX_ID, HouseholdIn
from domain import text
from domain.base import Actor, CommandContext, NotFound, acting_as
from domain.registry import NewMember, RegisterHousehold
from infra import access_log
from infra.bootstrap import Container
from projections import households

log = structlog.get_logger("api")

WRITE_ROLES = ("operator", "supervisor")
READ_ROLES = ("operator", "supervisor", "auditor")
AUDIT_ROLES = ("auditor", "supervisor")


class HouseholdCreated(BaseModel):
    household_id: UUID


class MemberView(BaseModel):
    person_id: UUID
    fin: str
    relationship: str
    first_name: str | None
    last_name: str | None
    patronymic: str | None
    birth_date: date | None
    sex: str | None
    idp_status: str | None
    idp_certificate_number: str | None
    date_of_death: date | None


class HouseholdView(BaseModel):
    household_id: UUID
    head_person_id: UUID
    origin_settlement_code: str
    origin_district_code: str | None
    current_address: str
    contact_phone: str | None
    housing_condition: str | None
    vulnerabilities: list[str]
    split_from: UUID | None
    latest_survey: dict[str, Any] | None
    registered_at: datetime
    registered_by: str
    version: int
    updated_at: datetime
    members: list[MemberView]


bearer = HTTPBearer(auto_error=False)


def app_from_env() -> FastAPI:
    """The API for one worker process of `reintegration api --workers N`: each worker builds
    its own container from the environment (API_TOKENS is required: tokens invented in
    development would differ between workers) and closes it on shutdown."""
    from infra.config import ConfigurationError, Settings
    from infra.logging import configure_logging

    settings = Settings.from_env()
    if not settings.api_tokens:
        raise ConfigurationError("API_TOKENS is required with more than one API worker")
    configure_logging(settings.log_format, settings.log_level)
    container = Container(settings)
    app = create_app(container, dict(settings.api_tokens))
    app.router.on_shutdown.append(container.close)
    return app


def create_app(container: Container, tokens: dict[str, Actor]) -> FastAPI:
    app = FastAPI(
        title="Return and Reintegration API",
        version="0.1.0",
        description="Commands and queries for the return and reintegration of displaced households.",
    )
    app.router.route_class = Utf8JsonRoute
    problems.install(app)
    token_items = [(token.encode(), actor) for token, actor in tokens.items()]

    def authenticate(authorization: str | None) -> Actor | None:
        """The actor a bearer token stands for (compared in constant time), or None."""
        token = bearer_token(authorization)
        if token is None:
            return None
        given = token.encode("utf-8", "replace")
        found = None
        for known, actor in token_items:
            if hmac.compare_digest(given, known):
                found = actor
        return found

    app.add_middleware(
        Boundary,
        authenticate=authenticate,
        max_body_bytes=container.settings.http_max_body_bytes,
    )

    def require(*roles: str) -> Any:
        async def dependency(
            request: Request,
            credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
        ) -> Actor:
            actor: Actor | None = getattr(request.state, "actor", None)
            if actor is None:  # the boundary authenticates every path but the public ones
                raise HTTPException(401, "a valid bearer token is required")
            if actor.role not in roles:
                raise HTTPException(
                    403, f"role {actor.role!r} may not do this; allowed: {', '.join(roles)}"
                )
            return actor

        return Depends(dependency)

    @contextmanager
    def command(request: Request, actor: Actor) -> Iterator[None]:
        with acting_as(
            CommandContext(actor, request.state.correlation_id, request.state.request_id)
        ):
            yield

    @app.get("/metrics", tags=["operations"], response_class=PlainTextResponse)
    def prometheus_metrics() -> PlainTextResponse:
        return PlainTextResponse(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz", tags=["operations"])
    def healthz() -> dict[str, str]:
        with container.read_pool.connection() as conn:
            conn.execute("SELECT 1")
        return {"status": "ok"}

    @app.post(
        "/api/v1/households",
        status_code=201,
        response_model=HouseholdCreated,
        tags=["registry"],
    )
    def register_household(
        body: HouseholdIn,
        request: Request,
        response: Response,
        actor: Actor = require(*WRITE_ROLES),
    ) -> HouseholdCreated:
        """Register a household (the case) with all its members. 409 when a member's FIN is
        already registered (the problem names the member)."""
        registration = RegisterHousehold(
            members=[NewMember(**m.model_dump()) for m in body.members],
            origin_settlement_code=body.origin_settlement_code,
            current_address=body.current_address,
            contact_phone=body.contact_phone,
        )
        with command(request, actor):
            household_id = container.application.register_household(registration)
        log.info("household registered", household_id=str(household_id))
        response.headers["Location"] = f"/api/v1/households/{household_id}"
        return HouseholdCreated(household_id=household_id)

    def audited_read(request: Request, actor: Actor, action: str, subjects: list[UUID]) -> None:
        """Record a read of personal data: who, what, when, and why when the caller says."""
        header = request.headers.get("x-access-reason")
        if header is not None:  # HTTP headers arrive as Latin-1: read the bytes as UTF-8
            header = header.encode("latin-1").decode("utf-8", "replace")
        reason = text.optional_text(
            "reason", header or request.query_params.get("reason"), text.LINE
        )
        access_log.record(
            container.read_pool,
            actor,
            action,
            request.url.path,
            subjects,
            reason,
            request.state.correlation_id,
        )

    @app.get("/api/v1/households/{household_id}", response_model=HouseholdView, tags=["registry"])
    def get_household(
        household_id: UUID, request: Request, actor: Actor = require(*READ_ROLES)
    ) -> dict[str, Any]:
        with container.read_pool.connection() as conn, conn.cursor() as cur:
            found = households.get_household(cur, household_id)
        if found is None:
            raise NotFound("household", household_id)
        subjects = [household_id, *(m["person_id"] for m in found["members"])]
        audited_read(request, actor, "read household", subjects)
        return found

    @app.get("/api/v1/audit/households/{household_id}/history", tags=["audit"])
    def case_history(
        household_id: UUID,
        request: Request,
        format: Literal["json", "html"] = "json",
        actor: Actor = require(*AUDIT_ROLES),
    ) -> Any:
        """Every event of the case, from the event store, with actor, role, time, reason and
        causation. ``?format=html`` gives a readable report."""
        history = container.case_history(household_id)
        subjects = [household_id, *{UUID(e["aggregate_id"]) for e in history["events"]}]
        audited_read(request, actor, "read case history", subjects)
        if format == "html":
            from infra.case_history import render_html

            return HTMLResponse(render_html(history, None, actor.user_id))
        return history

    @app.get("/api/v1/audit/households/{household_id}", tags=["audit"])
    def case_as_of(
        household_id: UUID,
        request: Request,
        as_of: datetime | None = None,
        actor: Actor = require(*AUDIT_ROLES),
    ) -> dict[str, Any]:
        """The case as it stood at ``as_of`` (ISO 8601; UTC when no offset is given), replayed
        from the event store, not read from today's read models."""
        moment = as_of or datetime.now(UTC)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        state = container.case_as_of(household_id, moment)
        subjects = [household_id, *(UUID(m["person_id"]) for m in state["members"])]
        audited_read(request, actor, "read case as of", subjects)
        return state

    @app.get("/api/v1/audit/access-log", tags=["audit"])
    def read_access_log(
        actor_id: Annotated[
            str | None, Query(max_length=200, pattern=r"^[^\x00-\x1f\x7f-\x9f]*$")
        ] = None,
        subject_id: UUID | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        after_id: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        actor: Actor = require(*AUDIT_ROLES),
    ) -> dict[str, Any]:
        """Who read whose personal data, when and why. Page with ``after_id``."""
        entries = access_log.query(
            container.read_pool,
            actor_id=actor_id,
            subject_id=subject_id,
            since=since,
            until=until,
            limit=limit,
            after_id=after_id,
        )
        return {"entries": entries, "next_after_id": entries[-1]["id"] if entries else None}

    problems.document(app, PUBLIC_PATHS)
    registry.install(app, container, require, command, audited_read, WRITE_ROLES, READ_ROLES)
    surveys.install(app, container, require, command, audited_read, WRITE_ROLES, READ_ROLES)
    eligibility.install(app, container, require, command, audited_read, WRITE_ROLES, READ_ROLES)
    housing.install(app, container, require, command, audited_read, WRITE_ROLES, READ_ROLES)

    @app.get("/api/v1/audit/public-key", tags=["audit"])
    def audit_public_key() -> dict[str, str]:
        """The Ed25519 public key that verifies the signed checkpoints (also in the README)."""
        import base64

        from infra.tamper_evidence import key_id

        public = container.public_key() or b""
        return {
            "algorithm": "Ed25519",
            "public_key": base64.b64encode(public).decode(),
            "key_id": key_id(public),
        }

    @app.get("/api/v1/audit/checkpoints", tags=["audit"])
    def audit_checkpoints(actor: Actor = require(*AUDIT_ROLES)) -> dict[str, Any]:
        """The signed checkpoints of the hash chain, oldest first."""
        from infra.tamper_evidence import stored_checkpoints

        return {"checkpoints": [c.to_json() for c in stored_checkpoints(container.database_url)]}

    return app
