from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime
from typing import Any

import pytest
from fastavro.utils import generate_one

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


def with_uuids(kind: Any, value: Any) -> Any:
    """A record fastavro filled at random (its uuid fields hold random text), with uuids in
    them."""
    if isinstance(kind, list):  # a union: the branch the value took
        branches = [k for k in kind if k != "null"]
        return value if value is None or len(branches) != 1 else with_uuids(branches[0], value)
    if not isinstance(kind, dict):
        return value
    if kind.get("logicalType") == "uuid":
        return uuid.uuid4()
    if isinstance(kind.get("type"), dict | list):
        return with_uuids(kind["type"], value)
    if kind.get("type") == "record":
        return {f["name"]: with_uuids(f["type"], value[f["name"]]) for f in kind["fields"]}
    if kind.get("type") == "array":
        return [with_uuids(kind["items"], v) for v in value]
    return value


def test_uuids_read_as_text_are_the_canonical_text_of_the_uuids_read_as_objects() -> None:
    for name, schema in schemas.catalogue().items():
        if not any("uuid" in json.dumps(f["type"]) for f in schema.definition["fields"]):
            continue
        record = with_uuids(schema.definition, generate_one(schema.parsed))
        as_objects = schemas.decode(schemas.encode(name, record))[1]
        as_text = schemas.decode(schemas.encode(name, record), uuids_as_text=True)[1]
        assert isinstance(as_text["event_id"], str)
        assert json.loads(json.dumps(as_objects, default=str)) == json.loads(
            json.dumps(as_text, default=str)
        ), name


def test_a_uuid_that_is_not_canonical_text_is_refused_naming_its_field() -> None:
    message = schemas.encode(
        "reintegration.surveys.SurveyCompleted",
        {
            "event_id": uuid.uuid4(),
            "occurred_at": datetime(2026, 11, 1, tzinfo=UTC),
            "actor_id": "a",
            "actor_role": "operator",
            "correlation_id": "c",
            "causation_id": "c",
            "aggregate_id": "NOT-A-UUID",
            "aggregate_version": 2,
            "case_id": uuid.uuid4(),
            "household_id": uuid.uuid4(),
            "answered": 1,
        },
    )
    with pytest.raises(schemas.CorruptMessage, match="aggregate_id is not a uuid"):
        schemas.decode(message, uuids_as_text=True)


def test_a_uuid_deep_in_a_record_that_is_not_canonical_text_is_refused_naming_its_path() -> None:
    name = "reintegration.housing.LotteryDrawn"
    schema = schemas.catalogue()[name]
    record = with_uuids(schema.definition, generate_one(schema.parsed))
    record["assignments"] = [
        {
            "household_id": uuid.uuid4(),
            "unit_id": "{" + str(uuid.uuid4()) + "}",
            "rooms": 2,
            "position": 1,
        }
    ]
    with pytest.raises(schemas.CorruptMessage, match=r"assignments\[\]\.unit_id is not a uuid"):
        schemas.decode(schemas.encode(name, record), uuids_as_text=True)


def test_a_uuid_in_a_record_type_named_again_later_is_checked_too() -> None:
    uuid_type = {"type": "string", "logicalType": "uuid"}
    inner = {"type": "record", "name": "M", "fields": [{"name": "id", "type": uuid_type}]}
    schema = {
        "type": "record",
        "name": "R",
        "namespace": "t",
        "fields": [{"name": "a", "type": inner}, {"name": "b", "type": ["null", "M"]}],
    }
    found = schemas._uuid_check(schema, "")
    assert found is not None
    check = found[1]
    good = str(uuid.uuid4())
    assert check({"a": {"id": good}, "b": None}) is None
    assert check({"a": {"id": good}, "b": {"id": "bad"}}) == "b.id"
    with pytest.raises(schemas.SchemaError):  # a type it cannot follow is refused, not skipped
        schemas._uuid_check({**schema, "fields": [{"name": "c", "type": "Unknown"}]}, "")
