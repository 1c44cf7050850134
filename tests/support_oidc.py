"""An OpenID Connect provider of our own for the console's sign-in tests: discovery, an
authorization endpoint that signs in whoever the test says (no login form), and a token
endpoint that checks the PKCE verifier, the client and the redirect address before it issues
an ID token (with the nonce) and an access token for the API, both signed by the
:class:`tests.unit.test_identity.Provider` key."""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import jwt
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from tests.support import free_port
from tests.unit.test_identity import AUDIENCE, ISSUER, Provider

CLIENT_ID = "reintegration-console"


@dataclass
class AuthorizationServer:
    provider: Provider
    port: int = field(default_factory=free_port)
    user: dict[str, Any] = field(
        default_factory=lambda: {
            "preferred_username": "leyla",
            "realm_access": {"roles": ["operator"]},
            "districts": ["ZAN"],
        }
    )
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    refusals: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def discovery_url(self) -> str:
        return f"{self.url}/.well-known/openid-configuration"

    def app(self) -> Starlette:
        async def discovery(request: Request) -> Response:
            return JSONResponse(
                {
                    "issuer": ISSUER,
                    "authorization_endpoint": f"{self.url}/authorize",
                    "token_endpoint": f"{self.url}/token",
                    "jwks_uri": f"{self.url}/jwks",
                    "response_types_supported": ["code"],
                    "code_challenge_methods_supported": ["S256"],
                }
            )

        async def authorize(request: Request) -> Response:
            asked = request.query_params
            if asked.get("client_id") != CLIENT_ID or asked.get("response_type") != "code":
                return JSONResponse({"error": "unauthorized_client"}, 400)
            if asked.get("code_challenge_method") != "S256" or not asked.get("code_challenge"):
                return JSONResponse({"error": "invalid_request", "why": "PKCE S256"}, 400)
            code = secrets.token_urlsafe(24)
            self.codes[code] = {
                "challenge": asked["code_challenge"],
                "nonce": asked.get("nonce", ""),
                "redirect_uri": asked.get("redirect_uri", ""),
            }
            target = (
                asked["redirect_uri"] + "?" + urlencode({"code": code, "state": asked["state"]})
            )
            return RedirectResponse(target, 302)

        async def token(request: Request) -> Response:
            form = await request.form()
            issued = self.codes.pop(str(form.get("code")), None)  # a code works once
            if issued is None:
                self.refusals.append("unknown or used code")
                return JSONResponse({"error": "invalid_grant"}, 400)
            verifier = str(form.get("code_verifier", ""))
            challenge = (
                base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
                .rstrip(b"=")
                .decode()
            )
            if challenge != issued["challenge"]:
                self.refusals.append("PKCE verifier")
                return JSONResponse({"error": "invalid_grant"}, 400)
            if form.get("redirect_uri") != issued["redirect_uri"]:
                self.refusals.append("redirect_uri")
                return JSONResponse({"error": "invalid_grant"}, 400)
            now = int(time.time())
            id_token = jwt.encode(
                {
                    "iss": ISSUER,
                    "aud": CLIENT_ID,
                    "sub": "f4c1",
                    "iat": now,
                    "exp": now + 300,
                    "nonce": issued["nonce"],
                    "preferred_username": self.user["preferred_username"],
                },
                self.provider.key,
                algorithm="RS256",
                headers={"kid": self.provider.kid},
            )
            return JSONResponse(
                {
                    "access_token": self.provider.token(aud=AUDIENCE, **self.user),
                    "id_token": id_token,
                    "token_type": "Bearer",
                    "expires_in": 300,
                }
            )

        return Starlette(
            routes=[
                Route("/.well-known/openid-configuration", discovery),
                Route("/authorize", authorize),
                Route("/token", token, methods=["POST"]),
            ]
        )

    @contextmanager
    def running(self) -> Iterator[AuthorizationServer]:
        server = uvicorn.Server(
            uvicorn.Config(self.app(), host="127.0.0.1", port=self.port, log_level="warning")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        try:
            yield self
        finally:
            server.should_exit = True
            thread.join(10)
