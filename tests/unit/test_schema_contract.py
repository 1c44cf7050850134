"""The Avro contract: every event has a documented schema that matches it, and every change to a
schema is released and FULL_TRANSITIVE compatible unless the event itself was versioned."""

from __future__ import annotations

import copy
import importlib
import inspect
import itertools
import json
import pkgutil
import types
import typing
from dataclasses import fields, is_dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

import avro.schema
import pytest
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType

import domain
import schemas
from domain.base import CaseAggregate
from infra.contract import EVENT_SCHEMAS

ENVELOPE = {
    "event_id": {"type": "string", "logicalType": "uuid"},
    "occurred_at": {"type": "long", "logicalType": "timestamp-micros"},
    "actor_id": "string",
    "actor_role": "string",
    "correlation_id": "string",
    "causation_id": "string",
    "aggregate_id": {"type": "string", "logicalType": "uuid"},
    "aggregate_version": "long",
    "case_id": {"type": "string", "logicalType": "uuid"},
}
BASE_FIELDS = {
    "originator_id",
    "originator_version",
    "timestamp",
    "originator_topic",
    "event_id",
    "actor_id",
    "actor_role",
    "correlation_id",
    "causation_id",
}


def domain_event_classes() -> list[type]:
    """Every concrete event class defined on an aggregate in domain/."""
    found = []
    for module_info in pkgutil.iter_modules(domain.__path__):
        module = importlib.import_module(f"domain.{module_info.name}")
        for _, aggregate in inspect.getmembers(module, inspect.isclass):
            if not issubclass(aggregate, CaseAggregate) or aggregate is CaseAggregate:
                continue
            if aggregate.__module__ != module.__name__:
                continue
            for name, member in vars(aggregate).items():
                if (
                    inspect.isclass(member)
                    and issubclass(member, CaseAggregate.Event)
                    and name not in ("Event", "Created")
                ):
                    found.append(member)
    # A base that other events extend (Person.Changed) is not itself recorded.
    return [c for c in found if not any(o is not c and issubclass(o, c) for o in found)]


def avro_type_for(annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        assert len(args) == 1, f"only optional unions are mapped: {annotation}"
        return ["null", avro_type_for(args[0])]
    if origin is list:
        return {"type": "array", "items": avro_type_for(typing.get_args(annotation)[0])}
    simple = {
        str: "string",
        int: "long",
        bool: "boolean",
        float: "double",
        UUID: {"type": "string", "logicalType": "uuid"},
        date: {"type": "int", "logicalType": "date"},
        datetime: {"type": "long", "logicalType": "timestamp-micros"},
    }
    if annotation in simple:
        return simple[annotation]
    if is_dataclass(annotation):
        hints = typing.get_type_hints(annotation)
        return {
            "type": "record",
            "fields": [
                {"name": f.name, "type": avro_type_for(hints[f.name])} for f in fields(annotation)
            ],
        }
    raise AssertionError(f"no Avro mapping for {annotation}")


def shape(avro_type: Any) -> Any:
    """An Avro type reduced to what the event class can be compared with (docs and names dropped)."""
    if isinstance(avro_type, list):
        return [shape(t) for t in avro_type]
    if isinstance(avro_type, dict):
        kind = avro_type["type"]
        if kind == "array":
            return {"type": "array", "items": shape(avro_type["items"])}
        if kind == "record":
            return {
                "type": "record",
                "fields": {f["name"]: shape(f["type"]) for f in avro_type["fields"]},
            }
        if "logicalType" in avro_type:
            return {"type": kind, "logicalType": avro_type["logicalType"]}
        return shape(kind)
    return avro_type


def undocumented(node: Any, where: str) -> list[str]:
    missing = []
    if isinstance(node, dict):
        if node.get("type") == "record":
            if not node.get("doc"):
                missing.append(f"{where} (record {node.get('name')})")
            for f in node["fields"]:
                if not f.get("doc"):
                    missing.append(f"{where}.{f['name']}")
                missing += undocumented(f["type"], f"{where}.{f['name']}")
        elif node.get("type") == "array":
            missing += undocumented(node["items"], where + "[]")
    elif isinstance(node, list):
        for item in node:
            missing += undocumented(item, where)
    return missing


def test_every_event_class_has_a_schema() -> None:
    classes = domain_event_classes()
    assert classes, "no event classes found"
    unmapped = [c.__qualname__ for c in classes if c not in EVENT_SCHEMAS]
    assert unmapped == [], f"event classes without an Avro schema in EVENT_SCHEMAS: {unmapped}"
    missing = [n for n in EVENT_SCHEMAS.values() if n not in schemas.catalogue()]
    assert missing == [], f"no .avsc under schemas/ for {missing}"


@pytest.mark.parametrize("event_class", list(EVENT_SCHEMAS), ids=lambda c: c.__qualname__)
def test_schema_and_event_class_agree_on_fields_and_types(event_class: type) -> None:
    definition = schemas.catalogue()[EVENT_SCHEMAS[event_class]].definition
    in_schema = {f["name"]: shape(f["type"]) for f in definition["fields"]}
    hints = typing.get_type_hints(event_class)
    expected = {name: shape(t) for name, t in ENVELOPE.items()}
    for f in fields(event_class):
        if f.name not in BASE_FIELDS:
            expected[f.name] = shape(avro_type_for(hints[f.name]))
    assert in_schema == expected


@pytest.mark.parametrize("name", sorted(schemas.catalogue()))
def test_every_schema_documents_its_record_and_every_field(name: str) -> None:
    assert undocumented(schemas.catalogue()[name].definition, name) == []


# --- the compatibility gate ---------------------------------------------------------------


def full_compatible(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """Problems in either direction between two schema definitions (empty when FULL)."""
    checker = ReaderWriterCompatibilityChecker()
    sa, sb = avro.schema.parse(json.dumps(a)), avro.schema.parse(json.dumps(b))
    problems = []
    # backward: the newer schema reads what the older wrote; forward: the other way round.
    for reader, writer, label in ((sb, sa, "backward"), (sa, sb, "forward")):
        result = checker.get_compatibility(reader, writer)
        if result.compatibility is not SchemaCompatibilityType.compatible:
            problems.append(f"{label}: {'; '.join(result.messages)}")
    return problems


def gate(versions: list[dict[str, Any]], event_class: type) -> list[str]:
    """Why this sequence of released versions (oldest first) breaks the contract, if it does."""
    problems = []
    class_version = getattr(event_class, "class_version", 1)
    current = versions[-1]
    if current.get("eventClassVersion", 1) != class_version:
        problems.append(
            f"schema says eventClassVersion {current.get('eventClassVersion', 1)}, class says {class_version}"
        )
    for v in range(1, class_version):
        if not callable(getattr(event_class, f"upcast_v{v}_v{v + 1}", None)):
            problems.append(f"{event_class.__qualname__} has no upcast_v{v}_v{v + 1}")
    for i, older in enumerate(versions):
        for newer in versions[i + 1 :]:
            if older.get("compatibilityLine", 1) == newer.get("compatibilityLine", 1):
                problems += [f"v{i + 1}: {p}" for p in full_compatible(older, newer)]
    for previous, following in itertools.pairwise(versions):
        new_line = following.get("compatibilityLine", 1) != previous.get("compatibilityLine", 1)
        versioned = following.get("eventClassVersion", 1) > previous.get("eventClassVersion", 1)
        if new_line and not versioned:
            problems.append("a new compatibility line needs a new event class version")
    return problems


@pytest.mark.parametrize("event_class", list(EVENT_SCHEMAS), ids=lambda c: c.__qualname__)
def test_every_schema_change_is_released_and_passes_the_compatibility_gate(
    event_class: type,
) -> None:
    name = EVENT_SCHEMAS[event_class]
    released = schemas.history().get(name, [])
    assert released, f"{name} has no released version under schemas/history/"
    assert released[-1].definition == schemas.catalogue()[name].definition, (
        f"{name} changed since its last release: add it as the next version under schemas/history/"
    )
    assert gate([s.definition for s in released], event_class) == []


def household_v2() -> dict[str, Any]:
    return copy.deepcopy(
        schemas.catalogue()["reintegration.registry.HouseholdRegistered"].definition
    )


def test_the_gate_rejects_a_field_added_without_a_default() -> None:
    from domain.registry import Household

    changed = household_v2()
    changed["fields"].append({"name": "district_office", "type": "string", "doc": "x"})
    problems = gate([household_v2(), changed], Household.Registered)
    assert any("backward" in p for p in problems)


def test_the_gate_rejects_a_changed_field_type() -> None:
    from domain.registry import Household

    changed = household_v2()
    for field in changed["fields"]:
        if field["name"] == "current_address":
            field["type"] = "long"
    assert gate([household_v2(), changed], Household.Registered)


def test_the_gate_allows_a_breaking_change_only_with_a_new_event_version_and_upcaster() -> None:
    from domain.registry import Household

    breaking = household_v2()
    breaking["fields"] = [f for f in breaking["fields"] if f["name"] != "current_address"]
    breaking["compatibilityLine"] = 2
    # Same event class version: refused.
    assert "a new compatibility line needs a new event class version" in gate(
        [household_v2(), breaking], Household.Registered
    )

    class Versioned(Household.Registered):  # type: ignore[misc, valid-type]
        class_version = 3

        @staticmethod
        def upcast_v2_v3(state: dict[str, Any]) -> None:
            state.pop("current_address", None)

    breaking["eventClassVersion"] = 3
    assert gate([household_v2(), breaking], Versioned) == []

    del Versioned.upcast_v2_v3
    assert any("upcast_v2_v3" in p for p in gate([household_v2(), breaking], Versioned))
