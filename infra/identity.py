"""Who is calling: a bearer token becomes an :class:`~domain.base.Actor` (user, role,
districts), or nothing.

Two kinds of token are accepted (ADR 0014):

- OpenID Connect access tokens (JWT) from the committee's identity provider: the signature
  is checked against the provider's JWKS (an ``https:`` or ``file:`` URL, cached, fetched
  again when a token names a key id it does not hold, at most once a minute), then issuer,
  audience, expiry and not-before; the role and the districts come from configurable claims.
  Only asymmetric algorithms are accepted, each only with a key of its own type, so neither
  ``alg: none`` nor an HMAC "signed" with the public key passes.
- Static tokens, for development and service accounts, stored only as SHA-256 hashes
  (``API_TOKEN_HASHES``); ``reintegration tokens mint`` makes one. A minted token holds 256
  random bits, so a plain hash is enough: there is nothing to guess.

Nothing here logs a token or a claim's value.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import jwt
import structlog

from domain.base import ROLES, Actor

log = structlog.get_logger(__name__)

TOKEN_PREFIX = "rr_"
ROLE_PRECEDENCE = ("supervisor", "operator", "auditor", "integration")
"""The role a caller acts in when the identity provider grants several of ours: the widest."""
ALGORITHMS_BY_KEY_TYPE = {
    "RSA": ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512"),
    "EC": ("ES256", "ES384", "ES512"),
    "OKP": ("EdDSA",),
}
ASYMMETRIC = frozenset(a for algs in ALGORITHMS_BY_KEY_TYPE.values() for a in algs)


class IdentityError(Exception):
    """A configuration of identities that cannot be used (raised at start, never per request)."""


# --- static tokens ------------------------------------------------------------------------


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


@dataclass(frozen=True)
class StaticToken:
    actor: Actor
    expires: datetime | None = None

    def entry(self, digest: str) -> str:
        """Its ``API_TOKEN_HASHES`` entry."""
        districts = f":{'+'.join(self.actor.districts)}" if self.actor.districts else ""
        expiry = f"@{self.expires.strftime('%Y-%m-%dT%H:%M:%SZ')}" if self.expires else ""
        return f"{digest}={self.actor.user_id}:{self.actor.role}{districts}{expiry}"


def mint(
    user_id: str, role: str, districts: tuple[str, ...] = (), expires: datetime | None = None
) -> tuple[str, str]:
    """A new static token and its ``API_TOKEN_HASHES`` entry. The token is shown once."""
    actor = Actor(user_id, role, check_districts(districts))
    if role not in ROLES:
        raise IdentityError(f"role {role!r} is not one of {', '.join(ROLES)}")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    return token, StaticToken(actor, expires).entry(token_hash(token))


def parse_token_hashes(raw: str) -> dict[str, StaticToken]:
    """``API_TOKEN_HASHES``: comma-separated ``SHA256HEX=user:role[:D1+D2][@EXPIRES]``, the
    expiry an ISO 8601 time (UTC unless it says otherwise)."""
    found: dict[str, StaticToken] = {}
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        digest, sep, rest = item.partition("=")
        digest = digest.strip().lower()
        if not sep or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise IdentityError(
                f"API_TOKEN_HASHES entry {digest[:12]!r}... is not of the form "
                "sha256hex=user:role[:DISTRICT+DISTRICT][@expiry]"
            )
        who, _, expiry = rest.partition("@")
        user_id, _, scope = who.partition(":")
        role, _, districts = scope.partition(":")
        if not user_id.strip() or role.strip() not in ROLES:
            raise IdentityError(
                f"API_TOKEN_HASHES entry {digest[:12]!r}...: role {role.strip()!r} is not one "
                f"of {', '.join(ROLES)}"
            )
        expires = _expiry(expiry, digest) if expiry.strip() else None
        codes = tuple(c.strip() for c in districts.split("+") if c.strip())
        found[digest] = StaticToken(
            Actor(user_id.strip(), role.strip(), check_districts(codes)), expires
        )
    return found


def _expiry(raw: str, digest: str) -> datetime:
    try:
        moment = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise IdentityError(
            f"API_TOKEN_HASHES entry {digest[:12]!r}...: expiry {raw.strip()!r} is not ISO 8601"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def check_districts(codes: tuple[str, ...]) -> tuple[str, ...]:
    """District codes as the reference table spells them (refused when unknown), sorted."""
    from domain.geography import settlements

    known = {s.district_code for s in settlements().values()}
    unknown = sorted(set(codes) - known)
    if unknown:
        raise IdentityError(
            f"unknown district code {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    return tuple(sorted(set(codes)))


class StaticTokens:
    """Looks a token up by its hash, compared in constant time."""

    def __init__(self, hashes: Mapping[str, StaticToken]) -> None:
        self._items = [(bytes.fromhex(d), t) for d, t in hashes.items()]

    def __call__(self, token: str) -> Actor | None:
        given = hashlib.sha256(token.encode("utf-8", "replace")).digest()
        found: StaticToken | None = None
        for digest, entry in self._items:
            if hmac.compare_digest(given, digest):
                found = entry
        if found is None or (found.expires is not None and found.expires <= datetime.now(UTC)):
            return None
        return found.actor


# --- OpenID Connect access tokens ---------------------------------------------------------


@dataclass(frozen=True)
class OidcConfig:
    issuer: str
    audience: str
    jwks_url: str
    roles_claim: str = "roles"
    districts_claim: str = "districts"
    user_claim: str = "preferred_username"
    leeway_s: int = 30


class Jwks:
    """The identity provider's signing keys by key id: fetched at first use, again when a
    token names an unknown key id (key rotation), but at most once per ``min_refresh_s``, so
    that tokens with made-up key ids cannot make us hammer the provider."""

    def __init__(
        self,
        url: str,
        min_refresh_s: float = 60.0,
        timeout_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("https", "file"):
            raise IdentityError("OIDC_JWKS_URL must be an https: or file: URL")
        self.url = url
        self.min_refresh_s = min_refresh_s
        self.timeout_s = timeout_s
        self._clock = clock
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._lock = threading.Lock()

    def key(self, kid: str) -> jwt.PyJWK | None:
        with self._lock:
            if kid not in self._keys and self._may_refresh():
                self._refresh()
            return self._keys.get(kid)

    def _may_refresh(self) -> bool:
        return self._fetched_at is None or self._clock() - self._fetched_at >= self.min_refresh_s

    def _refresh(self) -> None:
        self._fetched_at = self._clock()
        try:
            document = json.loads(self._read())
            keys: dict[str, jwt.PyJWK] = {}
            for item in document.get("keys", []):
                if item.get("use", "sig") != "sig" or not item.get("kid"):
                    continue
                try:
                    keys[str(item["kid"])] = jwt.PyJWK(item)
                except jwt.PyJWTError:
                    log.warning("jwks key skipped", kid=str(item.get("kid"))[:64])
        except (OSError, ValueError, AttributeError) as exc:
            log.error("jwks fetch failed", error_class=type(exc).__name__)
            return  # keep the keys we had
        self._keys = keys
        log.info("jwks fetched", keys=len(keys))

    def _read(self) -> bytes:
        parts = urlsplit(self.url)
        if parts.scheme == "file":
            return Path(unquote(parts.path)).read_bytes()
        with urllib.request.urlopen(self.url, timeout=self.timeout_s) as answer:
            body: bytes = answer.read(1024 * 1024)
            return body


class OidcTokens:
    """Verifies an OpenID Connect access token and reads its caller."""

    def __init__(self, config: OidcConfig, jwks: Jwks | None = None) -> None:
        self.config = config
        self.jwks = jwks or Jwks(config.jwks_url)

    def __call__(self, token: str) -> Actor | None:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            return None
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in ASYMMETRIC or not isinstance(kid, str):
            return None
        key = self.jwks.key(kid)
        if key is None or alg not in ALGORITHMS_BY_KEY_TYPE.get(str(key.key_type), ()):
            return None
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[alg],
                audience=self.config.audience,
                issuer=self.config.issuer,
                leeway=self.config.leeway_s,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.PyJWTError:
            return None
        return self._actor(claims)

    def _actor(self, claims: dict[str, Any]) -> Actor | None:
        user = claims.get(self.config.user_claim) or claims.get("sub")
        granted = _strings(_claim(claims, self.config.roles_claim))
        role = next((r for r in ROLE_PRECEDENCE if r in granted), None)
        if not isinstance(user, str) or not user or role is None:
            return None
        raw = _claim(claims, self.config.districts_claim)
        if raw is None:
            return Actor(user, role)  # no district claim: national
        codes = _strings(raw)
        if not codes:  # a district claim naming none: no scope at all, not the whole country
            return None
        try:
            return Actor(user, role, check_districts(tuple(codes)))
        except IdentityError:
            return None


def _claim(claims: Mapping[str, Any], path: str) -> Any:
    """A claim by its dotted path (Keycloak's realm roles are ``realm_access.roles``)."""
    found: Any = claims
    for part in path.split("."):
        if not isinstance(found, Mapping) or part not in found:
            return None
        found = found[part]
    return found


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [v for v in value.replace(",", " ").split() if v]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


# --- together -----------------------------------------------------------------------------


class Authenticator:
    """The caller a bearer token stands for, or None: a static token when it is one, else an
    OpenID Connect access token when a provider is configured."""

    def __init__(self, static: StaticTokens | None = None, oidc: OidcTokens | None = None) -> None:
        self.static = static
        self.oidc = oidc

    def __call__(self, token: str | None) -> Actor | None:
        if not token or len(token) > 16384:
            return None
        if self.static is not None:
            found = self.static(token)
            if found is not None:
                return found
        if self.oidc is not None and token.count(".") == 2:
            return self.oidc(token)
        return None
