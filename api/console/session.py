"""The console's session: one cookie, encrypted and authenticated (Fernet: AES-128-CBC with
HMAC-SHA256, and its own timestamp for the lifetime), HttpOnly, Secure, SameSite=Lax, scoped
to ``/console``. It holds the caller's bearer token (the identity provider's access token, or
in development a development token): every page re-authenticates it with the API's own
authenticator, so a session ends when its token expires or is withdrawn, and it holds the
CSRF token every form and every htmx request must send back (the synchronizer token pattern).
Nothing personal is in it.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from starlette.requests import Request
from starlette.responses import Response

COOKIE = "console_session"
PENDING = "console_sign_in"  # the authorization request in flight: state, nonce, PKCE verifier
PATH = "/console"


@dataclass
class Session:
    token: str | None = None
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    language: str | None = None

    def as_json(self) -> bytes:
        return json.dumps({"t": self.token, "c": self.csrf, "l": self.language}).encode()


class Sessions:
    def __init__(self, key: str | None, max_age_s: int) -> None:
        self._fernet = Fernet(key or Fernet.generate_key())
        self.max_age_s = max_age_s

    def read(self, request: Request, name: str = COOKIE) -> dict[str, Any] | None:
        raw = request.cookies.get(name)
        if not raw:
            return None
        try:
            found = json.loads(self._fernet.decrypt(raw.encode(), ttl=self.max_age_s))
        except (InvalidToken, ValueError):
            return None
        return found if isinstance(found, dict) else None

    def session(self, request: Request) -> Session:
        found = self.read(request) or {}
        token, csrf = found.get("t"), found.get("c")
        language = found.get("l")
        return Session(
            token if isinstance(token, str) else None,
            csrf if isinstance(csrf, str) and csrf else secrets.token_urlsafe(32),
            language if isinstance(language, str) else None,
        )

    def write(
        self, response: Response, value: bytes, name: str = COOKIE, max_age_s: int | None = None
    ) -> None:
        response.set_cookie(
            name,
            self._fernet.encrypt(value).decode(),
            max_age=max_age_s or self.max_age_s,
            path=PATH,
            secure=True,
            httponly=True,
            samesite="lax",
        )

    def save(self, response: Response, session: Session) -> None:
        self.write(response, session.as_json())

    @staticmethod
    def clear(response: Response, name: str = COOKIE) -> None:
        response.delete_cookie(name, path=PATH, secure=True, httponly=True, samesite="lax")


def same_token(given: str | None, expected: str) -> bool:
    return given is not None and secrets.compare_digest(given.encode(), expected.encode())
