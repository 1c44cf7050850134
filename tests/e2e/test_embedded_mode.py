"""Embedded mode: no DATABASE_URL and no Kafka; the service starts its own PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import RunningService, start_service
from tests.e2e.test_households_over_http import get_when_projected
from tests.support import household_body, random_fin


def embedded(tmp_path: Path) -> Iterator[RunningService]:
    yield from start_service(
        tmp_path,
        {
            "DATABASE_URL": "",
            "KAFKA_BOOTSTRAP_SERVERS": "",
            "REINTEGRATION_DATA_DIR": str(tmp_path / "data"),
        },
    )


@pytest.fixture
def embedded_service(tmp_path: Path) -> Iterator[RunningService]:
    yield from embedded(tmp_path)


def test_embedded_mode_serves_the_same_household_view(
    embedded_service: RunningService, tmp_path: Path
) -> None:
    head, child = random_fin(), random_fin()
    with embedded_service.client() as client:
        response = client.post(
            "/api/v1/households", json=household_body(head, child, origin="LAC-002")
        )
        assert response.status_code == 201, response.text
        household_id = response.json()["household_id"]
        household = get_when_projected(client, household_id)
    assert household["origin_settlement_code"] == "LAC-002"
    assert [m["fin"] for m in household["members"]] == [head, child]
    assert (tmp_path / "data" / "postgres" / "PG_VERSION").exists()


def test_embedded_database_is_reused_on_the_next_start(tmp_path: Path) -> None:
    fin = random_fin()
    first = embedded(tmp_path)
    service = next(first)
    with service.client() as client:
        household_id = client.post("/api/v1/households", json=household_body(fin)).json()[
            "household_id"
        ]
        get_when_projected(client, household_id)
    first.close()  # stops the service and its embedded PostgreSQL

    second = embedded(tmp_path)
    service = next(second)
    try:
        with service.client() as client:
            assert client.get(f"/api/v1/households/{household_id}").status_code == 200
            assert client.post("/api/v1/households", json=household_body(fin)).status_code == 409
    finally:
        second.close()
