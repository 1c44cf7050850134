from __future__ import annotations

from datetime import date

import pytest

import schemas
from domain.base import Actor, CommandContext, acting_as
from domain.registration import register_household
from domain.registry import NewMember, RegisterHousehold
from infra.contract import EVENT_SCHEMAS, encode


def test_a_domain_event_round_trips_through_single_object_encoding() -> None:
    with acting_as(CommandContext(Actor("op", "operator"), "c", "k")):
        household, persons = register_household(
            RegisterHousehold(
                [
                    NewMember(
                        "AAAAAA1",
                        "Aysel",
                        "Məmmədova",
                        "Rauf qızı",
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
    for event in [*household.collect_events(), *persons[0].collect_events()]:
        name, value = encode(event)
        assert value[:2] == b"\xc3\x01"
        schema, record = schemas.decode(value)
        assert schema.name == name == EVENT_SCHEMAS[type(event)]
        assert record["event_id"] == event.event_id
        assert record["occurred_at"] == event.timestamp
        assert record["case_id"] == household.id


def test_a_message_without_the_marker_is_refused() -> None:
    with pytest.raises(schemas.NotSingleObjectEncoded):
        schemas.decode(b"{}not avro at all")


def test_a_message_with_an_unknown_fingerprint_is_refused() -> None:
    with pytest.raises(schemas.UnknownSchema):
        schemas.decode(b"\xc3\x01" + b"\x00" * 8 + b"\x02")


def test_every_mapped_event_type_has_a_schema_file() -> None:
    assert set(EVENT_SCHEMAS.values()) <= set(schemas.catalogue())
