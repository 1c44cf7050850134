"""The service started as production is: identities from an OpenID Connect provider (its keys
in a JWKS file here), a district office's operator limited to Zangilan."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import RunningService, start_service
from tests.support import household_body, random_fin
from tests.unit.test_identity import AUDIENCE, ISSUER, Provider


@pytest.fixture
def provider(tmp_path: Path) -> Provider:
    return Provider(tmp_path)


@pytest.fixture
def service(tmp_path: Path, database_url: str, provider: Provider) -> Iterator[RunningService]:
    yield from start_service(
        tmp_path,
        {
            "DATABASE_URL": database_url,
            "KAFKA_BOOTSTRAP_SERVERS": "",
            "API_TOKEN_HASHES": "",
            "OIDC_ISSUER": ISSUER,
            "OIDC_AUDIENCE": AUDIENCE,
            "OIDC_JWKS_URL": provider.path.as_uri(),
            "OIDC_ROLES_CLAIM": "realm_access.roles",
        },
    )


def test_a_district_operator_with_an_access_token_works_in_its_district_only(
    service: RunningService, provider: Provider
) -> None:
    def client(token: str) -> httpx.Client:
        return httpx.Client(
            base_url=service.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )

    with client(provider.token()) as zangilan:
        created = zangilan.post("/api/v1/households", json=household_body(random_fin()))
        assert created.status_code == 201, created.text
        lachin = zangilan.post(
            "/api/v1/households", json=household_body(random_fin(), origin="LAC-002")
        )
        assert lachin.status_code == 403, lachin.text
        assert lachin.headers["content-type"] == "application/problem+json"
    with client(provider.token(districts=None)) as national:
        other = national.post(
            "/api/v1/households", json=household_body(random_fin(), origin="LAC-002")
        )
        assert other.status_code == 201, other.text
    with client(provider.token()) as zangilan:
        hidden = zangilan.get(f"/api/v1/households/{other.json()['household_id']}")
        assert hidden.status_code == 404
    with client(provider.token(exp=int(time.time()) - 60)) as expired:
        refused = expired.get("/api/v1/households")
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == "Bearer"


def test_an_unauthenticated_150_mb_upload_is_answered_401_without_being_read(
    service: RunningService,
) -> None:
    """The client announces 150 MB and sends 64 KiB: the 401 comes at once, without the server
    waiting for (or reading) the rest."""
    import socket
    from urllib.parse import urlsplit

    address = urlsplit(service.base_url)
    with socket.create_connection((address.hostname, address.port), timeout=10) as connection:
        connection.sendall(
            b"POST /api/v1/households HTTP/1.1\r\nHost: api\r\n"
            b"Content-Type: application/json\r\nContent-Length: 157286400\r\n\r\n" + b"[" * 65536
        )
        answer = connection.recv(4096)
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
