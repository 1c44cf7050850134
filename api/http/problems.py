"""RFC 7807 problem details, and the one place errors become HTTP responses.

Every error answer is ``application/problem+json`` with ``type``, ``title``, ``status``,
``detail`` and ``instance``; input errors also name the ``field`` and the ``reason``, and list
every broken rule in ``errors``. The OpenAPI document lists, for every operation, each status
it can answer with this schema (:func:`document`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from api import errors
from domain.base import EventTooLarge, ValidationFailed
from infra.freshness import BeyondTheLog, NotYetApplied

log = structlog.get_logger("api")

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://reintegration.example/problems/"
RETRY_AFTER_S = 5


def problem_bytes(
    status: int, title: str, detail: str, *, kind: str, instance: str | None = None, **extra: Any
) -> bytes:
    body: dict[str, Any] = {
        "type": TYPE_BASE + kind,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    body.update(extra)
    # Rendering an error must never fail in turn: a stray surrogate is written as an escape.
    return json.dumps(body, ensure_ascii=False, default=str).encode("utf-8", "backslashreplace")


def database_unavailable(instance: str) -> bytes:
    """The 503 problem of a request that needs the database while it is not answering."""
    return problem_bytes(
        503,
        "Service unavailable",
        "the database is not answering; try again shortly",
        kind="unavailable",
        instance=instance,
    )


def problem(
    status: int,
    title: str,
    detail: str,
    *,
    kind: str,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    return Response(
        problem_bytes(status, title, detail, kind=kind, instance=instance, **extra),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def _field_from_loc(loc: tuple[Any, ...]) -> str:
    parts = [p for p in loc if p not in ("body", "query", "path", "header")]
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body"


def _reason(error: dict[str, Any]) -> str:
    message = str(error.get("msg", "invalid"))
    return message.removeprefix("Value error, ")  # our validators' reasons, as written


def _line_and_column(document: Any, position: int) -> tuple[int, int]:
    text = document.decode("utf-8", "replace") if isinstance(document, bytes) else str(document)
    line = text.count("\n", 0, position) + 1
    return line, position - (text.rfind("\n", 0, position) + 1) + 1


class _Unavailable:
    """One log line when the database stops answering, not one per request."""

    def __init__(self) -> None:
        self.last = 0.0

    def note(self, error_class: str) -> None:
        # This request's failure only: a pool that was busy, a lock or a deadlock say nothing
        # of PostgreSQL itself. Whether it is lost is the database monitor's to say.
        now = time.monotonic()
        if now - self.last > 10:
            self.last = now
            log.warning("database unavailable; answering 503", error_class=error_class)


def install(app: FastAPI) -> None:
    unavailable = _Unavailable()

    @app.exception_handler(ValidationFailed)
    async def _invalid(request: Request, exc: ValidationFailed) -> Response:
        return problem(
            422,
            "Invalid input",
            str(exc),
            kind="validation",
            instance=request.url.path,
            field=exc.field,
            reason=exc.reason,
            errors=[{"field": e.field, "reason": e.reason} for e in exc.errors],
        )

    @app.exception_handler(RequestValidationError)
    async def _malformed(request: Request, exc: RequestValidationError) -> Response:
        raw = list(exc.errors())
        broken_json = next((e for e in raw if e.get("type") == "json_invalid"), None)
        if broken_json is not None:
            position = int(broken_json["loc"][-1]) if len(broken_json["loc"]) > 1 else 0
            line, column = _line_and_column(exc.body, position)
            why = broken_json.get("ctx", {}).get("error", "malformed JSON")
            reason = f"malformed JSON at line {line}, column {column}: {why}"
            return problem(
                400,
                "Malformed request",
                f"body: {reason}",
                kind="malformed-json",
                instance=request.url.path,
                field="body",
                reason=reason,
                line=line,
                column=column,
                errors=[{"field": "body", "reason": reason}],
            )
        errors = [{"field": _field_from_loc(tuple(e["loc"])), "reason": _reason(e)} for e in raw]
        return problem(
            422,
            "Invalid input",
            "; ".join(f"{e['field']}: {e['reason']}" for e in errors),
            kind="validation",
            instance=request.url.path,
            field=errors[0]["field"] if errors else "body",
            reason=errors[0]["reason"] if errors else "malformed request",
            errors=errors,
        )

    async def _domain_error(request: Request, exc: Exception) -> Response:
        found = errors.meaning(exc)
        assert found is not None  # installed only for the classes errors.MEANINGS names
        extra: dict[str, Any] = {}
        field = getattr(exc, "field", None)
        if isinstance(exc, EventTooLarge):
            field = field or "body"
            extra = {
                "reason": f"the event would be {exc.size} bytes; at most {exc.limit}",
                "errors": [{"field": field, "reason": f"at most {exc.limit} bytes in one event"}],
            }
        if field and found.status in (409, 413):
            extra["field"] = field
        return problem(
            found.status, found.title, str(exc), kind=found.kind, instance=request.url.path, **extra
        )

    for error_class, _meaning in errors.MEANINGS:
        if error_class is not ValidationFailed:
            app.add_exception_handler(error_class, _domain_error)

    async def _unavailable(request: Request, exc: Exception) -> Response:
        unavailable.note(type(exc).__name__)
        return Response(
            database_unavailable(request.url.path),
            status_code=503,
            media_type=PROBLEM_JSON,
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )

    @app.exception_handler(NotYetApplied)
    async def _not_yet(request: Request, exc: NotYetApplied) -> Response:
        return problem(
            503,
            "Not yet applied",
            str(exc),
            kind="not-yet-applied",
            instance=request.url.path,
            headers={"Retry-After": "1"},
            field="min_position",
            reason="the read model has not applied this position yet",
        )

    @app.exception_handler(BeyondTheLog)
    async def _beyond(request: Request, exc: BeyondTheLog) -> Response:
        return problem(
            422,
            "Invalid input",
            str(exc),
            kind="validation",
            instance=request.url.path,
            field="min_position",
            reason="beyond the end of the log",
        )

    for unavailable_class in _unavailable_classes():
        app.add_exception_handler(unavailable_class, _unavailable)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> Response:
        kinds = {
            400: "bad-request",
            401: "unauthenticated",
            403: "forbidden",
            404: "not-found",
            405: "method-not-allowed",
            413: "too-large",
            429: "too-many-requests",
        }
        titles = {
            400: "Bad request",
            401: "Unauthenticated",
            403: "Forbidden",
            404: "Not found",
            405: "Method not allowed",
            413: "Content too large",
            429: "Too many requests",
        }
        detail = str(exc.detail)
        extra: dict[str, Any] = {}
        if exc.status_code == 413:
            extra = {"field": "body", "reason": detail}
        elif exc.status_code == 400:
            detail = (
                "the body could not be read as JSON in UTF-8 (another encoding, a number too "
                "long, or nesting too deep)"
            )
            extra = {"field": "body", "reason": detail}
        return problem(
            exc.status_code,
            titles.get(exc.status_code, "HTTP error"),
            detail,
            kind=kinds.get(exc.status_code, "http-error"),
            instance=request.url.path,
            headers=getattr(exc, "headers", None),
            **extra,
        )


def _unavailable_classes() -> list[type[Exception]]:
    """The errors that mean the database is not answering (not that a request is wrong)."""
    import psycopg
    from eventsourcing import persistence
    from psycopg_pool import PoolTimeout

    return [
        psycopg.OperationalError,
        PoolTimeout,
        persistence.OperationalError,
        persistence.InterfaceError,
    ]


# --- the OpenAPI document ----------------------------------------------------------------

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "description": "An RFC 7807 problem document.",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "field": {"type": "string", "description": "The input that broke a rule."},
        "reason": {"type": "string", "description": "The rule it broke."},
        "errors": {
            "type": "array",
            "description": "Every broken rule, each with its field and reason.",
            "items": {
                "type": "object",
                "required": ["field", "reason"],
                "properties": {"field": {"type": "string"}, "reason": {"type": "string"}},
            },
        },
        "error_id": {
            "type": "string",
            "description": "For 500: the id of the error in the service's log.",
        },
        "line": {"type": "integer", "description": "For malformed JSON: where it breaks."},
        "column": {"type": "integer"},
    },
    "additionalProperties": True,
}
STATUS_DESCRIPTIONS = {
    400: "Malformed request: JSON that does not parse (with line and column), control "
    "characters in the path or query, or a malformed X-Correlation-ID or X-Request-ID",
    401: "No valid bearer token (checked before the body is read)",
    403: "The caller's role may not do this, or the command names a settlement or household "
    "outside the caller's districts",
    404: "Not found (also: a case outside the caller's districts)",
    409: "Conflicts with the case's state, or with a concurrent update",
    413: "The body is larger than the limit (HTTP_MAX_BODY_BYTES), or the change would record "
    "an event larger than the log accepts",
    422: "Invalid input: every broken rule, each with its field and reason",
    429: "Too many failed authentications from this address, or too many requests by this "
    "caller; try again after Retry-After seconds",
    500: "Unexpected error: the answer carries an error id, logged with the cause",
    503: "The database is not answering; try again after Retry-After seconds",
}


COMMAND_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
LOG_POSITION = "Log-Position"
KEYED_STATUS_DESCRIPTIONS = {
    400: "; or a malformed Idempotency-Key",
    409: "; or the first request with the same Idempotency-Key is still running (Retry-After)",
    422: "; or the Idempotency-Key was used for another request",
}


def statuses(route: APIRoute, public: bool) -> list[int]:
    """The error statuses an operation can answer (413: a body over the limit is refused for
    every operation, whether it reads a body or not)."""
    found = {400, 413, 500, 503}
    if not public:
        found |= {401, 403, 429}
    has_body = route.body_field is not None
    parameters = route.dependant.path_params or route.dependant.query_params
    if has_body:
        found |= {413, 422}
    if parameters:
        found.add(422)
    if route.dependant.path_params:
        found.add(404)
    if (route.methods or set()) & {"POST", "PUT", "PATCH", "DELETE"}:
        found |= {404, 409, 422}
    found |= {int(s) for s in route.responses if int(s) >= 400}  # declared by the route
    return sorted(found)


def document(
    app: FastAPI,
    routes: list[APIRoute],
    is_public: Callable[[str], bool],
    keyed: tuple[frozenset[str], dict[str, Any], dict[str, Any]] | None = None,
) -> None:
    """Replace the OpenAPI generator with one that lists every error status of every operation
    in ``routes`` with the problem schema (FastAPI documents only 422, and with another
    schema). ``keyed``: the methods that take an idempotency key, the header parameter, and
    the headers of their successful answers (:mod:`api.http.idempotency`)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        spec = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        spec.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
        for schema_name in ("HTTPValidationError", "ValidationError"):
            spec["components"]["schemas"].pop(schema_name, None)
        reference = {"$ref": "#/components/schemas/Problem"}
        for route in routes:
            if not route.include_in_schema:
                continue
            path_item = spec["paths"].get(route.path_format, {})
            for method in route.methods or ():
                operation = path_item.get(method.lower())
                if operation is None:
                    continue
                responses = operation.setdefault("responses", {})
                keyed_here = keyed is not None and method in keyed[0]
                for status in statuses(route, is_public(route.path_format)):
                    entry = responses.setdefault(str(status), {})
                    declared = route.responses.get(status, {}).get("description")
                    entry["description"] = declared or STATUS_DESCRIPTIONS[status]
                    if keyed_here and status in KEYED_STATUS_DESCRIPTIONS:
                        entry["description"] += KEYED_STATUS_DESCRIPTIONS[status]
                    entry["content"] = {PROBLEM_JSON: {"schema": reference}}
                    if status in (429, 503):
                        entry["headers"] = {
                            "Retry-After": {
                                "description": "Seconds to wait before trying again",
                                "schema": {"type": "integer"},
                            }
                        }
                if keyed is not None and method in COMMAND_METHODS:
                    for status, entry in responses.items():
                        if status.startswith("2"):
                            headers = dict(keyed[2])
                            if not keyed_here:
                                headers = {k: v for k, v in headers.items() if k == LOG_POSITION}
                            entry.setdefault("headers", {}).update(headers)
                if keyed is not None and keyed_here:
                    operation.setdefault("parameters", []).append(keyed[1])
        app.openapi_schema = spec
        return spec

    app.openapi = openapi  # type: ignore[method-assign]
