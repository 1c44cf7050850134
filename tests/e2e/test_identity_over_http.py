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
