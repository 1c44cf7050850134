"""The Avro contract: one committed ``.avsc`` per event type, and the single-object codec.

Messages use Avro single-object encoding: the marker ``C3 01``, the 8-byte little-endian
CRC-64-AVRO fingerprint of the writer schema's Parsing Canonical Form, then the binary
body. A reader that holds the ``.avsc`` files can decode any message without a registry.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

from fastavro import parse_schema, schemaless_reader, schemaless_writer
from fastavro.schema import fingerprint, to_parsing_canonical_form

MARKER = b"\xc3\x01"


class SchemaError(Exception):
    pass


class UnknownSchema(SchemaError):
    def __init__(self, fingerprint_hex: str) -> None:
        super().__init__(f"no schema with fingerprint {fingerprint_hex}")
        self.fingerprint_hex = fingerprint_hex


class NotSingleObjectEncoded(SchemaError):
    pass


class CorruptMessage(SchemaError):
    """The header names a known schema but the body does not decode with it."""


@dataclass(frozen=True)
class Schema:
    name: str  # full name, e.g. reintegration.registry.HouseholdRegistered
    definition: dict[str, Any]
    parsed: Any
    fingerprint: bytes  # 8 bytes, little-endian, as the wire carries it

    @property
    def short_name(self) -> str:
        return self.name.rsplit(".", 1)[-1]


def _load(text: str) -> Schema:
    definition = json.loads(text)
    parsed = parse_schema(definition, _write_hint=False)
    canonical = to_parsing_canonical_form(definition)
    # fastavro renders the CRC-64-AVRO value in wire (little-endian) byte order, as Java does.
    wire_fingerprint = bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO"))
    name = f"{definition['namespace']}.{definition['name']}"
    return Schema(name, definition, parsed, wire_fingerprint)


@cache
def catalogue() -> dict[str, Schema]:
    """Every current schema under schemas/, by full name."""
    found: dict[str, Schema] = {}
    for context in files("schemas").iterdir():
        if not context.is_dir() or context.name.startswith(("_", ".")) or context.name == "history":
            continue
        for item in context.iterdir():
            if item.name.endswith(".avsc"):
                schema = _load(item.read_text(encoding="utf-8"))
                found[schema.name] = schema
    return found


@cache
def _by_fingerprint() -> dict[bytes, Schema]:
    return {schema.fingerprint: schema for schema in catalogue().values()}


def encode(schema_name: str, record: dict[str, Any]) -> bytes:
    schema = catalogue()[schema_name]
    out = io.BytesIO()
    out.write(MARKER)
    out.write(schema.fingerprint)
    schemaless_writer(out, schema.parsed, record)
    return out.getvalue()


def decode(message: bytes) -> tuple[Schema, dict[str, Any]]:
    if len(message) < 10 or message[:2] != MARKER:
        raise NotSingleObjectEncoded(
            "message does not start with the Avro single-object marker C3 01"
        )
    schema = _by_fingerprint().get(message[2:10])
    if schema is None:
        raise UnknownSchema(message[2:10].hex())
    try:
        record = schemaless_reader(io.BytesIO(message[10:]), schema.parsed, schema.parsed)
    except Exception as exc:
        raise CorruptMessage(
            f"{schema.name} body does not decode: {type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(record, dict):
        raise SchemaError(f"{schema.name} is not a record schema")
    return schema, record
