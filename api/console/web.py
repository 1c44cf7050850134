"""What every console page needs: who is signed in (re-authenticated on every request with
the API's own authenticator), in which language, the API client acting as them, the CSRF
check of every form, and the rendering of a template with the console's own
Content-Security-Policy (scripts and styles from this site only, no inline script, no inline
style)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import Depends, Request
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.responses import HTMLResponse, RedirectResponse, Response

from api.console import i18n
from api.console.client import Api
from api.console.session import Session, Sessions, same_token
from domain.base import Actor

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"

POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"
)
"""The console's Content-Security-Policy: no inline script or style, nothing from elsewhere."""


class SignInRequired(Exception):
    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


class PageProblem(Exception):
    """A page that cannot be shown: rendered as the console's error page with ``status``."""

    def __init__(self, status: int, title: str, detail: str | None = None) -> None:
        self.status = status
        self.title = title
        self.detail = detail


@dataclass
class Console:
    """The console's state, one per application."""

    sessions: Sessions
    authenticate: Callable[[str | None], Actor | None]
    development_tokens: Mapping[str, Actor]
    oidc: Any  # api.console.auth.OidcClient or None
    public_url: str | None


def console_of(request: Request) -> Console:
    found: Console = request.app.state.console
    return found


@cache
def environment(language: str) -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(("html", "xml")),
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(i18n.translations(language), newstyle=True)  # type: ignore[attr-defined]
    env.filters["date"] = lambda value: i18n.when(value, language)
    env.filters["datetime"] = lambda value: i18n.when(value, language, time=True)
    env.filters["number"] = lambda value: i18n.number(value, language)
    env.filters["upper_az"] = lambda value: i18n.upper(str(value), language)
    env.globals["static"] = static
    env.globals["language"] = language
    return env


@cache
def _fingerprint(name: str) -> str:
    return hashlib.sha256((STATIC / name).read_bytes()).hexdigest()[:12]


def static(name: str) -> str:
    """The address of a static file, with its content's fingerprint (cached for a year)."""
    return f"/console/static/{name}?v={_fingerprint(name)}"


@dataclass
class Page:
    """One request to the console: the caller, the language, the session and the API."""

    request: Request
    actor: Actor
    session: Session
    language: str
    api: Api

    def t(self, message: str, **values: Any) -> str:
        return i18n.gettext(self.language)(message, **values)

    def render(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        return render(self.request, template, self.language, status, self, **context)

    def check_csrf(self, given: str | None) -> None:
        if not same_token(given or self.request.headers.get("x-csrf-token"), self.session.csrf):
            raise PageProblem(
                403,
                "The form has expired",
                "Reload the page and send the form again.",
            )

    @property
    def national(self) -> bool:
        return self.actor.national


def render(
    request: Request,
    template: str,
    language: str,
    status: int = 200,
    page: Page | None = None,
    **context: Any,
) -> HTMLResponse:
    env = environment(language)
    context.setdefault("actor", page.actor if page else None)
    context.setdefault("csrf", page.session.csrf if page else "")
    body = env.get_template(template).render(
        request=request,
        page=page,
        path=request.url.path,
        query_string=str(request.url.query),
        **context,
    )
    response = HTMLResponse(body, status)
    secure(response)
    return response


def secure(response: Response) -> Response:
    response.headers["content-security-policy"] = POLICY
    response.headers["x-frame-options"] = "DENY"
    response.headers["cross-origin-opener-policy"] = "same-origin"
    return response


def language_of(request: Request, session: Session | None = None) -> str:
    return i18n.choose(
        request.query_params.get("lang"),
        request.cookies.get("console_lang") or (session.language if session else None),
    )


def safe_next(path: str | None) -> str:
    """Only a path of the console itself (no scheme, no host, no //): no open redirect."""
    if not path:
        return "/console"
    parts = urlsplit(path)
    if parts.scheme or parts.netloc or not path.startswith("/console") or "\\" in path:
        return "/console"
    return path


def roles(*allowed: str) -> Any:
    """The signed-in caller, when their role is one of ``allowed``; a sign-in otherwise."""

    async def dependency(request: Request) -> Page:
        console = console_of(request)
        session = console.sessions.session(request)
        actor = console.authenticate(session.token) if session.token else None
        if actor is None or session.token is None:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise SignInRequired(target)
        request.state.actor = actor
        language = language_of(request, session)
        if allowed and actor.role not in allowed:
            raise PageProblem(
                403,
                "Your role may not open this page",
                f"{actor.role}: {', '.join(allowed)}",
            )
        return Page(request, actor, session, language, Api(request, session.token))

    return Depends(dependency)


def sign_in_redirect(next_path: str) -> RedirectResponse:
    return RedirectResponse(f"/console/sign-in?next={quote(safe_next(next_path))}", 303)


AnyRole = Annotated[Page, roles("operator", "supervisor", "auditor")]
