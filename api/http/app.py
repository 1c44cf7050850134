"""The HTTP API (FastAPI): the boundary that authenticates and bounds every request, one
router per bounded context, and the problems every error becomes."""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import FastAPI
from fastapi.routing import APIRoute

from api import console
from api.http import idempotency, problems
from api.http.availability import Availability
from api.http.boundary import Boundary, Policy, Utf8JsonRoute, is_public
from api.http.idempotency import IdempotentCommands
from api.http.routers import (
    audit,
    eligibility,
    housing,
    operations,
    registry,
    reintegration,
    relocation,
    surveys,
)
from domain.base import Actor
from infra.bootstrap import Container
from infra.resilience import DatabaseMonitor

ROUTERS = (operations, registry, surveys, eligibility, housing, relocation, reintegration, audit)


def app_from_env() -> FastAPI:
    """The API for one worker process of `reintegration api --workers N`: each worker builds
    its own container from the environment (identities are required: tokens invented in
    development would differ between workers) and closes it on shutdown."""
    from infra.config import ConfigurationError, Settings
    from infra.logging import configure_logging

    settings = Settings.from_env()
    if not settings.identities_configured:
        raise ConfigurationError(
            "identities (OIDC_* or API_TOKEN_HASHES) are required with more than one API worker"
        )
    configure_logging(settings.log_format, settings.log_level)
    container = Container(settings)
    app = create_app(container)
    app.router.on_shutdown.append(container.close)
    return app


def create_app(container: Container, tokens: Mapping[str, Actor] | None = None) -> FastAPI:
    """The API; ``tokens`` are plaintext tokens accepted besides the configured identities
    (the settings refuse plaintext tokens in production: these are for tests)."""
    # The routers' routes are the app's own: FastAPI matches an included router's routes
    # through the router and then again inside it (measured: 40 to 200 µs a request).
    routes = [r for module in ROUTERS for r in module.router.routes if isinstance(r, APIRoute)]
    app = FastAPI(
        title="Return and Reintegration API",
        version="0.1.0",
        description="Commands and queries for the return and reintegration of displaced households.",
        routes=list(routes),
    )
    app.state.container = container
    app.router.route_class = Utf8JsonRoute
    problems.install(app)
    settings = container.settings

    monitor = DatabaseMonitor(lambda: container.database_url, container.database_pools)
    app.router.on_startup.append(monitor.start)
    app.router.on_shutdown.append(monitor.close)
    # Inside the boundary (added first): it sees the authenticated caller and a bounded body.
    app.add_middleware(
        IdempotentCommands,
        keys=lambda: container.idempotency_keys,
        concurrency=container.settings.db_pool_size,
    )
    app.add_middleware(Availability)  # inside the boundary: a caller without a token gets 401
    app.add_middleware(
        Boundary,
        authenticate=settings.authenticator(tokens),
        max_body_bytes=settings.http_max_body_bytes,
        policy=Policy(
            docs=settings.http_docs,
            metrics=settings.http_metrics,
            auth_failures_per_minute=settings.auth_failures_per_minute,
            rate_limit=settings.http_rate_limit,
        ),
    )
    console.install(app, settings, tokens)
    problems.document(
        app,
        routes,
        is_public,
        (idempotency.KEYED_METHODS, idempotency.describe(), idempotency.answer_headers()),
    )
    return app
