"""A read given the log position of a client's own write (``min_position``) sees that write,
or says in time that it cannot yet: never a 404 right after a 201."""

from __future__ import annotations

import time
from pathlib import Path

import psycopg

from tests.e2e.conftest import API_TOKEN_HASHES, RunningService
from tests.support import Service, free_port, household_body, random_fin, wait_for_http


def last_position(database_url: str, household_id: str) -> int:
    """The log position of the household's last event, from the store."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT max(notification_id) FROM reintegration_events WHERE originator_id = %s",
            (household_id,),
        ).fetchone()
    assert row is not None and row[0] is not None
    return int(row[0])


def test_a_household_read_with_its_log_position_is_found_right_after_its_201(
    service_with_kafka: RunningService,
) -> None:
    assert service_with_kafka.database_url
    with service_with_kafka.client() as client:
        for _ in range(20):
            created = client.post("/api/v1/households", json=household_body(random_fin()))
            assert created.status_code == 201
            household_id = created.json()["household_id"]
            position = last_position(service_with_kafka.database_url, household_id)
            found = client.get(f"/api/v1/households/{household_id}?min_position={position}")
            assert found.status_code == 200, found.text
            assert found.json()["household_id"] == household_id


def test_a_position_beyond_the_log_is_refused_naming_min_position(
    service_with_kafka: RunningService,
) -> None:
    with service_with_kafka.client() as client:
        answer = client.get("/api/v1/households?min_position=999999999")
    assert answer.status_code == 422
    assert answer.json()["field"] == "min_position"


def test_a_read_model_that_has_not_applied_the_position_answers_503_with_retry_after_in_time(
    tmp_path: Path, database_url: str, kafka_bootstrap: str, topic_prefix: str
) -> None:
    """Kafka mode with the relay but no projector: the write is never applied."""
    port = free_port()
    env = {
        "DATABASE_URL": database_url,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "KAFKA_TOPIC_PREFIX": topic_prefix,
        "KAFKA_PARTITIONS": "3",
        "API_TOKEN_HASHES": API_TOKEN_HASHES,
        "HTTP_PORT": str(port),
        "REINTEGRATION_ENV": "production",
    }
    api = Service(["api"], env, tmp_path / "api.log").start()
    relay = Service(["relay"], env, tmp_path / "relay.log").start()
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for_http(base, api)
        service = RunningService(base, api, database_url, topic_prefix)
        with service.client() as client:
            created = client.post("/api/v1/households", json=household_body(random_fin()))
            household_id = created.json()["household_id"]
            position = last_position(database_url, household_id)
            sent = time.monotonic()
            answer = client.get(f"/api/v1/households/{household_id}?min_position={position}")
            took = time.monotonic() - sent
        assert answer.status_code == 503
        assert answer.headers["retry-after"] == "1"
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert answer.json()["field"] == "min_position"
        assert 4.5 < took < 7, took
    finally:
        relay.stop()
        api.stop()


def test_many_reads_waiting_for_a_position_hold_up_no_command_and_take_no_database_down(
    tmp_path: Path, database_url: str, kafka_bootstrap: str, topic_prefix: str
) -> None:
    """Kafka mode with no projector: 30 reads wait for a position that never comes, while a
    bystander registers households. The waiting reads hold no connection; those beyond the
    limit are answered at once; the database is never taken for lost."""
    import threading

    port = free_port()
    env = {
        "DATABASE_URL": database_url,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "KAFKA_TOPIC_PREFIX": topic_prefix,
        "KAFKA_PARTITIONS": "3",
        "API_TOKEN_HASHES": API_TOKEN_HASHES,
        "HTTP_PORT": str(port),
        "LOG_FORMAT": "json",
        "REINTEGRATION_ENV": "production",
    }
    api = Service(["api"], env, tmp_path / "api.log").start()
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for_http(base, api)
        service = RunningService(base, api, database_url, topic_prefix)
        with service.client() as client:
            created = client.post("/api/v1/households", json=household_body(random_fin()))
            household_id = created.json()["household_id"]
        position = last_position(database_url, household_id)
        waited: list[int] = []

        def reader() -> None:
            with service.client() as client:
                answer = client.get(f"/api/v1/households/{household_id}?min_position={position}")
                waited.append(answer.status_code)

        readers = [threading.Thread(target=reader) for _ in range(30)]
        for thread in readers:
            thread.start()
        time.sleep(0.5)
        with service.client() as client:
            for _ in range(5):
                sent = time.monotonic()
                answer = client.post("/api/v1/households", json=household_body(random_fin()))
                assert answer.status_code == 201, answer.text
                assert time.monotonic() - sent < 3
                assert client.get("/api/v1/households?limit=1").status_code == 200
        for thread in readers:
            thread.join(30)
        assert waited.count(503) == 30
        assert '"dependency unavailable"' not in api.output()
    finally:
        api.stop()
