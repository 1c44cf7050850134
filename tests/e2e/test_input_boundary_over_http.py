"""The HTTP boundary under careless and hostile clients, against the running service with
Kafka: no input produces a 500, every refusal is a problem document naming the field, nothing
is written for a refused request, and an unexpected error is answered, logged and counted."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

from api.http.boundary import is_public
from tests.e2e.conftest import RunningService, start_service
from tests.support import create_database, household_body, random_fin, wait_until

HUGE = 10**30


@pytest.fixture(scope="module")
def service(
    tmp_path_factory: pytest.TempPathFactory, server_url: str, kafka_bootstrap: str
) -> Iterator[RunningService]:
    yield from start_service(
        tmp_path_factory.mktemp("boundary"),
        {
            "DATABASE_URL": create_database(server_url),
            "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "KAFKA_TOPIC_PREFIX": f"t{secrets.token_hex(4)}",
        },
    )


def stored_events(service: RunningService) -> int:
    with psycopg.connect(service.database_url or "") as conn:
        row = conn.execute("SELECT count(*) FROM reintegration_events").fetchone()
        return int(row[0]) if row else 0


def assert_problem(
    response: httpx.Response, status: int, field: str | None = None
) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status
    if field is not None:
        assert (
            field in [e["field"] for e in problem.get("errors", [])]
            or problem.get("field") == field
        ), problem
    return problem


def test_unbounded_integers_are_refused_with_422(service: RunningService) -> None:
    with service.client("supervisor") as client:
        checks = [
            client.get("/api/v1/households", params={"limit": HUGE}),
            client.get("/api/v1/households", params={"offset": HUGE}),
            client.get("/api/v1/persons", params={"offset": -1}),
            client.get("/api/v1/audit/access-log", params={"after_id": 2**70}),
            client.get(f"/api/v1/questionnaires/pre-return/{HUGE}"),
            client.get(f"/api/v1/rule-sets/great-return-housing/versions/{HUGE}"),
            client.post(
                "/api/v1/households/00000000-0000-4000-8000-000000000000/surveys",
                json={"questionnaire_code": "pre-return", "questionnaire_version": HUGE},
            ),
            client.post(
                "/api/v1/settlements/ZAN-002/units",
                json={
                    "units": [{"reference": "A1", "address": "x", "rooms": HUGE, "kind": "house"}]
                },
            ),
            client.post(
                "/api/v1/convoys",
                json={
                    "settlement_code": "ZAN-002",
                    "departs_on": "2030-01-01",
                    "vehicles": HUGE,
                    "household_ids": ["00000000-0000-4000-8000-000000000000"],
                },
            ),
        ]
    for response in checks:
        assert_problem(response, 422)


def test_control_characters_in_path_or_query_are_refused_with_400_naming_them(
    service: RunningService,
) -> None:
    with service.client("operator") as client:
        in_path = client.get("/api/v1/persons/AB%00CDEF")
        in_query = client.get("/api/v1/persons", params={"name_prefix": "Məm\x00"})
        in_code = client.get("/api/v1/settlements/ZAN%0A002")
        odd = client.get("/api/v1/persons/%F0%9F%98%80AB")  # not a FIN: a pattern refuses it
    assert_problem(in_path, 400, "path")
    assert_problem(in_query, 400, "name_prefix")
    assert_problem(in_code, 400, "path")
    assert_problem(odd, 422, "fin")


def raw_post(client: httpx.Client, path: str, body: str) -> httpx.Response:
    return client.post(path, content=body.encode(), headers={"Content-Type": "application/json"})


def test_text_no_reader_could_hold_is_refused_and_nothing_is_written(
    service: RunningService,
) -> None:
    before = stored_events(service)
    spoilers = {
        "members[0].first_name": lambda body: body.replace('"Aysel"', '"Ays\\ud800el"'),
        "current_address": lambda body: body.replace('"Bakı, ', '"Bak\\u0000ı, '),
        "members[0].last_name": lambda body: body.replace('"Məmmədova"', '"Məm\\u202emədova"'),
        "members[1].first_name": lambda body: body.replace('"Rauf"', '"Ra\\u200buf"'),
    }
    with service.client("operator") as client:
        for field, spoil in spoilers.items():
            body = json.dumps(household_body(random_fin(), random_fin()), ensure_ascii=False)
            assert_problem(raw_post(client, "/api/v1/households", spoil(body)), 422, field)
        sharp_s = household_body("abcdeß")  # upper-cases to ABCDESS: not a FIN
        assert_problem(client.post("/api/v1/households", json=sharp_s), 422, "members[0].fin")
        many = household_body(*(random_fin() for _ in range(31)))
        assert_problem(client.post("/api/v1/households", json=many), 422, "members")
        long_address = household_body(random_fin()) | {"current_address": "x" * 2_000_000}
        assert_problem(client.post("/api/v1/households", json=long_address), 413)
        long_name = household_body(random_fin())
        long_name["members"][0]["first_name"] = "A" * 101
        assert_problem(
            client.post("/api/v1/households", json=long_name), 422, "members[0].first_name"
        )
    assert stored_events(service) == before


def test_text_is_stored_in_nfc(service: RunningService) -> None:
    body = household_body(random_fin())
    body["members"][0]["last_name"] = "Gu\u0308lu\u0308mova"  # u and a combining diaeresis
    body["current_address"] = "Xe\u0301tai, S\u0327ahin ku\u0308c\u0327əsi 4"
    with service.client("operator") as client:
        created = client.post("/api/v1/households", json=body)
        assert created.status_code == 201, created.text
        household_id = created.json()["household_id"]

        def projected() -> dict[str, Any] | None:
            found = client.get(f"/api/v1/households/{household_id}")
            return found.json() if found.status_code == 200 else None

        household = wait_until(projected, 30, what="the household in the read model")
    assert household["current_address"] == "Xétai, Şahin küçəsi 4"
    assert household["members"][0]["last_name"] == "Gülümova"


def test_authentication_comes_before_the_body(service: RunningService) -> None:
    big = b'{"members": [' + b"1," * 3_000_000 + b"1]}"
    with service.client(None) as anonymous:
        assert_problem(raw_post(anonymous, "/api/v1/households", "{not json"), 401)
        response = anonymous.post(
            "/api/v1/households", content=big, headers={"Content-Type": "application/json"}
        )
        assert_problem(response, 401)
    with service.client("operator") as client:
        too_big = client.post(
            "/api/v1/households", content=big, headers={"Content-Type": "application/json"}
        )
        problem = assert_problem(too_big, 413, "body")
        assert "1048576 bytes" in problem["detail"]

        def without_length() -> Iterator[bytes]:  # chunked: the size shows only while reading
            yield b'{"members": ['
            for _ in range(300):
                yield b"1," * 5000
            yield b"1]}"

        chunked = client.post(
            "/api/v1/households",
            content=without_length(),
            headers={"Content-Type": "application/json"},
        )
        assert_problem(chunked, 413, "body")


def test_malformed_json_is_refused_with_its_line_and_column(service: RunningService) -> None:
    with service.client("operator") as client:
        response = raw_post(client, "/api/v1/households", '{\n  "members": [\n    {"fin": }\n]}')
    problem = assert_problem(response, 400, "body")
    assert (problem["line"], problem["column"]) == (3, 13)
    assert "line 3, column 13" in problem["detail"]


def test_every_broken_rule_is_reported_at_once_including_wrong_types(
    service: RunningService,
) -> None:
    body: dict[str, Any] = household_body(random_fin(), random_fin())
    body["members"][0]["birth_date"] = "12/03/1984"
    body["members"][0]["sex"] = 5
    body["members"][1]["fin"] = 1234567
    body["current_address"] = ["not", "text"]
    body["origin_settlement_code"] = "nowhere"
    with service.client("operator") as client:
        response = client.post("/api/v1/households", json=body)
    problem = assert_problem(response, 422)
    fields = {e["field"] for e in problem["errors"]}
    assert {
        "members[0].birth_date",
        "members[0].sex",
        "members[1].fin",
        "current_address",
        "origin_settlement_code",
    } <= fields


def test_a_malformed_correlation_id_is_refused(service: RunningService) -> None:
    with service.client("operator") as client:
        response = client.get("/api/v1/households", headers={"X-Correlation-ID": "x" * 129})
        fine = client.get("/api/v1/households", headers={"X-Correlation-ID": "job-42"})
    assert_problem(response, 400, "x-correlation-id")
    assert fine.status_code == 200 and fine.headers["x-correlation-id"] == "job-42"


def test_an_unexpected_error_answers_500_with_an_error_id_that_is_logged_and_counted(
    service: RunningService,
) -> None:
    """A fault nobody planned for (an administrator dropped a read model's table)."""
    with psycopg.connect(service.database_url or "", autocommit=True) as conn:
        conn.execute("ALTER TABLE projection_households.rm_survey_responses RENAME TO gone")
    try:
        with service.client("operator") as client:
            response = client.get("/api/v1/households", params={"survey_status": "completed"})
            problem = assert_problem(response, 500)
            metrics = client.get("/metrics").text
    finally:
        with psycopg.connect(service.database_url or "", autocommit=True) as conn:
            conn.execute("ALTER TABLE projection_households.gone RENAME TO rm_survey_responses")
    error_id = problem["error_id"]
    assert re.fullmatch(r"[0-9a-f-]{36}", error_id)
    logged = [
        json.loads(line)
        for line in service.service.output().splitlines()
        if line.startswith("{") and error_id in line
    ]
    assert logged and logged[0]["event"] == "unexpected error"
    assert logged[0]["error_class"] == "UndefinedTable"
    assert any("projections/queries/households.py" in frame for frame in logged[0]["traceback"])
    assert re.search(
        r'reintegration_http_requests_total\{method="GET",route="/api/v1/households",status="500"\} [1-9]',
        metrics,
    ), metrics


def test_the_openapi_document_lists_every_status_with_the_problem_schema(
    service: RunningService,
) -> None:
    spec = httpx.get(f"{service.base_url}/openapi.json").json()
    problem = {"$ref": "#/components/schemas/Problem"}
    operations = [
        (path, method, operation)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
    ]
    assert len(operations) > 60
    for path, method, operation in operations:
        responses = operation["responses"]
        expected = {"400", "413", "500", "503"} | (
            set()
            if is_public(path)  # the transparency log, health, the published keys
            else {"401", "403", "429"}
        )
        if "requestBody" in operation:
            expected.add("422")
        if method in ("post", "put"):
            expected |= {"404", "409", "422"}
        assert expected <= set(responses), (method, path, sorted(responses))
        for status in expected:
            assert responses[status]["content"] == {"application/problem+json": {"schema": problem}}
    assert "HTTPValidationError" not in spec["components"]["schemas"]


def test_logged_requests_carry_the_route_not_the_path(service: RunningService) -> None:
    fin = random_fin()
    with service.client("operator") as client:
        client.get(f"/api/v1/persons/{fin}")
    output = service.service.output()
    assert fin not in output
    assert '"route": "/api/v1/persons/{fin}"' in output


def test_a_body_in_another_encoding_than_utf8_is_refused(service: RunningService) -> None:
    body = json.dumps(household_body(random_fin())).encode("utf-16")
    with service.client("operator") as client:
        response = client.post(
            "/api/v1/households", content=body, headers={"Content-Type": "application/json"}
        )
    assert_problem(response, 400, "body")


def test_a_search_typed_decomposed_finds_what_is_stored_composed(service: RunningService) -> None:
    body = household_body(random_fin())
    surname = f"Ağa{secrets.token_hex(3)}"
    body["members"][0]["last_name"] = surname
    with service.client("operator") as client:
        assert client.post("/api/v1/households", json=body).status_code == 201
        decomposed = surname.replace("ğ", "g\u0306")

        def found() -> list[dict[str, Any]] | None:
            items = client.get("/api/v1/persons", params={"name_prefix": decomposed}).json()
            return items["items"] or None

        assert wait_until(found, 30, what="the person in the search")[0]["last_name"] == surname


def test_dates_no_rule_can_count_from_are_refused(service: RunningService) -> None:
    with service.client("supervisor") as client:
        client.post("/api/v1/settlements", json={"code": "LAC-003"})
        client.post(
            "/api/v1/settlements/LAC-003/clearance",
            json={"agency": "ANAMA", "certified_on": "2025-01-01", "certificate_reference": "C-1"},
        )
        opening = client.post(
            "/api/v1/settlements/LAC-003/opening", json={"opened_on": "9999-12-31"}
        )
    assert_problem(opening, 422, "opened_on")


def test_a_rule_set_document_with_a_key_no_reader_could_hold_is_refused(
    service: RunningService,
) -> None:
    with service.client("supervisor") as client:
        response = raw_post(
            client, "/api/v1/rule-sets", '{"id": "x-rules", "version": 1, "\\ud800": 1}'
        )
    problem = assert_problem(response, 422)
    assert any(e["field"].startswith("<key") for e in problem["errors"]), problem
