"""While PostgreSQL is lost, every request that needs it is answered at once with 503 problem
JSON and ``Retry-After``, instead of waiting out the pools' timeouts and the event store's
retries (``infra.resilience.DatabaseMonitor`` notices the loss within a second and the return
as soon). Liveness, readiness, metrics and the API's documents stay served."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from api.http.problems import RETRY_AFTER_S, database_unavailable
from infra.resilience import POSTGRESQL, dependency

WITHOUT_DATABASE = frozenset(
    {"/healthz", "/readyz", "/metrics", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"}
)


class Availability:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.postgresql = dependency(POSTGRESQL)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or self.postgresql.up
            or scope.get("path", "") in WITHOUT_DATABASE
        ):
            await self.app(scope, receive, send)
            return
        body = database_unavailable(scope.get("path", ""))
        await send(
            {
                "type": "http.response.start",
                "status": 503,
                "headers": [
                    (b"content-type", b"application/problem+json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"retry-after", str(RETRY_AFTER_S).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
