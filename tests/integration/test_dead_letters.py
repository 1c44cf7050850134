"""Poison messages go to the dead letters; the projection carries on; replay works after a fix."""

from __future__ import annotations

import os
import subprocess
import threading
import uuid
from datetime import UTC, date, datetime

import psycopg
from confluent_kafka import Producer
from prometheus_client import REGISTRY

import schemas
from infra.bootstrap import PROJECTIONS
from projections.admin import dead_letters
from tests.integration.conftest import Stack, register_households
from tests.integration.kafka_reading import read_topic
from tests.support import ROOT, random_fin, wait_until


def publish_everything(stack: Stack) -> None:
    stop = threading.Event()
    relay = stack.container.relay()
    thread = threading.Thread(target=relay.run, args=(stop,))
    thread.start()
    try:
        last = stack.container.application.recorder.max_notification_id()
        wait_until(lambda: relay.published_position == last, timeout_s=60, what="the relay")
    finally:
        stop.set()
        thread.join(30)


def person_registered(fin: str, household_id: uuid.UUID) -> bytes:
    return schemas.encode(
        "reintegration.registry.PersonRegistered",
        {
            "event_id": uuid.uuid4(),
            "occurred_at": datetime.now(UTC),
            "actor_id": "intruder",
            "actor_role": "operator",
            "correlation_id": "c",
            "causation_id": "k",
            "aggregate_id": uuid.uuid4(),  # a different person claiming an existing FIN
            "aggregate_version": 1,
            "case_id": household_id,
            "fin": fin,
            "first_name": "X",
            "last_name": "Y",
            "patronymic": None,
            "birth_date": date(1990, 1, 1),
            "sex": "male",
            "household_id": household_id,
        },
    )


def dead_letter_count(projection: str, error_class: str) -> float:
    return (
        REGISTRY.get_sample_value(
            "reintegration_dead_letters_total",
            {"projection": projection, "error_class": error_class},
        )
        or 0.0
    )


def test_poison_messages_are_dead_lettered_and_the_projection_carries_on(stack: Stack) -> None:
    container = stack.container
    register_households(container, 10)
    publish_everything(stack)
    # Project them first: the poison below must come after the events it collides with
    # (Kafka orders messages within a partition only).
    container.projections.projector("households").run(threading.Event(), until_caught_up=True)
    with psycopg.connect(stack.settings.database_url or "") as conn:
        row = conn.execute(
            "SELECT state FROM reintegration_events WHERE topic LIKE '%%Person.Registered' LIMIT 1"
        ).fetchone()
    assert row is not None
    taken_fin = bytes(row[0]).decode().split('"fin":"')[1][:7]

    good = person_registered(random_fin(), uuid.uuid4())
    poison = {
        "corrupted body": good[:10] + b"\xff\xff\xff\xff",
        "unknown fingerprint": b"\xc3\x01" + os.urandom(8) + good[10:],
        "constraint violation": person_registered(taken_fin, uuid.uuid4()),
    }
    producer = Producer({"bootstrap.servers": stack.settings.kafka_bootstrap_servers})
    for i, (name, value) in enumerate(poison.items()):
        producer.produce(
            container.topics.cases,
            key=f"poison-{i}".encode(),  # three cases: one key's would be parked behind the first
            value=value,
            headers=[("test-case", name.encode())],
        )
    assert producer.flush(10) == 0
    register_households(container, 5)
    publish_everything(stack)
    before = {c: dead_letter_count("households", c) for c in ("UniqueViolation", "UnknownSchema")}

    projector = container.projections.projector("households")
    projector.run(threading.Event(), until_caught_up=True)

    database_url = stack.settings.database_url or ""
    with psycopg.connect(database_url) as conn:
        households = conn.execute(
            "SELECT count(*) FROM projection_households.rm_households"
        ).fetchone()
    assert households == (15,), "the projection did not carry on past the poison messages"

    letters = dead_letters(database_url, PROJECTIONS["households"])
    assert len(letters) == 3
    by_class = {letter.error_class for letter in letters}
    assert "UnknownSchema" in by_class
    assert "UniqueViolation" in by_class
    assert all(letter.source == container.topics.cases for letter in letters)
    assert dead_letter_count("households", "UniqueViolation") == before["UniqueViolation"] + 1
    assert dead_letter_count("households", "UnknownSchema") == before["UnknownSchema"] + 1

    published = read_topic(
        stack.settings.kafka_bootstrap_servers or "", container.topics.dead_letters
    )
    assert sorted(m.headers["test-case"] for m in published) == sorted(poison)
    for message in published:
        assert message.headers["dlq-source-topic"] == container.topics.cases
        assert int(message.headers["dlq-source-offset"]) in {letter.offset for letter in letters}
        assert message.headers["dlq-source-partition"].isdigit()
        assert message.headers["dlq-error-class"]
        assert message.headers["dlq-error-message"]
        assert message.headers["dlq-projection"] == "households"

    # The operator fixes the cause of the constraint violation, then replays.
    with psycopg.connect(database_url) as conn:
        conn.execute("DELETE FROM projection_households.rm_persons WHERE fin = %s", (taken_fin,))
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "KAFKA_BOOTSTRAP_SERVERS": stack.settings.kafka_bootstrap_servers or "",
        "KAFKA_TOPIC_PREFIX": stack.settings.kafka_topic_prefix,
    }
    cli = str(ROOT / ".venv/bin/reintegration")
    replay = subprocess.run(
        [cli, "dead-letters", "replay", "--by", "kamran"], env=env, capture_output=True, text=True
    )
    assert replay.returncode == 1, replay.stderr  # two cannot be fixed by data: still failing
    assert "replayed" in replay.stderr and "still failing" in replay.stderr

    pending = dead_letters(database_url, PROJECTIONS["households"])
    assert {p.error_class for p in pending} == {"UnknownSchema", "CorruptMessage"}
    assert len(pending) == 2
    replayed = [
        r for r in dead_letters(database_url, PROJECTIONS["households"], True) if r.replayed_at
    ]
    assert [r.replayed_by for r in replayed] == ["kamran"]
    with psycopg.connect(database_url) as conn:
        intruder = conn.execute(
            "SELECT first_name FROM projection_households.rm_persons WHERE fin = %s", (taken_fin,)
        ).fetchone()
    assert intruder == ("X",)

    listing = subprocess.run([cli, "dead-letters", "list"], env=env, capture_output=True, text=True)
    assert listing.returncode == 0, listing.stderr
    assert "UnknownSchema" in listing.stdout
