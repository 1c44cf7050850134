"""Idempotent commands and read-your-writes over HTTP: the ``Idempotency-Key`` request header
(IETF httpapi draft "The Idempotency-Key HTTP Header Field") and the ``Log-Position`` answer
header.

A pure ASGI middleware inside the boundary (which has authenticated the caller and bounds the
body):

- every command (POST, PUT, PATCH, DELETE) runs inside :func:`infra.idempotency.recording`;
  when it recorded events, its answer carries ``Log-Position``: the notification id of its
  last event, to pass as ``min_position`` to a read that must see it;
- a POST or PUT with ``Idempotency-Key`` runs in a transaction of its own
  (:class:`infra.idempotency.KeyedCommand`), and its 2xx answer is stored with its events,
  scoped to the caller. A retry of the same request (same caller, method, path, query and
  body bytes) gets that answer again, with ``Idempotent-Replayed: true``; the same key on
  another request is a 422, while its first request runs a 409, and a malformed key a 400,
  each a problem naming the header. An answer that is not a 2xx, or a command that recorded
  nothing, is not stored: a retry runs the command again.
"""

from __future__ import annotations

import hashlib
import re
import struct
from collections.abc import Callable
from typing import Any

import anyio
from anyio import to_thread
from eventsourcing import persistence
from psycopg_pool import PoolTimeout
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.http.boundary import BodyTooLarge
from api.http.problems import RETRY_AFTER_S, problem_bytes
from domain.base import Actor
from infra import idempotency
from infra.idempotency import IdempotencyKeys, InFlight, KeyedCommand, Mismatch, StoredAnswer

UNAVAILABLE = (persistence.OperationalError, persistence.InterfaceError, PoolTimeout)

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
LOG_POSITION = "Log-Position"
MAX_KEY_LENGTH = 255
COMMAND_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
KEYED_METHODS = frozenset({"POST", "PUT"})
KEY_PATTERN = re.compile(r"[\x20-\x7e]+")
KEY_RULE = f"1 to {MAX_KEY_LENGTH} printable ASCII characters (a bare token or a quoted string)"
NOT_STORED_HEADERS = frozenset(
    {b"content-length", b"date", b"server", b"x-correlation-id", b"x-request-id"}
)
IN_FLIGHT_RETRY_AFTER_S = 1


class MalformedKey(ValueError):
    pass


def parse_key(value: str) -> str:
    """The key of an ``Idempotency-Key`` header: a Structured Field string as the draft says
    (``"…"``, with ``\\"`` and ``\\\\`` escapes), or, as many clients send it, the bare key.
    1 to 255 printable ASCII characters, not all of them spaces."""
    raw = value.strip(" \t")
    key = raw
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        key = re.sub(r"\\([\\\"])", r"\1", raw[1:-1])
        if re.search(r'(?<!\\)"|\\(?![\\"])', raw[1:-1].replace("\\\\", "")):
            raise MalformedKey(KEY_RULE)
    if not key.strip() or len(key) > MAX_KEY_LENGTH or KEY_PATTERN.fullmatch(key) is None:
        raise MalformedKey(KEY_RULE)
    return key


def fingerprint(method: str, path: str, query: bytes, body: bytes) -> bytes:
    """SHA-256 of the request a key stands for: method, path, query string and body bytes,
    each length-prefixed (so no two different requests share one)."""
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode("utf-8", "surrogateescape"), query, body):
        digest.update(struct.pack(">Q", len(part)))
        digest.update(part)
    return digest.digest()


class IdempotentCommands:
    """``concurrency`` bounds the keyed commands in flight (each holds a connection of the
    event store's pool from its start to its commit); more wait, holding nothing. Their
    transactions are opened, committed and rolled back on threads of their own, never on the
    routes' pool: a keyed command holding the event store's write lock must always get a thread
    to commit, however many routes wait on that lock."""

    def __init__(
        self, app: ASGIApp, keys: Callable[[], IdempotencyKeys], concurrency: int = 10
    ) -> None:
        self.app = app
        self.keys = keys
        self.in_flight = anyio.Semaphore(concurrency)
        self.opening = anyio.CapacityLimiter(concurrency)
        self.closing = anyio.CapacityLimiter(concurrency)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope.get("method", "")
        if scope["type"] != "http" or method not in COMMAND_METHODS:
            await self.app(scope, receive, send)
            return
        given = _header(scope, b"idempotency-key")
        actor: Actor | None = scope.get("state", {}).get("actor")
        if given is None or method not in KEYED_METHODS or actor is None:
            with idempotency.recording() as recorded:
                await self.app(scope, receive, _with_position(send, recorded))
            return
        path = str(scope.get("path", ""))
        try:
            key = parse_key(given)
        except MalformedKey as exc:
            await _problem(send, 400, "Bad request", f"{HEADER}: {exc}", "bad-request", path, exc)
            return
        try:
            body = await _read_body(receive)
        except BodyTooLarge as exc:
            reason = str(exc.detail)
            await _problem(send, 413, "Content too large", reason, "too-large", path, reason)
            return
        request = fingerprint(method, path, scope.get("query_string", b""), body)
        async with self.in_flight:
            await self._keyed(scope, receive, send, actor, key, request, body)

    async def _keyed(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        actor: Actor,
        key: str,
        request: bytes,
        body: bytes,
    ) -> None:
        path = str(scope.get("path", ""))
        # A key belongs to the caller in a role: a token whose role no longer allows the
        # command does not get its earlier answer replayed.
        principal = f"{actor.user_id}:{actor.role}"
        try:
            began = await to_thread.run_sync(
                self.keys().begin, principal, key, request, limiter=self.opening
            )
        except UNAVAILABLE:
            await _unavailable(send, path)
            return
        if isinstance(began, InFlight):
            await _problem(
                send,
                409,
                "Request in progress",
                f"{HEADER}: the first request with this key is still being processed; "
                f"retry after it is answered",
                "idempotency-key-in-use",
                path,
                "the first request with this key is still being processed",
                {"retry-after": str(IN_FLIGHT_RETRY_AFTER_S)},
            )
        elif isinstance(began, Mismatch):
            await _problem(
                send,
                422,
                "Idempotency key reused",
                f"{HEADER}: this key was used for another request (method, path, query or "
                "body); use a new key for a new request",
                "idempotency-key-reused",
                path,
                "already used for another request",
            )
        elif isinstance(began, KeyedCommand):
            await self._run(scope, receive, body, send, began)
        else:
            await _replay(send, began.answer)

    async def _run(
        self, scope: Scope, receive: Receive, body: bytes, send: Send, command: KeyedCommand
    ) -> None:
        """Run the command in its transaction; store a 2xx answer with its events, then send."""
        start: Message | None = None
        chunks: list[bytes] = []

        async def keep(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        try:
            with idempotency.recording(command) as recorded:
                await self.app(scope, _replaying(body, receive), keep)
            assert start is not None  # the app answered (an error would have been raised)
            status = int(start["status"])
            headers = [
                (name.decode("latin-1"), value.decode("latin-1"))
                for name, value in start.get("headers", [])
                if name.lower() not in NOT_STORED_HEADERS
            ]
            answer = b"".join(chunks)
            if 200 <= status < 300 and recorded.last is not None:
                headers.append((LOG_POSITION, str(recorded.last)))
                stored = StoredAnswer(status, headers, answer, recorded.last)
                await to_thread.run_sync(command.finish, recorded, stored, limiter=self.closing)
        except UNAVAILABLE:  # the commit's outcome is unknown: the client's retry will tell
            await _unavailable(send, str(scope.get("path", "")))
            return
        finally:
            await to_thread.run_sync(command.abandon, limiter=self.closing)  # unless committed
        await _send(send, status, headers, answer)


def _with_position(send: Send, recorded: idempotency.CommandRecording) -> Send:
    async def send_with_position(message: Message) -> None:
        if message["type"] == "http.response.start" and recorded.last is not None:
            message["headers"] = [
                *message.get("headers", []),
                (LOG_POSITION.lower().encode(), str(recorded.last).encode()),
            ]
        await send(message)

    return send_with_position


async def _replay(send: Send, answer: StoredAnswer) -> None:
    await _send(send, answer.status, [*answer.headers, (REPLAYED, "true")], answer.body)


async def _send(send: Send, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                *(
                    (name.lower().encode("latin-1"), value.encode("latin-1"))
                    for name, value in headers
                ),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _unavailable(send: Send, path: str) -> None:
    body = problem_bytes(
        503,
        "Service unavailable",
        "the database is not answering; try again shortly (with the same Idempotency-Key)",
        kind="unavailable",
        instance=path,
    )
    await _send(
        send,
        503,
        [("content-type", "application/problem+json"), ("retry-after", str(RETRY_AFTER_S))],
        body,
    )


async def _problem(
    send: Send,
    status: int,
    title: str,
    detail: str,
    kind: str,
    path: str,
    reason: object,
    headers: dict[str, str] | None = None,
) -> None:
    why = str(reason)
    body = problem_bytes(
        status,
        title,
        detail,
        kind=kind,
        instance=path,
        field=HEADER,
        reason=why,
        errors=[{"field": HEADER, "reason": why}],
    )
    await _send(
        send,
        status,
        [("content-type", "application/problem+json"), *(headers or {}).items()],
        body,
    )


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away
            return b"".join(chunks)
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replaying(body: bytes, original: Receive) -> Receive:
    """``receive`` for the app: the body already read, then the connection's own messages
    (its disconnection)."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await original()

    return receive


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


def answer_headers() -> dict[str, Any]:
    """The headers of a successful command's answer, for the OpenAPI document."""
    return {
        LOG_POSITION: {
            "description": (
                "The log position (notification id in the event store) of the command's last "
                "event, when it recorded any: pass it as `min_position` to a read that must "
                "see the change"
            ),
            "schema": {"type": "integer", "minimum": 1},
        },
        REPLAYED: {
            "description": (
                "`true` on the stored answer to an earlier request with the same "
                "Idempotency-Key (nothing was recorded again)"
            ),
            "schema": {"type": "string", "enum": ["true"]},
        },
    }


def describe() -> dict[str, Any]:
    """The ``Idempotency-Key`` header parameter, for the OpenAPI document."""
    return {
        "name": HEADER,
        "in": "header",
        "required": False,
        "description": (
            "Makes the command safe to retry (IETF draft 'The Idempotency-Key HTTP Header "
            "Field'): a unique value per request, such as a UUID, "
            f"{KEY_RULE}. A retry of the same request (same caller, method, path, query and "
            "body bytes) within 24 hours gets the original answer again, with "
            f"`{REPLAYED}: true`, and records nothing; the same key with another request is a "
            "422, while the first request with it is still running a 409, and a malformed key "
            "a 400, each a problem naming the header. Answers that are not 2xx are not "
            "stored: their retry runs again."
        ),
        "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH},
    }
