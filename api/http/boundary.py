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
- a client whose authentication failed too often answers 429 with ``Retry-After`` before its
  token is even looked at (``HTTP_AUTH_FAILURES_PER_MINUTE``), and an authenticated caller
  going past ``HTTP_RATE_LIMIT`` answers 429 too (the ``limits`` library, moving windows);
- every answer carries ``X-Content-Type-Options: nosniff`` and ``Referrer-Policy:
  no-referrer``; every answer to an authenticated path ``Cache-Control: no-store`` (it may
  carry personal data); every HTML page a Content-Security-Policy;
- ``/console`` pages sign their callers in themselves (a session cookie holding the caller's
  token, checked by the same authenticator: :mod:`api.console.web`) and call the API with that
  token, through this boundary again; its static files are public;
- ``/docs`` (with ``/redoc`` and ``/openapi.json``) and ``/metrics`` are public, need a token
  or are not served at all, as ``HTTP_DOCS`` and ``HTTP_METRICS`` say;
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
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import structlog
from fastapi import Request, Response
from fastapi.routing import APIRoute
from limits import RateLimitItem, RateLimitItemPerMinute, parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.http.problems import problem_bytes
from domain.base import Actor
from infra import metrics
from infra.logging import safe_traceback

log = structlog.get_logger("api")

DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})
METRICS_PATHS = frozenset({"/metrics"})
PUBLIC_PATHS = frozenset(
    {"/healthz", "/readyz", "/api/v1/audit/public-key", *DOCS_PATHS, *METRICS_PATHS}
)
"""Paths answered without a token; every other path, known or not, needs one."""
CONSOLE = "/console"
CONSOLE_STATIC = "/console/static/"
PUBLIC_PREFIXES = ("/api/v1/audit/checkpoints/", "/api/v1/audit/proofs/")
"""The transparency log, open to anyone (a family, a journalist, a witness): checkpoints,
proofs and cosignatures hold hashes and signatures, never personal data."""


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


HTML_POLICY = (
    "default-src 'none'; script-src 'self' 'unsafe-inline' https:; "
    "style-src 'self' 'unsafe-inline' https:; img-src 'self' data: https:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
"""The Content-Security-Policy of an HTML page (the API documentation pages load their
scripts and styles from a CDN over https and run one inline script; nothing else)."""
ALWAYS = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer")]


@dataclass(frozen=True)
class Policy:
    """What the boundary lets through without a token, and how fast."""

    docs: str = "public"  # public, authenticated or off
    metrics: str = "public"
    auth_failures_per_minute: int = 10
    rate_limit: str = "600/minute"

    def exposure(self, path: str) -> str:
        if path in DOCS_PATHS:
            return self.docs
        if path in METRICS_PATHS:
            return self.metrics
        if path.startswith(CONSOLE_STATIC):
            return "public"
        if path == CONSOLE or path.startswith(CONSOLE + "/"):
            return "session"  # the console signs its callers in itself (api.console.web)
        return "public" if is_public(path) else "authenticated"


class Throttle:
    """Failed authentications per client address and requests per identity, in moving
    windows kept in this process's memory (each API worker process counts its own)."""

    def __init__(self, policy: Policy) -> None:
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._failures: RateLimitItem = RateLimitItemPerMinute(policy.auth_failures_per_minute)
        self._per_identity = parse_many(policy.rate_limit)

    def failures_exhausted(self, client: str) -> int | None:
        """Seconds to wait when the client has failed too often, else None."""
        if self._limiter.test(self._failures, "auth-failures", client):
            return None
        return self._retry_after(self._failures, "auth-failures", client)

    def failed(self, client: str) -> None:
        self._limiter.hit(self._failures, "auth-failures", client)

    def identity_exhausted(self, user_id: str) -> int | None:
        for item in self._per_identity:
            if not self._limiter.hit(item, "identity", user_id):
                return self._retry_after(item, "identity", user_id)
        return None

    def _retry_after(self, item: RateLimitItem, *keys: str) -> int:
        reset = self._limiter.get_window_stats(item, *keys).reset_time
        return max(1, int(reset - time.time()) + 1)


ID_PATTERN = re.compile(r"[!-~]{1,128}")  # printable ASCII without spaces
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")

Authenticate = Callable[[str | None], Actor | None]
"""The caller a bearer token (the header's token, not the header) stands for, or None."""


class BodyTooLarge(HTTPException):
    """Raised while the body is read (an HTTPException, so the route lets it through)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit} bytes")


class Boundary:
    def __init__(
        self,
        app: ASGIApp,
        authenticate: Authenticate,
        max_body_bytes: int,
        policy: Policy | None = None,
    ) -> None:
        self.app = app
        self.authenticate = authenticate
        self.max_body_bytes = max_body_bytes
        self.policy = policy or Policy()
        self.throttle = Throttle(self.policy)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = _headers(scope)
        state = scope.setdefault("state", {})
        status = 500
        response_started = False
        private = self.policy.exposure(str(scope.get("path", ""))) != "public"

        async def send_and_note(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = int(message["status"])
                response_started = True
                given = list(message.get("headers", []))
                names = {k.lower() for k, _ in given}
                extra = [
                    (b"x-correlation-id", state.get("correlation_id", "").encode()),
                    (b"x-request-id", state.get("request_id", "").encode()),
                    *ALWAYS,
                ]
                if private:
                    given = [(k, v) for k, v in given if k.lower() != b"cache-control"]
                    extra.append((b"cache-control", b"no-store"))
                content_type = next((v for k, v in given if k.lower() == b"content-type"), b"")
                if (
                    content_type.startswith(b"text/html")
                    and b"content-security-policy" not in names
                ):
                    extra.append((b"content-security-policy", HTML_POLICY.encode()))
                message["headers"] = [*given, *extra]
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
        exposure = self.policy.exposure(path)
        if exposure == "off":
            return 404, "Not found", "not served here", "not-found", {}, {}, path
        if exposure in ("public", "session") or scope.get("method") == "OPTIONS":
            return None
        client = (scope.get("client") or ("unknown", 0))[0]
        wait = self.throttle.failures_exhausted(client)
        if wait is not None:
            return _too_many("too many failed authentications from this address", wait, path)
        actor = self.authenticate(bearer_token(headers.get("authorization")))
        if actor is None:
            self.throttle.failed(client)
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
        wait = self.throttle.identity_exhausted(actor.user_id)
        if wait is not None:
            return _too_many("too many requests; slow down", wait, path)
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


def _too_many(detail: str, wait: int, path: str) -> tuple[Any, ...]:
    return (
        429,
        "Too many requests",
        detail,
        "too-many-requests",
        {},
        {"retry-after": str(wait)},
        path,
    )


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
