"""Idempotent commands on the real event store, in process: the key's first request still
running, answers that are not stored, and the retention window."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.http import create_app
from api.http.idempotency import fingerprint
from domain.base import Actor
from infra.bootstrap import Container
from infra.config import Settings
from infra.idempotency import KeyedCommand
from tests.support import household_body, random_fin

TOKEN = "idem-operator"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def container(database_url: str) -> Iterator[Container]:
    built = Container(Settings(database_url=database_url))
    built.projections.prepare()
    try:
        yield built
    finally:
        built.close()


@pytest.fixture
def client(container: Container) -> Iterator[TestClient]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        app = create_app(container, {TOKEN: Actor("idem-user", "operator")})
        yield TestClient(app, raise_server_exceptions=False)


def scalar(container: Container, statement: str, *params: Any) -> Any:
    with container.application.recorder.datastore.get_connection() as conn:  # type: ignore[attr-defined]
        row = conn.execute(statement, params).fetchone()
    return next(iter(row.values()))


def test_a_request_whose_key_is_still_in_flight_is_a_409_naming_the_header(
    container: Container, client: TestClient
) -> None:
    body = household_body(random_fin())
    running = container.idempotency_keys.begin("idem-user:operator", "k-1", b"x" * 32)
    assert isinstance(running, KeyedCommand)  # the first request, holding its key
    try:
        response = client.post(
            "/api/v1/households", json=body, headers={**AUTH, "Idempotency-Key": "k-1"}
        )
    finally:
        running.abandon()
    assert response.status_code == 409
    assert response.json()["field"] == "Idempotency-Key"
    assert response.headers["retry-after"] == "1"
    # Once the first request is over without recording anything, the key is free.
    again = client.post("/api/v1/households", json=body, headers={**AUTH, "Idempotency-Key": "k-1"})
    assert again.status_code == 201, again.text


def test_a_refused_command_is_not_stored_and_its_retry_runs_again(
    container: Container, client: TestClient
) -> None:
    fin = random_fin()
    taken = client.post("/api/v1/households", json=household_body(fin), headers=AUTH)
    assert taken.status_code == 201
    body = household_body(random_fin(), fin)  # the second member is already registered
    headers = {**AUTH, "Idempotency-Key": "k-2"}
    refused = client.post("/api/v1/households", json=body, headers=headers)
    assert refused.status_code == 409 and refused.json()["field"] == "members[1].fin"
    again = client.post("/api/v1/households", json=body, headers=headers)
    assert again.status_code == 409 and "idempotent-replayed" not in again.headers
    assert scalar(container, "SELECT count(*) FROM reintegration_events_idempotency_keys") == 0


def test_a_key_older_than_the_retention_window_is_forgotten_and_purged(
    container: Container, client: TestClient
) -> None:
    body = household_body(random_fin())
    headers = {**AUTH, "Idempotency-Key": "k-3"}
    assert client.post("/api/v1/households", json=body, headers=headers).status_code == 201
    other = client.post(
        "/api/v1/households",
        json=household_body(random_fin()),
        headers={**AUTH, "Idempotency-Key": "k-4"},
    )
    assert other.status_code == 201
    with container.application.recorder.datastore.get_connection() as conn:  # type: ignore[attr-defined]
        conn.execute(
            "UPDATE reintegration_events_idempotency_keys "
            "SET created_at = now() - interval '25 hours' WHERE key = 'k-3'"
        )
    # Older than 24 hours: the key is new again (the command runs, and is refused now).
    retry = client.post("/api/v1/households", json=body, headers=headers)
    assert retry.status_code == 409 and "idempotent-replayed" not in retry.headers
    with container.application.recorder.datastore.get_connection() as conn:  # type: ignore[attr-defined]
        conn.execute(
            "UPDATE reintegration_events_idempotency_keys "
            "SET created_at = now() - interval '25 hours' WHERE key = 'k-4'"
        )
    # k-3's row is still there (its forgetting rolled back with the refused command): expired.
    assert container.idempotency_keys.purge() == 2
    assert scalar(container, "SELECT count(*) FROM reintegration_events_idempotency_keys") == 0


def test_the_stored_answer_is_the_one_committed_with_the_events(
    container: Container, client: TestClient
) -> None:
    body = household_body(random_fin(), random_fin())
    response = client.post(
        "/api/v1/households", json=body, headers={**AUTH, "Idempotency-Key": "k-5"}
    )
    assert response.status_code == 201
    row_position = scalar(
        container,
        "SELECT last_position FROM reintegration_events_idempotency_keys WHERE key = 'k-5'",
    )
    stored_fingerprint = scalar(
        container,
        "SELECT fingerprint FROM reintegration_events_idempotency_keys WHERE key = 'k-5'",
    )
    assert row_position == int(response.headers["log-position"])
    assert row_position == scalar(
        container, "SELECT max(notification_id) FROM reintegration_events"
    )
    assert bytes(stored_fingerprint) == fingerprint(
        "POST", "/api/v1/households", b"", response.request.content
    )
