"""The console's first page: what the signed-in person can do here."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from api.console.web import AnyRole

router = APIRouter(include_in_schema=False)


@router.get("/console")
async def home(page: AnyRole) -> Response:
    return page.render("home.html")
