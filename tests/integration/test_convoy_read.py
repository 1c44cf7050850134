"""One convoy over HTTP (``GET /api/v1/convoys/{convoy_id}``), as its printed manifest needs
it: departure, vehicles, destination and the families still in it with their heads' names
and numbers of members; the read is in the access log; a caller of another district or an
unknown convoy gets 404."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.http import create_app
from application.demo import great_return
from domain.base import Actor
from infra import access_log
from infra.bootstrap import Container
from infra.config import Settings
from tests.support import create_database

TOKENS = {
    "national": Actor("operator-national", "operator"),
    "zangilan": Actor("operator-zangilan", "operator", ("ZAN",)),
    "fuzuli": Actor("operator-fuzuli", "operator", ("FUZ",)),
}


@pytest.fixture(scope="module")
def world(server_url: str) -> Iterator[tuple[Container, TestClient]]:
    container = Container(Settings(database_url=create_database(server_url)))
    container.projections.prepare()
    great_return(container.services, 50, 2026)  # Aghali (ZAN-002): lottery, convoys, returns
    container.projections.catch_up()
    with TestClient(create_app(container, TOKENS)) as client:
        yield container, client
    container.close()


def _get(client: TestClient, token: str, path: str) -> Any:
    return client.get(path, headers={"Authorization": f"Bearer {token}"})


def test_a_convoy_lists_its_families_with_heads_and_members(
    world: tuple[Container, TestClient],
) -> None:
    container, client = world
    (listed, *_) = _get(client, "national", "/api/v1/convoys?settlement_code=ZAN-002").json()
    before = _last_id(container)

    answer = _get(client, "national", f"/api/v1/convoys/{listed['convoy_id']}")

    assert answer.status_code == 200, answer.text
    (row,) = access_log.query(container.read_pool, after_id=before)
    convoy = answer.json()
    assert convoy["settlement_code"] == "ZAN-002"
    assert convoy["departs_on"] == listed["departs_on"]
    assert convoy["vehicles"] == listed["vehicles"]
    assert {f["household_id"] for f in convoy["families"]} == {
        f["household_id"] for f in listed["families"]
    }
    family = convoy["families"][0]
    household = _get(client, "national", f"/api/v1/households/{family['household_id']}").json()
    head = next(m for m in household["members"] if m["relationship"] == "head")
    assert (family["first_name"], family["last_name"]) == (head["first_name"], head["last_name"])
    assert family["members"] == len(household["members"])
    assert convoy["withdrawn"] == convoy["scheduled"] - len(convoy["families"])
    assert row["resource"] == "/api/v1/convoys/{convoy_id}"
    assert uuid.UUID(family["household_id"]) in row["subject_ids"]
    assert uuid.UUID(family["head_person_id"]) in row["subject_ids"]


def test_a_convoy_of_another_district_or_none_at_all_is_not_found(
    world: tuple[Container, TestClient],
) -> None:
    _, client = world
    (listed, *_) = _get(client, "zangilan", "/api/v1/convoys?settlement_code=ZAN-002").json()
    assert _get(client, "zangilan", f"/api/v1/convoys/{listed['convoy_id']}").status_code == 200
    assert _get(client, "fuzuli", f"/api/v1/convoys/{listed['convoy_id']}").status_code == 404
    assert _get(client, "national", f"/api/v1/convoys/{uuid.uuid4()}").status_code == 404


def _last_id(container: Container) -> int:
    with container.read_pool.connection() as conn:
        row = conn.execute("SELECT coalesce(max(id), 0) AS id FROM audit.access_log").fetchone()
        assert row is not None
        return int(row["id"])
