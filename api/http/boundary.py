"""The HTTP boundary: what every request passes before a route sees it, and after.

One pure ASGI middleware, the outermost of the application's own:

- the correlation and request ids are taken from ``X-Correlation-ID`` and ``X-Request-ID``
  (checked: printable ASCII, at most 128 characters) or made up, bound to every log line,
  and echoed back;
- the caller is authenticated from the bearer token before anything reads the request body,
  so a request without a valid token gets 401 whatever its body (and an unauthenticated
  client cannot make the server read a large body);
- then a body larger than the limit (``HTTP_MAX_BODY_BYTES``) gets 413 before it is parsed:
  at once when its Content-Length says so, else as soon as the bytes read pass the limit;
- a path or query string holding control characters is refused with 400 naming it;
- an unexpected error answers a problem document with status 500 and an error id, and is
  logged once with that id and its traceback (frames, not the exception's text: it may quote
  personal data);
- every answer is counted in the HTTP metrics by route template, method and status, and
  logged in one line with the route template, never the path (paths hold FINs).

The route-level rules (422) are in the request models.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import parse_qsl

import structlog
from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.http.problems import problem_bytes
from domain.base import Actor
from infra import metrics
from infra.logging import safe_traceback

log = structlog.get_logger("api")

PUBLIC_PATHS = frozenset(
    {
        "/healthz",
        "/readyz",
        "/metrics",
        "/docs",
        "/docs/oauth2-redirect",
        "/redoc",
        "/openapi.json",
        "/api/v1/audit/public-key",
    }
)
"""Paths answered without a token; every other path, known or not, needs one."""
PUBLIC_PREFIXES = ("/api/v1/audit/checkpoints/", "/api/v1/audit/proofs/")
"""The transparency log, open to anyone (a family, a journalist, a witness): checkpoints,
proofs and cosignatures hold hashes and signatures, never personal data."""


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


ID_PATTERN = re.compile(r"[!-~]{1,128}")  # printable ASCII without spaces
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")

Authenticate = Callable[[str | None], Actor | None]


class BodyTooLarge(HTTPException):
    """Raised while the body is read (an HTTPException, so the route lets it through)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit} bytes")


class Boundary:
    def __init__(self, app: ASGIApp, authenticate: Authenticate, max_body_bytes: int) -> None:
        self.app = app
        self.authenticate = authenticate
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = _headers(scope)
        state = scope.setdefault("state", {})
        status = 500
        response_started = False

        async def send_and_note(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = int(message["status"])
                response_started = True
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (b"x-correlation-id", state.get("correlation_id", "").encode()),
                    (b"x-request-id", state.get("request_id", "").encode()),
                ]
            await send(message)

        structlog.contextvars.clear_contextvars()
        try:
            refusal = self._admit(scope, headers, state) or self._size(headers, scope)
            if refusal is not None:
                await _answer(send_and_note, *refusal)
            else:
                await self.app(scope, self._limited(receive), send_and_note)
        except Exception as exc:
            error_id = str(uuid.uuid4())
            log.error(
                "unexpected error",
                error_id=error_id,
                error_class=type(exc).__name__,
                route=_route(scope),
                method=scope.get("method"),
                traceback=safe_traceback(exc),
            )
            if response_started:
                raise
            await _answer(
                send_and_note,
                500,
                "Internal error",
                "something went wrong on our side; quote the error id when you report it",
                "internal-error",
                {"error_id": error_id},
                path=scope.get("path"),
            )
        finally:
            elapsed = time.perf_counter() - started
            route = _route(scope)
            method = str(scope.get("method", ""))
            metrics.HTTP_REQUESTS.labels(method, route, str(status)).inc()
            metrics.HTTP_SECONDS.labels(method, route).observe(elapsed)
            actor: Actor | None = state.get("actor")
            log.info(
                "request",
                method=method,
                route=route,
                status=status,
                ms=round(elapsed * 1000, 1),
                actor=actor.user_id if actor else None,
                role=actor.role if actor else None,
            )

    def _admit(
        self, scope: Scope, headers: dict[str, str], state: dict[str, Any]
    ) -> tuple[Any, ...] | None:
        """Ids, then the path and query, then the caller; the refusal when one fails."""
        path = str(scope.get("path", ""))
        for header, key in (("x-correlation-id", "correlation_id"), ("x-request-id", "request_id")):
            given = headers.get(header)
            if given is not None and ID_PATTERN.fullmatch(given) is None:
                state.setdefault("correlation_id", str(uuid.uuid4()))
                state.setdefault("request_id", str(uuid.uuid4()))
                return _bad_request(
                    header, "1 to 128 printable ASCII characters without spaces", path
                )
            state[key] = given or str(uuid.uuid4())
        structlog.contextvars.bind_contextvars(
            correlation_id=state["correlation_id"], causation_id=state["request_id"]
        )
        if CONTROL.search(path):
            return _bad_request("path", "must not contain control characters", path)
        query = scope.get("query_string", b"").decode("latin-1")
        for name, value in parse_qsl(query, keep_blank_values=True):
            if CONTROL.search(name) or CONTROL.search(value):
                return _bad_request(
                    name if not CONTROL.search(name) else "query",
                    "must not contain control characters",
                    path,
                )
        if is_public(path) or scope.get("method") == "OPTIONS":
            return None
        actor = self.authenticate(headers.get("authorization"))
        if actor is None:
            return (
                401,
                "Unauthenticated",
                "a valid bearer token is required",
                "unauthenticated",
                {},
                {"www-authenticate": "Bearer"},
                path,
            )
        state["actor"] = actor
        structlog.contextvars.bind_contextvars(actor=actor.user_id, role=actor.role)
        return None

    def _size(self, headers: dict[str, str], scope: Scope) -> tuple[Any, ...] | None:
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            reason = f"the request body is larger than {self.max_body_bytes} bytes"
            return (
                413,
                "Content too large",
                reason,
                "too-large",
                {
                    "field": "body",
                    "reason": reason,
                    "errors": [{"field": "body", "reason": reason}],
                },
                {},
                scope.get("path"),
            )
        return None

    def _limited(self, receive: Receive) -> Receive:
        """``receive`` that refuses a body growing past the limit (a body without a length)."""
        limit = self.max_body_bytes
        received = 0

        async def receive_at_most() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        return receive_at_most


class Utf8JsonRequest(Request):
    """A request whose JSON body must be UTF-8 (``json.loads`` on bytes would also take
    UTF-16 and UTF-32; a body in another encoding is refused with 400)."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = json.loads((await self.body()).decode("utf-8"))
        return self._json


class Utf8JsonRoute(APIRoute):
    """The routes of the API: their requests read JSON as UTF-8 only."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def utf8_handler(request: Request) -> Response:
            return await handler(Utf8JsonRequest(request.scope, request.receive))

        return utf8_handler


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header."""
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def _bad_request(field: str, reason: str, path: str) -> tuple[Any, ...]:
    return (
        400,
        "Bad request",
        f"{field}: {reason}",
        "bad-request",
        {"field": field, "reason": reason, "errors": [{"field": field, "reason": reason}]},
        {},
        path,
    )


async def _answer(
    send: Send,
    status: int,
    title: str,
    detail: str,
    kind: str,
    extra: dict[str, Any],
    headers: dict[str, str] | None = None,
    path: str | None = None,
) -> None:
    body = problem_bytes(status, title, detail, kind=kind, instance=path, **extra)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
                *((k.encode(), v.encode()) for k, v in (headers or {}).items()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}


def _route(scope: Scope) -> str:
    route = scope.get("route")
    return str(getattr(route, "path", None) or "unmatched")
