"""The auditor's view over HTTP: history, as-of state, the access log, and read-only everywhere."""

from __future__ import annotations

import base64
import os
import time
from datetime import UTC, datetime
from pathlib import Path

from api.http.boundary import is_public
from infra import tamper_evidence
from tests.e2e.conftest import RunningService, start_service
from tests.e2e.test_households_over_http import get_when_projected
from tests.support import household_body, random_fin, wait_until


def register(service: RunningService, *fins: str) -> str:
    with service.client("operator") as client:
        response = client.post("/api/v1/households", json=household_body(*fins))
        assert response.status_code == 201, response.text
        return str(response.json()["household_id"])


def test_case_history_lists_every_event_with_actor_time_and_causation(
    service_with_kafka: RunningService,
) -> None:
    head, child = random_fin(), random_fin()
    household_id = register(service_with_kafka, head, child)
    with service_with_kafka.client("auditor") as auditor:
        response = auditor.get(f"/api/v1/audit/households/{household_id}/history")
        html = auditor.get(f"/api/v1/audit/households/{household_id}/history?format=html")
    assert response.status_code == 200, response.text
    events = response.json()["events"]
    assert [e["event_type"].split(".")[-1] for e in events] == [
        "HouseholdRegistered",
        "PersonRegistered",
        "PersonRegistered",
    ]
    assert [e["position"] for e in events] == sorted(e["position"] for e in events)
    for event in events:
        assert event["actor_id"] == "operator-user"
        assert event["actor_role"] == "operator"
        assert event["causation_id"] and event["correlation_id"] and event["event_id"]
        assert len(event["chain_hash"]) == 64
    assert events[1]["data"]["fin"] == head
    assert html.status_code == 200
    assert html.headers["content-type"].startswith("text/html")
    assert "Məmmədova" in html.text and head in html.text
    assert "script-src" not in html.headers["content-security-policy"]  # no script at all
    assert html.headers["cache-control"] == "no-store"


def test_the_case_as_of_a_past_moment_is_replayed_from_the_event_store(
    service_with_kafka: RunningService,
) -> None:
    before = datetime.now(UTC)
    time.sleep(0.01)
    household_id = register(service_with_kafka, random_fin())
    with service_with_kafka.client("auditor") as auditor:
        earlier = auditor.get(
            f"/api/v1/audit/households/{household_id}", params={"as_of": before.isoformat()}
        )
        now = auditor.get(
            f"/api/v1/audit/households/{household_id}",
            params={"as_of": datetime.now(UTC).isoformat()},
        )
    assert earlier.status_code == 404
    assert now.status_code == 200, now.text
    state = now.json()
    assert state["household"]["origin_settlement_code"] == "ZAN-002"
    assert state["members"][0]["first_name"] == "Aysel"
    assert state["position"] > 0


def test_every_read_of_personal_data_is_in_the_access_log_which_only_auditors_read(
    service_with_kafka: RunningService,
) -> None:
    head = random_fin()
    household_id = register(service_with_kafka, head)
    with service_with_kafka.client("operator") as operator:
        get_when_projected(operator, household_id)
        operator.get(
            f"/api/v1/households/{household_id}",
            headers={"X-Access-Reason": "phone call from the family"},
        )
        assert operator.get("/api/v1/audit/access-log").status_code == 403
    with service_with_kafka.client("auditor") as auditor:
        auditor.get(
            f"/api/v1/audit/households/{household_id}/history", params={"reason": "annual audit"}
        )
        log = auditor.get("/api/v1/audit/access-log", params={"subject_id": household_id}).json()[
            "entries"
        ]
    reads = [(e["actor_id"], e["action"], e["reason"]) for e in log]
    assert ("operator-user", "read household", "phone call from the family") in reads
    assert ("auditor-user", "read case history", "annual audit") in reads
    with service_with_kafka.client("auditor") as auditor:
        from domain.registry import person_id_for

        by_person = auditor.get(
            "/api/v1/audit/access-log", params={"subject_id": str(person_id_for(head))}
        )
    assert {e["action"] for e in by_person.json()["entries"]} >= {
        "read household",
        "read case history",
    }


def test_the_auditor_is_refused_every_command(service_with_kafka: RunningService) -> None:
    with service_with_kafka.client(None) as anonymous:
        spec = anonymous.get("/openapi.json").json()
    commands = [
        (method, path)
        for path, operations in spec["paths"].items()
        for method in operations
        if method in ("post", "put", "patch", "delete")
        and not is_public(path)  # a witness's cosignature: its signature is the credential
    ]
    assert commands
    with service_with_kafka.client("auditor") as auditor:
        for method, path in commands:
            url = path.replace("{household_id}", "00000000-0000-0000-0000-000000000000")
            response = auditor.request(method.upper(), url, json={})
            assert response.status_code == 403, (method, path, response.text)


def test_the_public_key_that_verifies_checkpoints_is_published(
    service_with_kafka: RunningService,
) -> None:
    """In production without keys nothing is published, least of all the demo key."""
    with service_with_kafka.client(None) as anonymous:
        body = anonymous.get("/api/v1/audit/public-key").json()
    assert body["algorithm"] == "Ed25519"
    assert body["keys"] == [] and "public_key" not in body


def test_the_service_signs_checkpoints_periodically_with_the_configured_key(
    tmp_path: Path, database_url: str, kafka_bootstrap: str, topic_prefix: str
) -> None:
    seed = base64.b64encode(os.urandom(32)).decode()
    public = tamper_evidence.public_key_bytes(tamper_evidence.signing_key(seed))
    for service in start_service(
        tmp_path,
        {
            "DATABASE_URL": database_url,
            "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "KAFKA_TOPIC_PREFIX": topic_prefix,
            "AUDIT_SIGNING_KEY": seed,
            "AUDIT_CHECKPOINT_INTERVAL_S": "1",
        },
    ):
        register(service, random_fin())
        with service.client("auditor") as auditor:
            assert (
                base64.b64decode(auditor.get("/api/v1/audit/public-key").json()["public_key"])
                == public
            )

            def signed() -> list[dict[str, object]] | None:
                return auditor.get("/api/v1/audit/checkpoints").json()["checkpoints"] or None

            (checkpoint,) = wait_until(signed, timeout_s=30, what="a signed checkpoint")
        restored = tamper_evidence.Checkpoint.from_json(checkpoint)
        assert restored.signature_valid(public)
        assert restored.position >= 2
