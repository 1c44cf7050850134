"""Signing in and out of the console.

- With an identity provider (``OIDC_CLIENT_ID``): the OpenID Connect authorization code flow
  with PKCE (S256), ``state`` and ``nonce`` (Authlib's OAuth 2 client). The ID token is
  verified (signature by the provider's published keys, issuer, audience = our client,
  expiry, nonce); the access token then goes through the API's own authenticator, so the
  console knows exactly the roles and districts the API would grant.
- In development: a development token (the ones `make run` prints), checked by the same
  authenticator.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

import httpx
import jwt
import structlog
from authlib.integrations.httpx_client import AsyncOAuth2Client
from fastapi import APIRouter, Form, Request
from starlette.responses import RedirectResponse, Response

from api.console import i18n
from api.console.session import PENDING, Session
from api.console.web import (
    PageProblem,
    console_of,
    language_of,
    render,
    safe_next,
    secure,
)
from infra.config import ConsoleConfig
from infra.identity import OidcConfig, OidcTokens

log = structlog.get_logger("console")
router = APIRouter(include_in_schema=False)
PENDING_S = 600


class OidcClient:
    """The authorization code flow with PKCE against the configured provider."""

    def __init__(self, config: ConsoleConfig, identity: OidcConfig | None) -> None:
        if identity is None:
            raise PageProblem(503, "Sign-in is not configured")
        self.config = config
        self.identity = identity
        self._metadata: dict[str, Any] | None = None
        self._keys = OidcTokens(identity).jwks

    async def metadata(self) -> dict[str, Any]:
        if self._metadata is None:
            async with httpx.AsyncClient(timeout=10) as client:
                answer = await client.get(str(self.config.oidc_discovery_url))
                answer.raise_for_status()
                self._metadata = dict(answer.json())
        return self._metadata

    def _client(self, redirect_uri: str) -> AsyncOAuth2Client:
        return AsyncOAuth2Client(
            client_id=self.config.oidc_client_id,
            client_secret=self.config.oidc_client_secret,
            token_endpoint_auth_method=(
                "client_secret_basic" if self.config.oidc_client_secret else "none"
            ),
            scope="openid profile",
            redirect_uri=redirect_uri,
            code_challenge_method="S256",
            timeout=10,
        )

    async def start(self, redirect_uri: str) -> tuple[str, dict[str, str]]:
        meta = await self.metadata()
        pending = {
            "state": secrets.token_urlsafe(32),
            "nonce": secrets.token_urlsafe(32),
            "verifier": secrets.token_urlsafe(64),
        }
        async with self._client(redirect_uri) as client:
            url, _ = client.create_authorization_url(
                meta["authorization_endpoint"],
                state=pending["state"],
                nonce=pending["nonce"],
                code_verifier=pending["verifier"],
            )
        return url, pending

    async def finish(self, redirect_uri: str, code: str, pending: dict[str, str]) -> str:
        """The access token for an authorization code, once its ID token is verified."""
        meta = await self.metadata()
        async with self._client(redirect_uri) as client:
            token = await client.fetch_token(
                meta["token_endpoint"],
                grant_type="authorization_code",
                code=code,
                code_verifier=pending["verifier"],
            )
        id_token, access_token = token.get("id_token"), token.get("access_token")
        if not isinstance(id_token, str) or not isinstance(access_token, str):
            raise PageProblem(401, "Sign-in failed", "the provider answered without tokens")
        header = jwt.get_unverified_header(id_token)
        key = self._keys.key(str(header.get("kid")))
        if key is None:
            raise PageProblem(401, "Sign-in failed", "the ID token's key is unknown")
        try:
            claims = jwt.decode(
                id_token,
                key.key,
                algorithms=[str(header.get("alg"))],
                audience=self.config.oidc_client_id,
                issuer=self.identity.issuer,
                leeway=self.identity.leeway_s,
                options={"require": ["exp", "iat", "iss", "aud", "sub", "nonce"]},
            )
        except jwt.PyJWTError as exc:
            log.warning("console sign-in refused", reason=type(exc).__name__)
            raise PageProblem(401, "Sign-in failed", "the ID token did not verify") from None
        if not secrets.compare_digest(str(claims.get("nonce")), pending["nonce"]):
            raise PageProblem(401, "Sign-in failed", "the ID token answers another sign-in")
        return access_token


def redirect_uri(request: Request) -> str:
    base = console_of(request).public_url or str(request.base_url).rstrip("/")
    return f"{base}/console/auth/callback"


@router.get("/console/sign-in")
async def sign_in(request: Request, next: str | None = None) -> Response:
    console = console_of(request)
    session = console.sessions.session(request)
    if session.token and console.authenticate(session.token) is not None:
        # Already signed in: a link to this page (from anywhere) must not sign anyone out.
        return secure(RedirectResponse(safe_next(next), 303))
    language = language_of(request, session)
    response = render(
        request,
        "sign_in.html",
        language,
        next=safe_next(next),
        oidc=console.oidc is not None,
        development=bool(console.development_tokens),
        accounts=[
            (index, actor) for index, actor in enumerate(console.development_tokens.values())
        ],
        csrf=session.csrf,
        error=None,
    )
    console.sessions.save(response, Session(None, session.csrf, session.language))
    return response


@router.post("/console/sign-in/development")
async def development_sign_in(
    request: Request,
    csrf: str = Form(""),
    next: str = Form("/console"),
    token: str = Form(""),
    account: str = Form(""),
) -> Response:
    console = console_of(request)
    session = console.sessions.session(request)
    language = language_of(request, session)
    if not console.development_tokens:
        raise PageProblem(404, "Not found")
    if not secrets.compare_digest(csrf.encode(), session.csrf.encode()):
        raise PageProblem(403, "The form has expired", "Reload the page and send the form again.")
    tokens = list(console.development_tokens)
    if account.isdigit() and int(account) < len(tokens):
        token = tokens[int(account)]
    actor = console.authenticate(token.strip()) if token.strip() else None
    if actor is None:
        _ = i18n.gettext(language)
        return render(
            request,
            "sign_in.html",
            language,
            401,
            next=safe_next(next),
            oidc=console.oidc is not None,
            development=True,
            accounts=list(enumerate(console.development_tokens.values())),
            csrf=session.csrf,
            error=_("This token is not valid."),
        )
    log.info("console signed in", actor=actor.user_id, role=actor.role, method="development")
    response = RedirectResponse(safe_next(next), 303)
    console.sessions.save(response, Session(token.strip(), secrets.token_urlsafe(32), language))
    return secure(response)


@router.get("/console/sign-in/provider")
async def provider_sign_in(request: Request, next: str | None = None) -> Response:
    console = console_of(request)
    if console.oidc is None:
        raise PageProblem(404, "Not found")
    url, pending = await console.oidc.start(redirect_uri(request))
    pending["next"] = safe_next(next)
    pending["at"] = str(int(time.time()))
    response = RedirectResponse(url, 303)
    console.sessions.write(response, json.dumps(pending).encode(), PENDING, PENDING_S)
    return secure(response)


@router.get("/console/auth/callback")
async def callback(request: Request, code: str = "", state: str = "", error: str = "") -> Response:
    console = console_of(request)
    if console.oidc is None:
        raise PageProblem(404, "Not found")
    pending = console.sessions.read(request, PENDING)
    if error or not pending or not code:
        raise PageProblem(401, "Sign-in failed", "the provider did not sign you in; try again")
    if not secrets.compare_digest(state.encode(), str(pending.get("state", "")).encode()):
        raise PageProblem(401, "Sign-in failed", "this answer belongs to another sign-in")
    token = await console.oidc.finish(redirect_uri(request), code, pending)
    actor = console.authenticate(token)
    if actor is None:
        raise PageProblem(
            403, "Sign-in failed", "your account has no role in this system; ask its administrator"
        )
    log.info("console signed in", actor=actor.user_id, role=actor.role, method="oidc")
    response = RedirectResponse(safe_next(str(pending.get("next"))), 303)
    console.sessions.save(response, Session(token, secrets.token_urlsafe(32), None))
    console.sessions.clear(response, PENDING)
    return secure(response)


@router.post("/console/sign-out")
async def sign_out(request: Request, csrf: str = Form("")) -> Response:
    console = console_of(request)
    session = console.sessions.session(request)
    if not secrets.compare_digest(csrf.encode(), session.csrf.encode()):
        raise PageProblem(403, "The form has expired", "Reload the page and send the form again.")
    response = RedirectResponse("/console/sign-in", 303)
    console.sessions.clear(response)
    return secure(response)


@router.get("/console/language/{language}")
async def choose_language(request: Request, language: str, next: str | None = None) -> Response:
    chosen = i18n.choose(language, None)
    response = RedirectResponse(safe_next(next), 303)
    response.set_cookie(
        "console_lang",
        chosen,
        max_age=365 * 86400,
        path="/console",
        secure=True,
        httponly=True,
        samesite="lax",
    )
    return secure(response)
