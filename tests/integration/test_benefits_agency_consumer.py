"""The reference downstream consumer, against the real broker, from the contract files only."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import psycopg
from confluent_kafka import Producer

from consumers.benefits_agency.__main__ import BenefitsAgencyConsumer
from tests.integration.conftest import Stack, register_households
from tests.integration.test_dead_letters import publish_everything
from tests.integration.test_schema_evolution import household_registered_v1
from tests.support import ROOT, create_database

CONTRACT = ROOT / "schemas"


def agency(stack: Stack, database_url: str) -> BenefitsAgencyConsumer:
    return BenefitsAgencyConsumer(
        database_url,
        stack.settings.kafka_bootstrap_servers or "",
        CONTRACT,
        stack.container.topics.cases,
    )


def counts(database_url: str) -> tuple[int, int]:
    with psycopg.connect(database_url) as conn:
        households = conn.execute("SELECT count(*) FROM benefits_agency.idp_households").fetchone()
        persons = conn.execute("SELECT count(*) FROM benefits_agency.idp_persons").fetchone()
    assert households and persons
    return int(households[0]), int(persons[0])


def test_the_benefits_agency_builds_its_register_from_the_published_contract(
    stack: Stack, server_url: str, tmp_path: Path
) -> None:
    agency_db = create_database(server_url)  # the agency's own database
    events = register_households(stack.container, 30)
    publish_everything(stack)

    # A message written with the released v1 schema, and an event type the agency does not know.
    household_id = uuid.uuid4()
    producer = Producer({"bootstrap.servers": stack.settings.kafka_bootstrap_servers})
    producer.produce(
        stack.container.topics.cases,
        key=str(household_id).encode(),
        value=household_registered_v1(household_id, "ZAN-003", "Bərdə", actor="a"),
        headers=[("event-type", b"reintegration.registry.HouseholdRegistered")],
    )
    producer.produce(
        stack.container.topics.cases,
        key=str(household_id).encode(),
        value=b"\xc3\x01" + b"\x01" * 8 + b"\x00",
        headers=[("event-type", b"reintegration.relocation.FamilyArrived")],
    )
    assert producer.flush(10) == 0

    consumer = agency(stack, agency_db)
    consumer.run(threading.Event(), until_caught_up=True)
    assert counts(agency_db) == (31, events - 30)
    assert consumer.skipped == 1

    with psycopg.connect(agency_db) as conn:
        legacy = conn.execute(
            "SELECT origin_settlement_code, member_count FROM benefits_agency.idp_households WHERE household_id = %s",
            (household_id,),
        ).fetchone()
    assert legacy == ("ZAN-003", 1)

    # Restarted, it commits offsets only after its rows: nothing is lost or doubled.
    register_households(stack.container, 5)
    publish_everything(stack)
    agency(stack, agency_db).run(threading.Event(), until_caught_up=True)
    households, persons = counts(agency_db)
    assert households == 36
    with psycopg.connect(stack.settings.database_url or "") as conn:
        stored_persons = conn.execute(
            "SELECT count(*) FROM reintegration_events WHERE topic LIKE '%%Person.Registered'"
        ).fetchone()
    assert stored_persons == (persons,)
