"""The auditor's checks over HTTP answer what the command line answers: the chain's
verification and the projections' cross-check in the audit envelope, a failure found as the
command finds it; and a supervisor replays a dead letter over HTTP, with who and why kept."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest
from confluent_kafka import Producer
from fastapi.testclient import TestClient

from api.http import create_app
from domain.base import Actor
from infra.bootstrap import PROJECTIONS, Container
from infra.config import Settings
from projections.admin import dead_letters
from tests.integration.conftest import Stack, register_households
from tests.integration.test_audit_envelope_cli import ENVELOPE
from tests.integration.test_dead_letters import person_registered, publish_everything
from tests.support import ROOT, create_database, random_fin

TOKENS = {
    "auditor": Actor("aysel-auditor", "auditor"),
    "supervisor": Actor("kamran-supervisor", "supervisor"),
    "operator": Actor("ramin-operator", "operator"),
    "zangilan-supervisor": Actor("zan-supervisor", "supervisor", ("ZAN",)),
}


def auth(role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {role}"}


@dataclass
class Audited:
    container: Container
    client: TestClient
    database_url: str


@pytest.fixture(scope="module")
def audited(server_url: str) -> Iterator[Audited]:
    """Households registered and projected, and a checkpoint signed with the demonstration key
    (development: the key the service verifies with is its own)."""
    database_url = create_database(server_url)
    container = Container(Settings(database_url=database_url, environment="development"))
    container.projections.prepare()
    register_households(container, 8)
    container.projections.catch_up()
    container.audit_trail.write_checkpoint()
    with TestClient(create_app(container, TOKENS)) as client:
        yield Audited(container, client, database_url)
    container.close()


def cli_json(database_url: str, *args: str) -> dict[str, object]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "KAFKA_BOOTSTRAP_SERVERS": "",
        "REINTEGRATION_ENV": "development",
    }
    done = subprocess.run(
        [str(ROOT / ".venv/bin/reintegration"), *args, "--json"],
        env=env,
        capture_output=True,
        text=True,
    )
    found: dict[str, object] = json.loads(done.stdout)
    return found


def test_the_chain_verification_over_http_answers_the_commands_envelope(audited: Audited) -> None:
    answer = audited.client.get("/api/v1/audit/verification", headers=auth("auditor"))

    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert set(report) == ENVELOPE
    assert report["kind"] == "chain verification"
    assert report["outcome"] == "ok", report["findings"]
    assert report["generated_by"] == "aysel-auditor"
    command = cli_json(audited.database_url, "audit", "verify")
    assert command["outcome"] == "ok"
    assert set(command["summary"]) == set(report["summary"])  # type: ignore[arg-type]
    timeless = {k: v for k, v in report["summary"].items() if "age" not in k}
    assert timeless == {k: command["summary"][k] for k in timeless}  # type: ignore[index]
    supervisor = audited.client.get("/api/v1/audit/verification", headers=auth("supervisor"))
    assert supervisor.status_code == 200
    operator = audited.client.get("/api/v1/audit/verification", headers=auth("operator"))
    assert operator.status_code == 403


def test_one_chain_verification_runs_at_a_time(audited: Audited) -> None:
    """A verification reads the whole log (minutes at the national size): a second one asked
    meanwhile is told to come back, rather than doubling the load."""
    from api.http.routers import audit

    with audit._verifying:  # one is running
        busy = audited.client.get("/api/v1/audit/verification", headers=auth("auditor"))
    assert busy.status_code == 409
    assert "already running" in busy.json()["detail"]
    after = audited.client.get("/api/v1/audit/verification", headers=auth("auditor"))
    assert after.status_code == 200


def test_the_projections_cross_check_over_http_finds_a_row_changed_behind_the_log(
    audited: Audited,
) -> None:
    path = "/api/v1/audit/projections"
    first = audited.client.get(path, headers=auth("auditor"))
    assert first.status_code == 200, first.text
    assert set(first.json()) == ENVELOPE
    assert first.json()["outcome"] == "ok", first.json()["findings"]
    assert first.json()["kind"] == "projection cross-check"
    assert audited.client.get(path, headers=auth("operator")).status_code == 403
    scoped = audited.client.get(path, headers=auth("zangilan-supervisor"))
    assert scoped.status_code == 403  # a difference is shown with rows naming anyone

    with psycopg.connect(audited.database_url) as conn:
        conn.execute(
            "UPDATE projection_households.rm_households SET current_address = 'changed' "
            "WHERE household_id = (SELECT household_id FROM projection_households.rm_households "
            "LIMIT 1)"
        )
    found = audited.client.get(path, params={"projection": "households"}, headers=auth("auditor"))

    assert found.status_code == 200, found.text
    report = found.json()
    assert report["outcome"] == "failed"
    assert report["subject"] == "households"
    assert {f["table"] for f in report["findings"] if "table" in f} == {"rm_households"}
    command = cli_json(audited.database_url, "audit", "projections", "households")
    assert command["outcome"] == "failed"
    assert command["findings"] == [  # the same differences, found the same way
        {k: v for k, v in f.items()} for f in report["findings"]
    ]


def test_a_supervisor_replays_a_dead_letter_over_http_and_who_and_why_are_kept(
    stack: Stack,
) -> None:
    container = stack.container
    register_households(container, 3)
    publish_everything(stack)
    container.projections.projector("households").run(threading.Event(), until_caught_up=True)
    fin = random_fin()
    database_url = stack.settings.database_url or ""
    with psycopg.connect(database_url) as conn:  # a row in the way, as a bad migration leaves
        conn.execute(
            "INSERT INTO projection_households.rm_persons (person_id, fin, first_name, last_name, "
            "birth_date, sex, household_id, version) VALUES (%s, %s, 'A', 'B', '1990-01-01', "
            "'male', %s, 1)",
            (uuid.uuid4(), fin, uuid.uuid4()),
        )
    producer = Producer({"bootstrap.servers": stack.settings.kafka_bootstrap_servers})
    producer.produce(
        container.topics.cases, key=b"poison", value=person_registered(fin, uuid.uuid4())
    )
    assert producer.flush(10) == 0
    container.projections.projector("households").run(threading.Event(), until_caught_up=True)
    (letter,) = dead_letters(database_url, PROJECTIONS["households"])
    replay = f"/api/v1/operations/dead-letters/households/{letter.id}/replay"
    why = {"reason": "the row left by the failed migration was removed (ticket 2026/7)"}

    with TestClient(create_app(container, TOKENS)) as client:
        listed = client.get("/api/v1/operations/dead-letters", headers=auth("supervisor"))
        assert listed.status_code == 200, listed.text
        (shown,) = listed.json()["dead_letters"]
        assert shown["id"] == letter.id and shown["state"] == "pending"
        assert shown["error_class"] == "UniqueViolation" and fin not in shown["error_message"]
        assert (
            client.get("/api/v1/operations/dead-letters", headers=auth("operator")).status_code
            == 403
        )
        scoped = client.post(replay, json=why, headers=auth("zangilan-supervisor"))
        assert scoped.status_code == 403
        unexplained = client.post(replay, json={}, headers=auth("supervisor"))
        assert unexplained.status_code == 422
        assert unexplained.json()["errors"][0]["field"].endswith("reason")
        still = client.post(replay, json=why, headers=auth("supervisor"))
        assert still.status_code == 409, still.text
        assert still.json()["outcome"] == "still failing"

        with psycopg.connect(database_url) as conn:  # the cause is fixed
            conn.execute("DELETE FROM projection_households.rm_persons WHERE fin = %s", (fin,))
        done = client.post(replay, json=why, headers=auth("supervisor"))
        again = client.post(replay, json=why, headers=auth("supervisor"))
        missing = client.post(
            "/api/v1/operations/dead-letters/households/999999/replay",
            json=why,
            headers=auth("supervisor"),
        )
        resolved = client.get(
            "/api/v1/operations/dead-letters",
            params={"include_resolved": "true"},
            headers=auth("supervisor"),
        ).json()["dead_letters"]
        pending = client.get("/api/v1/operations/dead-letters", headers=auth("supervisor"))

    assert done.status_code == 200, done.text
    assert done.json()["outcome"] == "replayed"
    assert done.json()["replayed_by"] == "kamran-supervisor"
    assert again.status_code == 200 and again.json()["outcome"] == "already replayed"
    assert missing.status_code == 404
    assert pending.json()["dead_letters"] == []
    (kept,) = [r for r in resolved if r["id"] == letter.id]
    assert kept["state"] == "replayed"
    assert kept["replayed_by"] == "kamran-supervisor"
    assert kept["replay_reason"] == why["reason"]
    with psycopg.connect(database_url) as conn:
        applied = conn.execute(
            "SELECT first_name FROM projection_households.rm_persons WHERE fin = %s", (fin,)
        ).fetchone()
    assert applied == ("X",)


def test_a_service_without_a_key_to_verify_with_answers_that_nothing_vouches_for_its_log(
    audited: Audited,
) -> None:
    container = Container(Settings(database_url=audited.database_url))  # production, no key
    try:
        with TestClient(create_app(container, TOKENS)) as client:
            answer = client.get("/api/v1/audit/verification", headers=auth("auditor"))
    finally:
        container.close()

    assert answer.status_code == 200, answer.text
    assert answer.json()["outcome"] == "failed"
    (finding,) = answer.json()["findings"]
    assert "AUDIT_PUBLIC_KEYS" in finding["problem"]
