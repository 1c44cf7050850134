"""The web console for operators, supervisors and auditors (``/console``): server-rendered
pages (Jinja2, htmx for partial updates) in Azerbaijani and English over the API it is served
beside. See :mod:`api.console.web` for what every page shares and ADR 0015 for the design."""

from __future__ import annotations

from collections.abc import Mapping

import structlog
from fastapi import FastAPI, Request
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response

from api.console import auth, i18n, web
from api.console.pages import PAGES
from api.console.session import Sessions
from domain.base import Actor
from infra.config import Settings

log = structlog.get_logger("console")


class VendoredFiles(StaticFiles):
    """The console's own scripts and styles: fingerprinted addresses, cached for a year."""

    def file_response(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        response = super().file_response(*args, **kwargs)
        response.headers["cache-control"] = "public, max-age=31536000, immutable"
        return response


def install(app: FastAPI, settings: Settings, tokens: Mapping[str, Actor] | None) -> None:
    config = settings.console
    development_tokens = dict(settings.api_tokens) | dict(tokens or {})
    app.state.console = web.Console(
        sessions=Sessions(config.session_key, config.session_hours * 3600),
        authenticate=settings.authenticator(tokens),
        development_tokens=development_tokens if settings.development else {},
        oidc=auth.OidcClient(config, settings.oidc) if config.oidc_sign_in else None,
        public_url=config.public_url,
    )
    for module in (auth, *PAGES):
        app.include_router(module.router)
    app.mount("/console/static", VendoredFiles(directory=web.STATIC), name="console-static")

    @app.exception_handler(web.SignInRequired)
    async def _sign_in(request: Request, exc: web.SignInRequired) -> Response:
        if request.headers.get("hx-request"):  # htmx: load the sign-in page as a whole
            return Response(status_code=401, headers={"hx-redirect": "/console/sign-in"})
        return web.secure(web.sign_in_redirect(exc.next_path))

    @app.exception_handler(web.PageProblem)
    async def _problem(request: Request, exc: web.PageProblem) -> Response:
        language = web.language_of(request)
        translate = i18n.gettext(language)  # in Python: a template's _() marks text as HTML
        return web.render(
            request,
            "error.html",
            language,
            exc.status,
            title=translate(exc.title),
            detail=translate(exc.detail) if exc.detail else None,
        )
