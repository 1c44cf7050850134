"""Idempotent commands over HTTP (``Idempotency-Key``) and the ``Log-Position`` of a command,
on the real `reintegration serve` (no Kafka: the projections follow the event store's log).
What was recorded is counted in the event store, not read from the answers."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from application.store import HOUSEHOLD_REGISTERED
from infra.identity import token_hash
from tests.e2e.conftest import TOKENS, RunningService, start_service
from tests.support import household_body, random_fin


def serve(tmp_path: Path, database_url: str) -> Iterator[RunningService]:
    yield from start_service(
        tmp_path, {"DATABASE_URL": database_url, "KAFKA_BOOTSTRAP_SERVERS": ""}
    )


@pytest.fixture
def service(tmp_path: Path, database_url: str) -> Iterator[RunningService]:
    yield from serve(tmp_path, database_url)


def registrations(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM reintegration_events WHERE topic = %s", (HOUSEHOLD_REGISTERED,)
        ).fetchone()
    assert row is not None
    return int(row[0])


def last_position_of(database_url: str, response: httpx.Response) -> int:
    """The notification id of the last event the request recorded (its events carry the
    request's id as their causation id)."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT max(notification_id) FROM reintegration_events "
            "WHERE convert_from(state, 'UTF8')::jsonb ->> 'causation_id' = %s",
            (response.headers["x-request-id"],),
        ).fetchone()
    assert row is not None and row[0] is not None
    return int(row[0])


def keyed(key: str) -> dict[str, str]:
    return {"Idempotency-Key": key}


def test_a_retried_registration_with_the_same_key_returns_the_same_answer_and_records_once(
    service: RunningService,
) -> None:
    body = household_body(random_fin(), random_fin())
    key = str(uuid.uuid4())
    with service.client() as client:
        first = client.post("/api/v1/households", json=body, headers=keyed(key))
        retry = client.post("/api/v1/households", json=body, headers=keyed(key))
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    assert retry.status_code == 201 and retry.headers["idempotent-replayed"] == "true"
    assert retry.content == first.content
    for header in ("location", "content-type", "log-position"):
        assert retry.headers[header] == first.headers[header]
    assert registrations(service.database_url or "") == 1


def test_the_same_key_with_another_body_is_a_422_naming_the_header(
    service: RunningService,
) -> None:
    key = str(uuid.uuid4())
    with service.client() as client:
        first = client.post(
            "/api/v1/households", json=household_body(random_fin()), headers=keyed(key)
        )
        other = client.post(
            "/api/v1/households", json=household_body(random_fin()), headers=keyed(key)
        )
    assert first.status_code == 201, first.text
    assert other.status_code == 422
    assert other.headers["content-type"] == "application/problem+json"
    assert other.json()["field"] == "Idempotency-Key"
    assert registrations(service.database_url or "") == 1


def test_a_malformed_key_is_a_400_naming_the_header(service: RunningService) -> None:
    with service.client() as client:
        for key in ("", '""', "k" * 256, '"un"quoted"'):
            response = client.post(
                "/api/v1/households", json=household_body(random_fin()), headers=keyed(key)
            )
            assert response.status_code == 400, (key, response.text)
            assert response.json()["field"] == "Idempotency-Key"
    assert registrations(service.database_url or "") == 0


def test_two_callers_with_the_same_key_are_independent(service: RunningService) -> None:
    key = "shared-key"
    body = household_body(random_fin())
    with service.client("operator") as operator, service.client("supervisor") as supervisor:
        mine = operator.post("/api/v1/households", json=body, headers=keyed(key))
        # Same key, same body, another caller: not the operator's answer; the command runs.
        theirs = supervisor.post("/api/v1/households", json=body, headers=keyed(key))
        own = supervisor.post(
            "/api/v1/households", json=household_body(random_fin()), headers=keyed(key)
        )
    assert mine.status_code == 201, mine.text
    assert theirs.status_code == 409 and "idempotent-replayed" not in theirs.headers
    assert theirs.json()["type"].endswith("/person-already-registered")
    assert own.status_code == 201 and "idempotent-replayed" not in own.headers
    assert own.json()["household_id"] != mine.json()["household_id"]
    assert registrations(service.database_url or "") == 2


def test_log_position_is_the_notification_id_of_the_commands_last_event(
    service: RunningService,
) -> None:
    database_url = service.database_url or ""
    with service.client() as client:
        plain = client.post("/api/v1/households", json=household_body(random_fin(), random_fin()))
        with_key = client.post(
            "/api/v1/households", json=household_body(random_fin()), headers=keyed("k-1")
        )
        replayed = client.post(
            "/api/v1/households", json=household_body(random_fin()), headers=keyed("k-1")
        )
        refused = client.post("/api/v1/households", json={"members": []})
        read = client.get(f"/api/v1/households/{plain.json()['household_id']}")
    assert plain.status_code == 201 and with_key.status_code == 201
    assert int(plain.headers["log-position"]) == last_position_of(database_url, plain)
    assert int(with_key.headers["log-position"]) == last_position_of(database_url, with_key)
    assert int(with_key.headers["log-position"]) > int(plain.headers["log-position"])
    assert replayed.status_code == 422  # another body: refused, not replayed
    assert "log-position" not in refused.headers and "log-position" not in read.headers


def test_after_the_api_is_killed_every_keyed_command_that_committed_replays_as_done(
    tmp_path: Path, database_url: str
) -> None:
    """SIGKILL the service while keyed registrations are in flight, start it again, and retry
    every one with its key: each answers 201 with the same household (a replay when it had
    committed, a first run when it had not), none is "already registered", and the store holds
    exactly one registration per request."""
    requests = [(str(uuid.uuid4()), household_body(random_fin(), random_fin())) for _ in range(40)]
    answers: dict[str, dict[str, Any]] = {}
    answered = threading.Event()

    first = serve(tmp_path, database_url)
    service = next(first)

    def send(share: list[tuple[str, dict[str, Any]]]) -> None:
        headers = {"Authorization": f"Bearer {TOKENS['operator']}"}
        with httpx.Client(base_url=service.base_url, headers=headers, timeout=10) as client:
            for key, body in share:
                try:
                    response = client.post("/api/v1/households", json=body, headers=keyed(key))
                except httpx.HTTPError:
                    return  # the service is gone
                if response.status_code == 201:
                    answers[key] = response.json()
                    if len(answers) >= 8:
                        answered.set()

    threads = [threading.Thread(target=send, args=(requests[i::6],)) for i in range(6)]
    for thread in threads:
        thread.start()
    answered.wait(60)
    service.service.kill()
    for thread in threads:
        thread.join(30)
    first.close()
    committed_before = registrations(database_url)
    assert 8 <= len(answers) <= committed_before < len(requests)

    second = serve(tmp_path, database_url)  # the same database, the same log file
    service = next(second)
    try:
        replays = 0
        with service.client() as client:
            for key, body in requests:
                retry = client.post("/api/v1/households", json=body, headers=keyed(key))
                assert retry.status_code == 201, retry.text
                replays += retry.headers.get("idempotent-replayed") == "true"
                if key in answers:
                    assert retry.json() == answers[key]
                    assert retry.headers["idempotent-replayed"] == "true"
    finally:
        second.close()
    assert replays == committed_before
    assert registrations(database_url) == len(requests)


def test_sixty_clients_sending_keyed_commands_at_once_are_all_answered_and_recorded_once(
    service: RunningService,
) -> None:
    """More keyed commands at once than the API has worker threads (40) and connections: none
    waits for a thread to commit while holding the event store's write lock."""
    assert service.database_url
    before = registrations(service.database_url)
    statuses: list[int] = []
    lock = threading.Lock()

    def client() -> None:
        with service.client() as http:
            for _ in range(3):
                answer = http.post(
                    "/api/v1/households",
                    json=household_body(random_fin()),
                    headers=keyed(str(uuid.uuid4())),
                )
                with lock:
                    statuses.append(answer.status_code)

    threads = [threading.Thread(target=client) for _ in range(60)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert statuses.count(201) == 180, sorted(set(statuses))
    assert registrations(service.database_url) - before == 180


def test_a_key_replays_only_to_the_role_that_was_allowed_the_command(
    tmp_path: Path, database_url: str
) -> None:
    tokens = f"{token_hash('op-token')}=alice:operator,{token_hash('aud-token')}=alice:auditor"
    for running in start_service(
        tmp_path,
        {"DATABASE_URL": database_url, "KAFKA_BOOTSTRAP_SERVERS": "", "API_TOKEN_HASHES": tokens},
    ):
        key = keyed(str(uuid.uuid4()))
        body = household_body(random_fin())
        url = f"{running.base_url}/api/v1/households"
        first = httpx.post(url, json=body, headers={**key, "Authorization": "Bearer op-token"})
        assert first.status_code == 201
        as_auditor = httpx.post(
            url, json=body, headers={**key, "Authorization": "Bearer aud-token"}
        )
        assert as_auditor.status_code == 403, as_auditor.text
        assert registrations(database_url) == 1
