"""Identities (infra/identity.py) through the HTTP boundary: OpenID Connect access tokens signed
by a key generated here and published in a JWKS file, static tokens by their hashes, and the
throttles and headers of the boundary."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.testclient import TestClient

from api.http import problems
from api.http.boundary import Boundary, Policy
from domain.base import Actor
from infra.identity import (
    Authenticator,
    Jwks,
    OidcConfig,
    OidcTokens,
    StaticTokens,
    mint,
    parse_token_hashes,
)

ISSUER = "https://id.committee.example/realms/reintegration"
AUDIENCE = "reintegration-api"


class Provider:
    """An identity provider of our own: an RSA key, its JWKS file, and tokens it signs."""

    def __init__(self, directory: Path) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "key-1"
        self.path = directory / "jwks.json"
        self.publish()

    def publish(self, *extra: tuple[str, Any]) -> None:
        keys = [self._jwk(self.kid, self.key), *(self._jwk(k, key) for k, key in extra)]
        self.path.write_text(json.dumps({"keys": keys}))

    @staticmethod
    def _jwk(kid: str, key: Any) -> dict[str, Any]:
        found: dict[str, Any] = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
        return {**found, "kid": kid, "use": "sig", "alg": "RS256"}

    def token(self, key: Any = None, kid: str | None = None, **changes: Any) -> str:
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": "f4c1",
            "preferred_username": "leyla",
            "exp": now + 300,
            "iat": now,
            "realm_access": {"roles": ["offline_access", "operator"]},
            "districts": ["ZAN"],
            **changes,
        }
        claims = {k: v for k, v in claims.items() if v is not None}
        return jwt.encode(
            claims, key or self.key, algorithm="RS256", headers={"kid": kid or self.kid}
        )


@pytest.fixture
def provider(tmp_path: Path) -> Provider:
    return Provider(tmp_path)


def oidc(provider: Provider, jwks: Jwks | None = None) -> OidcTokens:
    config = OidcConfig(ISSUER, AUDIENCE, provider.path.as_uri(), roles_claim="realm_access.roles")
    return OidcTokens(config, jwks)


def app(authenticate: Authenticator, policy: Policy | None = None) -> FastAPI:
    built = FastAPI()
    problems.install(built)
    built.add_middleware(
        Boundary, authenticate=authenticate, max_body_bytes=1000, policy=policy or Policy()
    )

    @built.get("/whoami")
    def whoami() -> dict[str, str]:
        return {"ok": "yes"}

    @built.get("/page", response_class=HTMLResponse)
    def page() -> str:
        return "<p>hello</p>"

    return built


def test_a_valid_access_token_names_the_user_role_and_districts(provider: Provider) -> None:
    assert oidc(provider)(provider.token()) == Actor("leyla", "operator", ("ZAN",))
    assert oidc(provider)(provider.token(districts=None)) == Actor("leyla", "operator")


def _none_token() -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "exp": int(time.time()) + 300}
    return f"{part({'alg': 'none', 'kid': 'key-1'})}.{part(claims)}."


def _hmac_with_public_key(provider: Provider) -> str:
    public = provider.key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "exp": int(time.time()) + 300}
    header = {"alg": "HS256", "kid": "key-1", "typ": "JWT"}
    signing_input = (
        base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=")
        + b"."
        + base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=")
    )
    import hashlib
    import hmac

    signature = hmac.new(public, signing_input, hashlib.sha256).digest()
    return (signing_input + b"." + base64.urlsafe_b64encode(signature).rstrip(b"=")).decode()


REFUSED = {
    "expired": lambda p: p.token(exp=int(time.time()) - 3600),
    "not yet valid": lambda p: p.token(nbf=int(time.time()) + 3600),
    "wrong audience": lambda p: p.token(aud="another-api"),
    "wrong issuer": lambda p: p.token(iss="https://evil.example/realms/reintegration"),
    "alg none": lambda p: _none_token(),
    "hmac with the public key": _hmac_with_public_key,
    "unknown key id": lambda p: p.token(kid="key-9"),
    "signed by another key": lambda p: p.token(
        key=rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ),
    "no role of ours": lambda p: p.token(realm_access={"roles": ["offline_access"]}),
    "an empty district claim": lambda p: p.token(districts=[]),
    "an unknown district": lambda p: p.token(districts=["XYZ"]),
    "no expiry": lambda p: p.token(exp=None),
    "garbage": lambda p: "not.a.token",
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_every_bad_access_token_is_refused_with_401(provider: Provider, case: str) -> None:
    token = REFUSED[case](provider)
    assert oidc(provider)(token) is None
    client = TestClient(
        app(Authenticator(oidc=oidc(provider)), Policy(auth_failures_per_minute=1000))
    )
    answer = client.get("/whoami", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == "Bearer"


def test_a_new_key_id_fetches_the_jwks_again_but_at_most_once_a_minute(
    provider: Provider,
) -> None:
    now = [1000.0]
    jwks = Jwks(provider.path.as_uri(), clock=lambda: now[0])
    tokens = oidc(provider, jwks)
    assert tokens(provider.token()) is not None
    rotated = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    provider.publish(("key-2", rotated))
    now[0] += 5
    assert tokens(provider.token(key=rotated, kid="key-2")) is None  # too soon to fetch again
    now[0] += 60
    assert tokens(provider.token(key=rotated, kid="key-2")) == Actor("leyla", "operator", ("ZAN",))


def test_a_minted_static_token_is_known_only_by_its_hash_and_expires() -> None:
    token, entry = mint("svc-benefits", "integration")
    assert token not in entry
    static = StaticTokens(parse_token_hashes(entry))
    assert static(token) == Actor("svc-benefits", "integration")
    assert static(token + "x") is None
    old_token, old = mint("zaur", "operator", ("ZAN",))
    expired = StaticTokens(parse_token_hashes(old + "@2020-01-01T00:00:00Z"))
    assert expired(old_token) is None


def test_failed_authentication_is_throttled_per_client_with_retry_after() -> None:
    client = TestClient(app(Authenticator(), Policy(auth_failures_per_minute=3)))
    statuses = [
        client.get("/whoami", headers={"Authorization": "Bearer guess"}).status_code
        for _ in range(5)
    ]
    assert statuses == [401, 401, 401, 429, 429]
    answer = client.get("/whoami")
    assert answer.status_code == 429 and 1 <= int(answer.headers["retry-after"]) <= 61


def test_an_identity_going_past_the_rate_limit_gets_429() -> None:
    token, entry = mint("busy", "operator")
    client = TestClient(
        app(Authenticator(StaticTokens(parse_token_hashes(entry))), Policy(rate_limit="3/minute"))
    )
    auth = {"Authorization": f"Bearer {token}"}
    statuses = [client.get("/whoami", headers=auth).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]


def test_answers_carry_security_headers_and_personal_paths_no_store() -> None:
    token, entry = mint("leyla", "operator")
    client = TestClient(app(Authenticator(StaticTokens(parse_token_hashes(entry)))))
    auth = {"Authorization": f"Bearer {token}"}
    answer = client.get("/whoami", headers=auth)
    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["referrer-policy"] == "no-referrer"
    page = client.get("/page", headers=auth)
    assert "default-src 'none'" in page.headers["content-security-policy"]
    docs = client.get("/docs")
    assert (
        docs.status_code == 200
        and "frame-ancestors 'none'" in docs.headers["content-security-policy"]
    )


def test_docs_and_metrics_are_public_authenticated_or_off_as_configured() -> None:
    token, entry = mint("leyla", "auditor")
    authenticate = Authenticator(StaticTokens(parse_token_hashes(entry)))
    client = TestClient(app(authenticate, Policy(docs="authenticated", metrics="off")))
    assert client.get("/openapi.json").status_code == 401
    assert client.get("/docs", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert client.get("/metrics", headers={"Authorization": f"Bearer {token}"}).status_code == 404


def test_an_unauthenticated_150_mb_body_is_never_read() -> None:
    """The 401 is sent before the first chunk of the body is asked for."""
    received: list[str] = []
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        received.append("chunk")
        return {"type": "http.request", "body": b"x" * 65536, "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/whoami",
        "query_string": b"",
        "client": ("203.0.113.9", 5000),
        "headers": [(b"content-length", str(150 * 1024 * 1024).encode())],
    }
    asyncio.run(app(Authenticator())(scope, receive, send))
    assert sent[0]["status"] == 401
    assert received == []


def test_tokens_mint_prints_the_token_once_and_an_entry_that_names_only_its_hash() -> None:
    from typer.testing import CliRunner

    from api.cli import cli

    minted = CliRunner().invoke(
        cli,
        ["tokens", "mint", "--user", "zangilan-office", "--role", "operator", "--district", "ZAN"],
    )
    assert minted.exit_code == 0, minted.output
    lines = dict(line.split(": ", 1) for line in minted.stdout.splitlines() if ": " in line)
    token, entry = lines["token"], lines["API_TOKEN_HASHES entry"]
    assert token not in entry
    found = StaticTokens(parse_token_hashes(entry))(token)
    assert found == Actor("zangilan-office", "operator", ("ZAN",))
    refused = CliRunner().invoke(
        cli, ["tokens", "mint", "--user", "x", "--role", "operator", "--district", "XYZ"]
    )
    assert refused.exit_code == 2
    assert refused.stderr.strip().startswith("error: unknown district code XYZ")
