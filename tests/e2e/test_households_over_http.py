"""The walking skeleton over HTTP, with Kafka on: the service runs as a real process."""

from __future__ import annotations

import json
import threading
from typing import Any

import httpx
import psycopg
import pytest

from domain.registry import person_id_for
from tests.e2e.conftest import RunningService
from tests.support import household_body, random_fin, wait_until


def stored_event_count(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*) FROM reintegration_events").fetchone()
        assert row is not None
        return int(row[0])


def get_when_projected(client: httpx.Client, household_id: str) -> dict[str, Any]:
    def projected() -> dict[str, Any] | None:
        response = client.get(f"/api/v1/households/{household_id}")
        if response.status_code == 404:
            return None
        assert response.status_code == 200, response.text
        return response.json()

    return wait_until(projected, timeout_s=30, what=f"household {household_id} in the read model")


def test_registered_household_is_readable_once_projected(
    service_with_kafka: RunningService,
) -> None:
    head, spouse, child = random_fin(), random_fin(), random_fin()
    with service_with_kafka.client("operator") as client:
        body = household_body(head, spouse, child)
        body["contact_phone"] = "+994 (50) 123-45-67"
        response = client.post("/api/v1/households", json=body)
        assert response.status_code == 201, response.text
        household_id = response.json()["household_id"]
        assert response.headers["location"] == f"/api/v1/households/{household_id}"

        household = get_when_projected(client, household_id)

    assert household["household_id"] == household_id
    assert household["origin_settlement_code"] == "ZAN-002"
    assert household["contact_phone"] == "+994501234567"
    assert household["head_person_id"] == str(person_id_for(head))
    assert household["registered_by"] == "operator-user"
    assert [(m["fin"], m["relationship"]) for m in household["members"]] == [
        (head, "head"),
        (spouse, "spouse"),
        (child, "child"),
    ]
    assert household["members"][0]["last_name"] == "Məmmədova"
    assert household["members"][0]["birth_date"] == "1960-01-10"


def test_auditor_reads_households_but_integration_clients_may_not(
    service_with_kafka: RunningService,
) -> None:
    with service_with_kafka.client("supervisor") as client:
        household_id = client.post("/api/v1/households", json=household_body(random_fin())).json()[
            "household_id"
        ]
    with service_with_kafka.client("auditor") as auditor:
        assert get_when_projected(auditor, household_id)["registered_by"] == "supervisor-user"
    with service_with_kafka.client("integration") as integration:
        response = integration.get(f"/api/v1/households/{household_id}")
        assert response.status_code == 403
        assert response.headers["content-type"] == "application/problem+json"


def test_second_registration_of_same_fin_is_rejected_with_409(
    service_with_kafka: RunningService,
) -> None:
    fin = random_fin()
    with service_with_kafka.client() as client:
        assert client.post("/api/v1/households", json=household_body(fin)).status_code == 201
        before = stored_event_count(service_with_kafka.database_url or "")
        response = client.post("/api/v1/households", json=household_body(random_fin(), fin))
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 409
    assert problem["field"] == "members[1].fin" and fin not in response.text
    assert stored_event_count(service_with_kafka.database_url or "") == before


def test_concurrent_registrations_of_the_same_fin_let_exactly_one_win(
    service_with_kafka: RunningService,
) -> None:
    for _ in range(5):
        fin = random_fin()
        barrier = threading.Barrier(2)
        statuses: list[int] = []

        def register(
            fin: str = fin, barrier: threading.Barrier = barrier, statuses: list[int] = statuses
        ) -> None:
            with service_with_kafka.client() as client:
                barrier.wait()
                response = client.post("/api/v1/households", json=household_body(fin))
                statuses.append(response.status_code)

        threads = [threading.Thread(target=register) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(statuses) == [201, 409]
        with psycopg.connect(service_with_kafka.database_url or "") as conn:
            rows = conn.execute(
                "SELECT count(*) FROM reintegration_events WHERE originator_id = %s",
                (person_id_for(fin),),
            ).fetchone()
        assert rows == (1,)


BAD_INPUTS = [
    ("malformed FIN", lambda b: b["members"][0].update(fin="12AB"), "members[0].fin"),
    (
        "FIN with a non-Latin letter",
        lambda b: b["members"][0].update(fin="ÇAB1234"),
        "members[0].fin",
    ),
    (
        "empty first name",
        lambda b: b["members"][1].update(first_name="  "),
        "members[1].first_name",
    ),
    ("empty last name", lambda b: b["members"][0].update(last_name=""), "members[0].last_name"),
    (
        "birth date in the future",
        lambda b: b["members"][1].update(birth_date="2999-01-01"),
        "members[1].birth_date",
    ),
    (
        "unknown relationship",
        lambda b: b["members"][1].update(relationship="cousin"),
        "members[1].relationship",
    ),
    ("no head", lambda b: b["members"][0].update(relationship="sibling"), "members"),
    ("two heads", lambda b: b["members"][1].update(relationship="head"), "members[1].relationship"),
    (
        "same FIN twice",
        lambda b: b["members"][1].update(fin=b["members"][0]["fin"]),
        "members[1].fin",
    ),
    (
        "unknown origin settlement",
        lambda b: b.update(origin_settlement_code="ZZZ-001"),
        "origin_settlement_code",
    ),
    (
        "birth date not a date",
        lambda b: b["members"][0].update(birth_date="12/03/1984"),
        "members[0].birth_date",
    ),
    ("missing address", lambda b: b.pop("current_address"), "current_address"),
    ("no members", lambda b: b.update(members=[]), "members"),
    ("unexpected field", lambda b: b.update(nickname="x"), "nickname"),
    ("malformed phone", lambda b: b.update(contact_phone="call me"), "contact_phone"),
]


@pytest.mark.parametrize(("case", "spoil", "field"), BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_is_rejected_with_422_naming_the_field_and_nothing_is_written(
    service_with_kafka: RunningService, case: str, spoil: Any, field: str
) -> None:
    body = household_body(random_fin(), random_fin())
    spoil(body)
    before = stored_event_count(service_with_kafka.database_url or "")
    with service_with_kafka.client() as client:
        response = client.post("/api/v1/households", json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 422
    assert field in [e["field"] for e in problem["errors"]], problem
    assert problem["field"] == problem["errors"][0]["field"]
    assert stored_event_count(service_with_kafka.database_url or "") == before


def test_requests_without_a_valid_token_get_401(service_with_kafka: RunningService) -> None:
    with service_with_kafka.client(None) as client:
        missing = client.post("/api/v1/households", json=household_body(random_fin()))
        wrong = client.get(
            "/api/v1/households/00000000-0000-0000-0000-000000000000",
            headers={"Authorization": "Bearer not-a-token"},
        )
    for response in (missing, wrong):
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["www-authenticate"] == "Bearer"


def test_auditor_cannot_register_a_household(service_with_kafka: RunningService) -> None:
    before = stored_event_count(service_with_kafka.database_url or "")
    with service_with_kafka.client("auditor") as client:
        response = client.post("/api/v1/households", json=household_body(random_fin()))
    assert response.status_code == 403
    assert response.json()["type"].endswith("/forbidden")
    assert stored_event_count(service_with_kafka.database_url or "") == before


def test_unknown_household_is_404_problem(service_with_kafka: RunningService) -> None:
    with service_with_kafka.client() as client:
        response = client.get("/api/v1/households/7d9f1a52-0000-4000-8000-000000000001")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


def test_health_and_openapi_are_served(service_with_kafka: RunningService) -> None:
    with service_with_kafka.client(None) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        spec = client.get("/openapi.json").json()
    assert "/api/v1/households" in spec["paths"]
    assert "/api/v1/households/{household_id}" in spec["paths"]


def test_every_log_line_of_a_request_carries_its_correlation_id_and_actor(
    service_with_kafka: RunningService,
) -> None:
    correlation = f"corr-{random_fin()}"
    with service_with_kafka.client() as client:
        response = client.post(
            "/api/v1/households",
            json=household_body(random_fin()),
            headers={"X-Correlation-ID": correlation},
        )
    assert response.headers["x-correlation-id"] == correlation

    def lines() -> list[dict[str, Any]] | None:
        found = []
        for raw in service_with_kafka.service.output().splitlines():
            try:
                line = json.loads(raw)
            except ValueError:
                continue
            if line.get("correlation_id") == correlation:
                found.append(line)
        return found if any(line.get("event") == "request" for line in found) else None

    found = wait_until(lines, timeout_s=10, what="the request's log lines")
    assert {line["event"] for line in found} >= {"household registered", "request"}
    for line in found:
        assert line["actor"] == "operator-user"
        assert line["role"] == "operator"


def metric(text: str, name: str, **labels: str) -> float | None:
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return None


def test_metrics_show_requests_relay_and_projection_activity(
    service_with_kafka: RunningService,
) -> None:
    with service_with_kafka.client() as client:
        household_id = client.post("/api/v1/households", json=household_body(random_fin())).json()[
            "household_id"
        ]
        get_when_projected(client, household_id)
        client.get("/api/v1/households/7d9f1a52-0000-4000-8000-000000000001")
        text = client.get("/metrics").text

    requests = "reintegration_http_requests_total"
    assert metric(text, requests, method="POST", route="/api/v1/households", status="201") == 1
    assert metric(
        text, requests, method="GET", route="/api/v1/households/{household_id}", status="404"
    )
    assert metric(text, "reintegration_http_request_seconds_count", method="POST") == 1
    assert (metric(text, "reintegration_events_relayed_total") or 0) >= 2
    assert metric(text, "reintegration_relay_lag_events") is not None
    assert (
        metric(text, "reintegration_projection_events_applied_total", projection="households") or 0
    ) >= 2
    assert metric(text, "reintegration_projection_apply_seconds_count", projection="households")
    assert (
        metric(text, "reintegration_projection_lag_messages", projection="households") is not None
    )
