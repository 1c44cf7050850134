"""HouseholdRegistered gained contact_phone (v2). What was written before still reads correctly:
events stored as v1 in the event store, and Kafka messages written with the v1 schema."""

from __future__ import annotations

import io
import json
import threading
import uuid
from datetime import UTC, date, datetime

import psycopg
from confluent_kafka import Producer
from eventsourcing.persistence import StoredEvent
from fastavro import parse_schema, schemaless_writer

import schemas
from domain.base import Actor, CommandContext, acting_as
from domain.registration import register_household
from domain.registry import Household, NewMember, RegisterHousehold
from tests.integration.conftest import Stack
from tests.integration.kafka_reading import read_topic
from tests.integration.test_dead_letters import publish_everything
from tests.support import random_fin

HOUSEHOLD = "reintegration.registry.HouseholdRegistered"


def v1_definition() -> dict:
    return schemas.history()[HOUSEHOLD][0].definition


def test_a_household_event_stored_as_v1_is_upcast_and_published_with_the_current_schema(
    stack: Stack,
) -> None:
    app = stack.container.application
    with acting_as(CommandContext(Actor("op", "operator"), "c", "k")):
        household, _ = register_household(
            RegisterHousehold(
                [
                    NewMember(
                        random_fin(),
                        "Aysel",
                        "Məmmədova",
                        None,
                        date(1984, 3, 12),
                        "female",
                        "head",
                    )
                ],
                "ZAN-002",
                "Bakı",
            ),
            date(2026, 1, 1),
        )
    (event,) = household.collect_events()
    stored = app.mapper.to_stored_event(event)
    state = json.loads(stored.state)
    assert state.pop("class_version") == 2
    del state["contact_phone"]  # exactly what version 1 of the class wrote
    app.recorder.insert_events(
        [
            StoredEvent(
                stored.originator_id,
                stored.originator_version,
                stored.topic,
                json.dumps(state).encode(),
            )
        ]
    )

    restored = stack.container.services.registry.get_household(household.id)
    assert restored.contact_phone is None
    assert restored.current_address == "Bakı"

    publish_everything(stack)
    (message,) = read_topic(
        stack.settings.kafka_bootstrap_servers or "", stack.container.topics.cases
    )
    schema, record = schemas.decode(message.value)
    assert schema.name == HOUSEHOLD
    assert schema.fingerprint == schemas.catalogue()[HOUSEHOLD].fingerprint
    assert record["contact_phone"] is None
    assert record["aggregate_id"] == household.id


def household_registered_v1(
    household_id: uuid.UUID, origin: str, address: str, actor: str = "legacy-writer"
) -> bytes:
    """A HouseholdRegistered message as a producer using the released v1 schema wrote it."""
    v1 = schemas.history()[HOUSEHOLD][0]
    head = uuid.uuid4()
    body = io.BytesIO()
    schemaless_writer(
        body,
        parse_schema(v1.definition),
        {
            "event_id": uuid.uuid4(),
            "occurred_at": datetime.now(UTC),
            "actor_id": actor,
            "actor_role": "operator",
            "correlation_id": "c",
            "causation_id": "k",
            "aggregate_id": household_id,
            "aggregate_version": 1,
            "case_id": household_id,
            "head_person_id": head,
            "members": [{"person_id": head, "fin": random_fin(), "relationship": "head"}],
            "origin_settlement_code": origin,
            "current_address": address,
        },
    )
    return b"\xc3\x01" + v1.fingerprint + body.getvalue()


def test_a_kafka_message_written_with_the_v1_schema_is_projected_with_the_v2_reader(
    stack: Stack,
) -> None:
    v1 = schemas.history()[HOUSEHOLD][0]
    assert "contact_phone" not in {f["name"] for f in v1.definition["fields"]}
    household_id = uuid.uuid4()
    producer = Producer({"bootstrap.servers": stack.settings.kafka_bootstrap_servers})
    producer.produce(
        stack.container.topics.cases,
        key=str(household_id).encode(),
        value=household_registered_v1(household_id, "LAC-003", "Gəncə"),
        headers=[("event-type", HOUSEHOLD.encode())],
    )
    assert producer.flush(10) == 0

    stack.container.projections.projector("households").run(threading.Event(), until_caught_up=True)

    with psycopg.connect(stack.settings.database_url or "") as conn:
        row = conn.execute(
            "SELECT origin_settlement_code, contact_phone, registered_by "
            "FROM projection_households.rm_households WHERE household_id = %s",
            (household_id,),
        ).fetchone()
    assert row == ("LAC-003", None, "legacy-writer")
    assert Household.Registered.class_version == 2
