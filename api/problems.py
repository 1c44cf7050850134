"""RFC 7807 problem details, and the one place domain errors become HTTP responses."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from domain.base import NotFound, ValidationFailed
from domain.eligibility import EligibilityStateError, NotPermitted
from domain.housing import HousingStateError
from domain.registry import InvalidState, PersonAlreadyRegistered
from domain.reintegration import ReintegrationError
from domain.relocation import RelocationStateError
from domain.surveys import SurveyStateError
from infra.application import ConcurrentUpdate

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://reintegration.example/problems/"


def problem(
    status: int,
    title: str,
    detail: str,
    *,
    kind: str,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": TYPE_BASE + kind,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _field_from_loc(loc: tuple[Any, ...]) -> str:
    parts = [p for p in loc if p not in ("body", "query", "path", "header")]
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body"


def install(app: FastAPI) -> None:
    @app.exception_handler(ValidationFailed)
    async def _invalid(request: Request, exc: ValidationFailed) -> JSONResponse:
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
    async def _malformed(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": _field_from_loc(tuple(e["loc"])), "reason": e["msg"]} for e in exc.errors()
        ]
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

    @app.exception_handler(PersonAlreadyRegistered)
    async def _conflict(request: Request, exc: PersonAlreadyRegistered) -> JSONResponse:
        return problem(
            409,
            "Person already registered",
            str(exc),
            kind="person-already-registered",
            instance=request.url.path,
            field="members",
            fin=exc.fin,
        )

    @app.exception_handler(InvalidState)
    @app.exception_handler(SurveyStateError)
    @app.exception_handler(EligibilityStateError)
    @app.exception_handler(HousingStateError)
    @app.exception_handler(RelocationStateError)
    @app.exception_handler(ReintegrationError)
    async def _invalid_state(request: Request, exc: Exception) -> JSONResponse:
        field = getattr(exc, "field", None)
        extra: dict[str, Any] = {"field": field} if field else {}
        return problem(
            409,
            "Conflicts with the case's state",
            str(exc),
            kind="invalid-state",
            instance=request.url.path,
            **extra,
        )

    @app.exception_handler(ConcurrentUpdate)
    async def _concurrent(request: Request, exc: ConcurrentUpdate) -> JSONResponse:
        return problem(
            409, "Concurrent update", str(exc), kind="concurrent-update", instance=request.url.path
        )

    @app.exception_handler(NotPermitted)
    async def _not_permitted(request: Request, exc: NotPermitted) -> JSONResponse:
        return problem(403, "Forbidden", str(exc), kind="forbidden", instance=request.url.path)

    @app.exception_handler(NotFound)
    async def _not_found(request: Request, exc: NotFound) -> JSONResponse:
        return problem(404, "Not found", str(exc), kind="not-found", instance=request.url.path)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        kinds = {
            401: "unauthenticated",
            403: "forbidden",
            404: "not-found",
            405: "method-not-allowed",
        }
        return problem(
            exc.status_code,
            {401: "Unauthenticated", 403: "Forbidden"}.get(exc.status_code, "HTTP error"),
            str(exc.detail),
            kind=kinds.get(exc.status_code, "http-error"),
            instance=request.url.path,
            headers=getattr(exc, "headers", None),
        )
