"""Every Kafka message decodes with the Apache `avro` package, given only the .avsc files."""

from __future__ import annotations

import io
import json
import threading
from pathlib import Path
from typing import Any

import avro.io
import avro.schema

from tests.integration.conftest import Stack, register_households
from tests.integration.kafka_reading import read_topic
from tests.support import ROOT, wait_until

MARKER = b"\xc3\x01"


def without_logical_types(node: Any) -> Any:
    """Parsing Canonical Form keeps only what parsing needs; logicalType is not part of it.

    The `avro` package's canonical_form keeps {"type": "string"} wrappers around logical
    types where the specification (and Java, and fastavro) reduce them to "string", so the
    fingerprint is computed on the schema with logical types removed.
    """
    if isinstance(node, dict):
        if "logicalType" in node and isinstance(node.get("type"), str):
            return node["type"]
        return {k: without_logical_types(v) for k, v in node.items() if k != "logicalType"}
    if isinstance(node, list):
        return [without_logical_types(v) for v in node]
    return node


def schemas_by_fingerprint(folder: Path) -> dict[bytes, avro.schema.Schema]:
    found = {}
    for path in folder.rglob("*.avsc"):
        if "history" in path.parts:
            continue
        definition = json.loads(path.read_text())
        writer = avro.schema.parse(json.dumps(definition))
        plain = avro.schema.parse(json.dumps(without_logical_types(definition)))
        found[plain.fingerprint("CRC-64-AVRO")] = writer
    return found


def decode(message: bytes, schemas: dict[bytes, avro.schema.Schema]) -> tuple[str, dict[str, Any]]:
    assert message[:2] == MARKER, "not Avro single-object encoding"
    schema = schemas[message[2:10]]
    reader = avro.io.DatumReader(schema, schema)
    record = reader.read(avro.io.BinaryDecoder(io.BytesIO(message[10:])))
    return schema.fullname, record


def test_every_message_decodes_with_the_apache_avro_package_from_the_schema_files(
    stack: Stack,
) -> None:
    register_households(stack.container, 40)
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

    schemas = schemas_by_fingerprint(ROOT / "schemas")
    messages = read_topic(
        stack.settings.kafka_bootstrap_servers or "", stack.container.topics.cases
    )
    assert messages
    seen_types = set()
    for message in messages:
        name, record = decode(message.value, schemas)
        seen_types.add(name)
        assert message.headers["event-type"] == name
        assert str(record["event_id"]) == message.headers["event-id"]
        assert str(record["case_id"]) == message.key.decode()
        assert record["actor_id"] == "seeder"
        assert record["actor_role"] == "operator"
        assert record["correlation_id"] == "seed-correlation"
        assert record["causation_id"] == "seed-command"
        if name.endswith("HouseholdRegistered"):
            assert record["members"][0]["relationship"] == "head"
            assert record["aggregate_id"] == record["case_id"]
        else:
            assert record["household_id"] == record["case_id"]
            assert len(record["fin"]) == 7
    assert seen_types == {
        "reintegration.registry.HouseholdRegistered",
        "reintegration.registry.PersonRegistered",
    }
