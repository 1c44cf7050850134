"""The relay reads stored uuids as their text: its messages are the bytes the domain events
themselves encode to."""

from __future__ import annotations

import uuid
from datetime import date

import pytest
from eventsourcing.persistence import Notification

from application.store import ReintegrationApplication
from domain.base import Actor, CommandContext, acting_as
from domain.registration import register_household
from domain.registry import NewMember, RegisterHousehold
from infra import contract
from infra.relay import UuidAsText, relay_mapper


def test_the_relay_writes_the_messages_the_domain_events_encode_to() -> None:
    app = ReintegrationApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    with acting_as(CommandContext(Actor("op", "operator"), "c", "k")):
        household, persons = register_household(
            RegisterHousehold(
                [
                    NewMember(
                        "AAAAAA1", "Aysel", "Məmmədova", None, date(1984, 3, 12), "female", "head"
                    ),
                    NewMember(
                        "AAAAAA2", "Rauf", "Məmmədov", None, date(1982, 1, 2), "male", "spouse"
                    ),
                ],
                "ZAN-002",
                "Bakı",
            ),
            date(2026, 1, 1),
        )
    events = [*household.collect_events(), *(e for p in persons for e in p.collect_events())]
    text = relay_mapper(app)
    for n, event in enumerate(events, start=1):
        stored = app.mapper.to_stored_event(event)
        notification = Notification(
            id=n,
            originator_id=stored.originator_id,
            originator_version=stored.originator_version,
            topic=stored.topic,
            state=stored.state,
        )
        read = text.to_domain_event(notification)
        assert contract.encode(read) == contract.encode(event)
        assert contract.headers("s", read, n) == contract.headers("s", event, n)
        assert str(read.partition_key) == str(event.partition_key)


def test_a_stored_uuid_is_read_as_its_canonical_text_or_refused() -> None:
    value = uuid.uuid4()
    assert UuidAsText().decode(value.hex) == str(value)
    assert UuidAsText().decode(value.hex.upper()) == str(value)
    with pytest.raises(ValueError):
        UuidAsText().decode("not a uuid")
