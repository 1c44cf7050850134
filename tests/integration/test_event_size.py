"""Event size: the largest legitimate event (a lottery for a settlement of 20,000 households)
goes through Kafka into the read models; a command whose event would be larger than the log
accepts is refused before anything is stored; and no single event can stop the relay."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest

from domain.base import Actor, CommandContext, EventTooLarge, acting_as
from domain.housing import LOTTERY_ALGORITHM, AllocationRound, Entrant, RoundUnit
from infra import metrics
from infra.contract import MAX_EVENT_BYTES, MAX_MESSAGE_BYTES
from tests.integration.conftest import Stack, register_households
from tests.integration.kafka_reading import read_topic
from tests.lottery import fresh, now, reveal_in
from tests.support import wait_until

CONTEXT = CommandContext(Actor("chair", "supervisor"), "lottery", "announce")


def lottery(households: int, units: int, settlement: str = "SUS-001") -> AllocationRound:
    """A round as announce_round builds it, for a settlement of ``households`` eligible ones."""
    return AllocationRound(
        settlement_code=settlement,
        round_number=1,
        seed_hash="",
        algorithm_version=LOTTERY_ALGORITHM,
        entrants=[
            Entrant(
                uuid.uuid4(),
                uuid.uuid4(),
                "collective_centre",
                1 + i % 4,
                float(i % 7),
                1 + i % 4,
                str(uuid.uuid4()),
            )
            for i in range(households)
        ],
        units=[RoundUnit(uuid.uuid4(), 2 + i % 3) for i in range(units)],
        rule_set_code="great-return-housing",
        rule_set_version=1,
        offer_deadline_days=5,
        commitments=PARTICIPANTS.commitments,
        public_randomness=None,
        announcement_digest="sha256:" + "0" * 64,
    )


PARTICIPANTS = fresh()


def stored_events(stack: Stack) -> int:
    with psycopg.connect(stack.settings.database_url or "") as conn:
        row = conn.execute("SELECT count(*) FROM reintegration_events").fetchone()
        return int(row[0]) if row else 0


@contextmanager
def relaying(stack: Stack) -> Iterator[Any]:
    relay = stack.container.relay()
    stop = threading.Event()
    failures: list[BaseException] = []

    def run() -> None:
        try:
            relay.run(stop)
        except BaseException as exc:
            failures.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield relay
    finally:
        stop.set()
        thread.join(30)
    assert not failures, failures


def test_a_lottery_for_twenty_thousand_households_goes_through_kafka_into_the_read_model(
    stack: Stack,
) -> None:
    stack.container.projections.prepare()
    with acting_as(CONTEXT):
        announced = lottery(20_000, 5_000)
        stack.container.application.save(announced)
        reveal_in(announced, PARTICIPANTS)
        announced.draw("", "Public Council of Shusha district", now())
        stack.container.application.save(announced)
    with psycopg.connect(stack.settings.database_url or "") as conn:
        sizes = [r[0] for r in conn.execute("SELECT octet_length(state) FROM reintegration_events")]
    assert max(sizes) > 4_000_000 and max(sizes) < MAX_EVENT_BYTES  # legitimately large

    last = stack.container.application.recorder.max_notification_id()
    with relaying(stack) as relay:
        wait_until(lambda: relay.published_position >= last, 120, 0.2, "the relay to publish")
    messages = read_topic(
        stack.settings.kafka_bootstrap_servers or "", stack.container.topics.reference_data
    )
    assert len(messages) == 2
    assert max(len(m.value) for m in messages) > 1_048_576  # above Kafka's default limit
    assert max(len(m.value) for m in messages) < MAX_MESSAGE_BYTES

    projector = stack.container.projections.projector("housing")
    projector.run(threading.Event(), until_caught_up=True)
    with psycopg.connect(stack.settings.database_url or "") as conn:
        row = conn.execute(
            "SELECT jsonb_array_length(entrants), jsonb_array_length(assignments), "
            "jsonb_array_length(reserve) FROM projection_housing.rm_allocation_rounds"
        ).fetchone()
        dead = conn.execute("SELECT count(*) FROM projection_housing.dead_letters").fetchone()
    assert row == (20_000, 5_000, 15_000)
    assert dead == (0,)


def test_an_event_larger_than_the_log_accepts_is_refused_before_anything_is_stored(
    stack: Stack,
) -> None:
    register_households(stack.container, 1)
    before = stored_events(stack)
    with acting_as(CONTEXT), pytest.raises(EventTooLarge) as refused:
        stack.container.application.save(lottery(90_000, 1_000))
    assert refused.value.field == "entrants"
    assert refused.value.size > MAX_EVENT_BYTES == refused.value.limit
    assert stored_events(stack) == before


def test_the_relay_withholds_an_event_it_cannot_publish_and_carries_on(stack: Stack) -> None:
    """An event recorded before the limits existed (a 21 MB address) and one whose class is
    gone: each is withheld with a dead-letter record, and the events after them go out."""
    app = stack.container.application
    register_households(stack.container, 1)
    first = app.recorder.select_notifications(start=1, limit=10)
    person = next(n for n in first if n.topic.endswith("Person.Registered"))
    state = json.loads(person.state)
    state["registered_address"] = "Bakı " * (21 * 1024 * 1024 // 5)
    with psycopg.connect(stack.settings.database_url or "", autocommit=True) as conn:
        # Written as an older version of the service would have: straight into the table.
        for topic, body in (
            (person.topic, json.dumps(state, ensure_ascii=False).encode()),
            ("domain.gone:Vanished.Event", b'{"timestamp": "2026-01-01"}'),
        ):
            conn.execute(
                "INSERT INTO reintegration_events (originator_id, originator_version, topic, state) "
                "VALUES (%s, 1, %s, %s)",
                (uuid.uuid4(), topic, body),
            )
    register_households(stack.container, 2)  # after them: must still reach Kafka
    last = app.recorder.max_notification_id()
    withheld_before = metrics.RELAY_WITHHELD._value.get()
    with relaying(stack) as relay:
        wait_until(lambda: relay.published_position >= last, 120, 0.2, "the relay to publish")
    assert metrics.RELAY_WITHHELD._value.get() - withheld_before == 2
    bootstrap = stack.settings.kafka_bootstrap_servers or ""
    published = read_topic(bootstrap, stack.container.topics.cases)
    assert len(published) == last - 2
    dead = read_topic(bootstrap, stack.container.topics.dead_letters)
    assert sorted(m.headers["event-topic"] for m in dead) == sorted(
        [person.topic, "domain.gone:Vanished.Event"]
    )
    assert all(m.headers["dlq-source"] == "relay" and not m.value for m in dead)
    assert "Bakı" not in json.dumps([m.headers for m in dead])  # no personal data in the record
