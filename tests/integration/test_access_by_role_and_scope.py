"""Who may see what, over every operation of the OpenAPI document: for each role, national and
limited to Zangilan (ZAN), a case of Lachin (LAC) is not found and a role not allowed is
forbidden; lists and statistics hold only the caller's districts; every read of personal data
writes one access-log row (who, role, districts, subjects, client, user agent, purpose)."""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from api.http import create_app
from api.http.boundary import is_public
from application.demo import great_return, seed_households
from domain.base import ROLES, Actor, CommandContext, acting_as
from infra import access_log
from infra.bootstrap import Container
from infra.config import Settings
from tests.support import create_database

NATIONAL = {role: f"national-{role}" for role in ROLES}
ZANGILAN = {role: f"zangilan-{role}" for role in ROLES}
TOKENS = {
    **{token: Actor(f"{role}-national", role) for role, token in NATIONAL.items()},
    **{token: Actor(f"{role}-zangilan", role, ("ZAN",)) for role, token in ZANGILAN.items()},
}
PURPOSE = {"X-Access-Reason": "request 2026/118 of the family"}


@dataclass
class World:
    container: Container
    client: TestClient
    zan: dict[str, Any]  # path parameters naming a case of Zangilan
    lac: dict[str, Any]  # and of Lachin


def _one(container: Container, sql: str, *args: Any) -> Any:
    with container.read_pool.connection() as conn, conn.cursor() as cur:
        cur.execute(sql, args)
        row = cur.fetchone()
        assert row is not None, sql
        return next(iter(row.values()))


@pytest.fixture(scope="module")
def world(server_url: str) -> Iterator[World]:
    container = Container(Settings(database_url=create_database(server_url), http_docs="public"))
    container.projections.prepare()
    services = container.services
    great_return(services, 50, 2026)  # Aghali (ZAN-002): decisions, a lottery, convoys, returns
    (lachin, *_) = seed_households(services, 3, 7, True, ["LAC-002"])
    with acting_as(CommandContext(Actor("seeder", "supervisor"), "seed", "seed")):
        services.eligibility.determine_many(services.eligibility.households_in("LAC-002"))
    container.projections.catch_up()
    returnee = _one(container, "SELECT household_id FROM rm_reintegration LIMIT 1")
    zan = _case(container, returnee, "ZAN-002")
    lac = _case(container, lachin, "LAC-002")
    with acting_as(CommandContext(Actor("seeder", "operator"), "seed", "seed")):
        _, zan["verification_code"] = services.registry.issue_status_reference(zan["fin"])
        _, lac["verification_code"] = services.registry.issue_status_reference(lac["fin"])
    container.projections.catch_up()
    with TestClient(create_app(container, TOKENS)) as client:
        yield World(container, client, zan, lac)
    container.close()


def _case(container: Container, household_id: uuid.UUID, code: str) -> dict[str, Any]:
    head = _one(
        container, "SELECT head_person_id FROM rm_households WHERE household_id = %s", household_id
    )
    relocation = "SELECT convoy_id FROM rm_relocations WHERE household_id = %s"
    try:
        convoy = _one(container, relocation, household_id)
    except AssertionError:
        convoy = uuid.uuid4()
    return {
        "household_id": household_id,
        "person_id": head,
        "fin": _one(container, "SELECT fin FROM rm_persons WHERE person_id = %s", head),
        "decision_id": _one(
            container,
            "SELECT decision_id FROM rm_eligibility_current WHERE household_id = %s",
            household_id,
        ),
        "response_id": _one(
            container,
            "SELECT response_id FROM rm_survey_responses WHERE household_id = %s LIMIT 1",
            household_id,
        ),
        "convoy_id": convoy,
        "code": code,
        "number": 1,
        "version": 1,
        "appeal_id": uuid.uuid4(),
    }


def _operations(client: TestClient) -> list[tuple[str, str]]:
    spec = client.get("/openapi.json").json()
    return [
        (method.upper(), path)
        for path, item in spec["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete") and not is_public(path)
    ]


def _roles(client: TestClient, method: str, path: str) -> tuple[str, ...]:
    """The roles the route's identity dependency admits (read from the dependency itself)."""
    app: Any = client.app
    (route,) = [
        r for r in app.routes if isinstance(r, APIRoute) and r.path == path and method in r.methods
    ]
    for dependency in route.dependant.dependencies:
        found = inspect.getclosurevars(dependency.call).nonlocals.get("roles")
        if found:
            return tuple(found)
    raise AssertionError(f"{method} {path} declares no role")


def _url(path: str, params: dict[str, Any]) -> str:
    if path.startswith("/api/v1/rule-sets/") or path.startswith("/api/v1/questionnaires/"):
        params = {**params, "code": "great-return-housing"}
    for name, value in params.items():
        path = path.replace("{" + name + "}", str(value))
    return path


def _call(world: World, token: str, method: str, path: str, params: dict[str, Any]) -> Any:
    url = _url(path, params)
    query = {"fin": params["fin"]} if "verification_code" in path else {}
    headers = {"Authorization": f"Bearer {token}", **PURPOSE}
    body = None if method == "GET" else {}
    return world.client.request(method, url, headers=headers, params=query, json=body)


def test_every_operation_for_every_role_and_scope(world: World) -> None:
    """A role not allowed is forbidden (403) whatever the case; a Zangilan caller asking for a
    case of Lachin gets 404, as for a case that does not exist; a national caller is neither
    forbidden nor told the case is not found."""
    checked = 0
    for method, path in _operations(world.client):
        allowed = _roles(world.client, method, path)
        names_case = any(
            "{" + name + "}" in path
            for name in ("household_id", "fin", "decision_id", "response_id", "convoy_id")
        ) or path.startswith(("/api/v1/settlements/{code}", "/api/v1/audit/settlements/{code}"))
        for role in ROLES:
            national = _call(world, NATIONAL[role], method, path, world.lac)
            zangilan = _call(world, ZANGILAN[role], method, path, world.lac)
            where = f"{role} {method} {path}"
            if role not in allowed:
                assert national.status_code == 403, (where, national.text)
                assert zangilan.status_code == 403, (where, zangilan.text)
                continue
            assert national.status_code not in (401, 403), (where, national.text)
            if names_case:
                assert zangilan.status_code == 404, (where, zangilan.text)
                if national.status_code != 404:
                    assert zangilan.json()["detail"] == "not found", where  # no more than that
            checked += 1
    assert checked > 60


def test_a_zangilan_caller_reads_its_own_cases(world: World) -> None:
    auth = {"Authorization": f"Bearer {ZANGILAN['operator']}"}
    household = world.zan["household_id"]
    assert world.client.get(f"/api/v1/households/{household}", headers=auth).status_code == 200
    assert world.client.get(f"/api/v1/persons/{world.zan['fin']}", headers=auth).status_code == 200
    found = world.client.get("/api/v1/households?limit=200", headers=auth).json()["items"]
    assert found and {h["origin_settlement_code"] for h in found} == {"ZAN-002"}
    everyone = world.client.get(
        "/api/v1/households?limit=200", headers={"Authorization": f"Bearer {NATIONAL['operator']}"}
    ).json()["items"]
    assert {"ZAN-002", "LAC-002"} <= {h["origin_settlement_code"] for h in everyone}
    persons = world.client.get("/api/v1/persons?limit=200", headers=auth).json()["items"]
    assert persons and {p["origin_settlement_code"] for p in persons} == {"ZAN-002"}
    statistics = world.client.get("/api/v1/eligibility/statistics", headers=auth).json()
    assert {s["settlement_code"] for s in statistics} == {"ZAN-002"}


def test_a_zangilan_caller_cannot_register_a_family_of_lachin(world: World) -> None:
    auth = {"Authorization": f"Bearer {ZANGILAN['operator']}"}
    body = {
        "origin_settlement_code": "LAC-002",
        "current_address": "Bakı, Xətai r-nu",
        "members": [
            {
                "fin": "7QZ2K9L",
                "first_name": "Aysel",
                "last_name": "Quliyeva",
                "birth_date": "1980-03-01",
                "sex": "female",
                "relationship": "head",
            }
        ],
    }
    refused = world.client.post("/api/v1/households", json=body, headers=auth)
    assert refused.status_code == 403, refused.text


NOT_PERSONAL = {
    "/api/v1/rule-sets",
    "/api/v1/rule-sets/{code}/versions/{version}",
    "/api/v1/eligibility/facts-schema",
    "/api/v1/eligibility/statistics",
    "/api/v1/surveys/statistics",
    "/api/v1/questionnaires/{code}/{version}",
    "/api/v1/settlements",
    "/api/v1/settlements/{code}",
    "/api/v1/settlements/{code}/rounds",
    "/api/v1/settlements/{code}/rounds/{number}/result",  # published: entrants by pseudonym
    "/api/v1/relocation/pipeline",
    "/api/v1/audit/checkpoints",
    "/api/v1/audit/access-log",  # reads the log itself
    "/api/v1/audit/verification",  # hashes, positions and signatures
    "/api/v1/audit/projections",  # counts; rows only when they differ (national callers only)
    "/api/v1/operations/dead-letters",  # where and why a message failed, no value of it
}
"""Reads that carry no one's personal data: rules, counts, settlements, the log's own state."""


def test_every_read_of_personal_data_writes_one_access_log_row(world: World) -> None:
    reads = [path for method, path in _operations(world.client) if method == "GET"]
    personal = [p for p in reads if p not in NOT_PERSONAL]
    assert len(personal) >= 15, personal
    token = NATIONAL["supervisor"]  # a supervisor may make every read
    for path in personal:
        before = _last_id(world.container)
        answer = world.client.get(
            _url(path, world.zan),
            params={"fin": world.zan["fin"]} if "verification_code" in path else {},
            headers={
                "Authorization": f"Bearer {token}",
                "User-Agent": "district-office-desk/2.1",
                **PURPOSE,
            },
        )
        assert answer.status_code == 200, (path, answer.text)
        assert answer.headers["cache-control"] == "no-store"
        rows = access_log.query(world.container.read_pool, after_id=before)
        assert len(rows) == 1, (path, rows)
        (row,) = rows
        assert row["resource"] == path and row["actor_id"] == "supervisor-national"
        assert row["reason"] == PURPOSE["X-Access-Reason"]
        assert row["user_agent"] == "district-office-desk/2.1" and row["client_address"]
        household = {world.zan["household_id"], world.zan["person_id"]}
        assert household & set(row["subject_ids"]) or path in LIST_READS, (path, row)
        assert row["subject_ids"], path
        assert world.zan["fin"] not in row["resource"]


LIST_READS = {
    "/api/v1/persons",
    "/api/v1/households",
    "/api/v1/convoys",
    "/api/v1/reintegration/returnees",
    "/api/v1/settlements/{code}/units",
    "/api/v1/audit/settlements/{code}/rounds/{number}/rerun",
}


def test_an_auditor_must_say_why_and_searches_keep_their_terms(world: World) -> None:
    auth = {"Authorization": f"Bearer {NATIONAL['auditor']}"}
    household = world.zan["household_id"]
    refused = world.client.get(f"/api/v1/households/{household}", headers=auth)
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "X-Access-Reason"
    before = _last_id(world.container)
    world.client.get("/api/v1/households", params={"fin": world.zan["fin"]}, headers=PURPOSE | auth)
    (row,) = access_log.query(world.container.read_pool, after_id=before)
    assert row["search_terms"] == {"fin": world.zan["fin"]}
    assert row["subject_ids"] == [household]


def test_a_persons_access_report_names_who_read_their_file_and_why(world: World) -> None:
    auth = {"Authorization": f"Bearer {NATIONAL['operator']}"}
    world.client.get(f"/api/v1/persons/{world.zan['fin']}", headers=auth | PURPOSE)
    report = world.client.get(f"/api/v1/persons/{world.zan['fin']}/access-report", headers=auth)
    assert report.status_code == 200, report.text
    entries = report.json()["entries"]
    assert entries and entries[-1]["actor_id"] == "operator-national"
    assert entries[-1]["purpose"] == PURPOSE["X-Access-Reason"]
    assert "search_terms" not in entries[-1]


def test_a_zangilan_caller_lists_only_the_settlements_of_zangilan(world: World) -> None:
    national = {"Authorization": f"Bearer {NATIONAL['supervisor']}"}
    added = world.client.post("/api/v1/settlements", json={"code": "LAC-002"}, headers=national)
    assert added.status_code in (201, 409), added.text
    world.container.projections.catch_up()
    everyone = world.client.get("/api/v1/settlements", headers=national).json()
    zangilan = world.client.get(
        "/api/v1/settlements", headers={"Authorization": f"Bearer {ZANGILAN['operator']}"}
    ).json()
    assert {"ZAN-002", "LAC-002"} <= {s["settlement_code"] for s in everyone}
    assert [s["settlement_code"] for s in zangilan] == ["ZAN-002"]
    (aghali,) = zangilan
    assert aghali["name"] == "Aghali" and aghali["units"] > 0 and aghali["opened_on"]


def _last_id(container: Container) -> int:
    with container.read_pool.connection() as conn:
        row = conn.execute("SELECT coalesce(max(id), 0) AS id FROM audit.access_log").fetchone()
        assert row is not None
        return int(row["id"])


PAGED_LISTS = {
    "/api/v1/convoys": "SELECT count(*) FROM rm_convoys WHERE settlement_code = %s",
    "/api/v1/reintegration/returnees": (
        "SELECT count(*) FROM rm_reintegration WHERE settlement_code = %s"
    ),
}
"""The lists a caller may read a page at a time, and what the store holds of them."""


@pytest.mark.parametrize("path", PAGED_LISTS)
def test_a_page_of_a_list_holds_its_rows_and_the_total_the_store_holds(
    world: World, path: str
) -> None:
    auth = {"Authorization": f"Bearer {ZANGILAN['supervisor']}", **PURPOSE}
    where = {"settlement_code": "ZAN-002"}
    whole = world.client.get(path, params=where, headers=auth)
    held = _one(world.container, PAGED_LISTS[path], "ZAN-002")
    assert whole.status_code == 200, whole.text
    assert len(whole.json()) == held >= 2 and "x-total-count" not in whole.headers
    before = _last_id(world.container)

    page = world.client.get(
        path, params={**where, "limit": held - 1, "offset": 1, "total": "true"}, headers=auth
    )

    assert page.status_code == 200, page.text
    assert page.json() == whole.json()[1:]  # the same list as without a page, cut
    assert page.headers["x-total-count"] == str(held)
    (row,) = access_log.query(world.container.read_pool, after_id=before)
    subjects = set(access_log.subjects_in(page.json()))
    assert subjects and set(row["subject_ids"]) == subjects  # the page's, no other
    first = world.client.get(path, params={**where, "limit": 1}, headers=auth)
    assert first.json() == whole.json()[:1] and "x-total-count" not in first.headers


@pytest.mark.parametrize("path", PAGED_LISTS)
def test_a_zangilan_callers_total_counts_only_zangilan(world: World, path: str) -> None:
    auth = {"Authorization": f"Bearer {ZANGILAN['operator']}", **PURPOSE}
    listed = world.client.get(
        path, params={"settlement_code": "LAC-002", "limit": 5, "total": "true"}, headers=auth
    )
    assert listed.status_code == 200, listed.text
    assert listed.json() == [] and listed.headers["x-total-count"] == "0"
