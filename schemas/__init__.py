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

    @property
    def event_class_version(self) -> int:
        """The event class version (``class_version``) this schema describes."""
        return int(self.definition.get("eventClassVersion", 1))

    @property
    def compatibility_line(self) -> int:
        """Schemas on one line are FULL_TRANSITIVE compatible; a new line is a breaking change."""
        return int(self.definition.get("compatibilityLine", 1))


def _load(text: str) -> Schema:
    definition = json.loads(text)
    # Parsed once with fastavro's hint, so the writer and reader do not parse it again on every
    # call (half the cost of encoding or decoding one event).
    parsed = parse_schema(definition)
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
def history() -> dict[str, list[Schema]]:
    """Every released version of every schema (schemas/history/<context>/<Name>/v<N>.avsc),
    by full name, oldest first."""
    found: dict[str, list[tuple[int, Schema]]] = {}
    root = files("schemas").joinpath("history")
    for context in root.iterdir():
        if not context.is_dir():
            continue
        for event in context.iterdir():
            if not event.is_dir():
                continue
            for item in event.iterdir():
                if item.name.startswith("v") and item.name.endswith(".avsc"):
                    schema = _load(item.read_text(encoding="utf-8"))
                    found.setdefault(schema.name, []).append((int(item.name[1:-5]), schema))
    return {
        name: [s for _, s in sorted(versions, key=lambda v: v[0])]
        for name, versions in found.items()
    }


@dataclass(frozen=True)
class _Reader:
    writer: Schema
    reader: Schema


@cache
def _by_fingerprint() -> dict[bytes, _Reader]:
    """Every schema a message may have been written with, and the schema to read it as: the
    current one when the writer is on the current compatibility line, else the writer itself."""
    readers = {}
    for name, versions in history().items():
        current = catalogue().get(name)
        for writer in versions:
            same_line = (
                current is not None and writer.compatibility_line == current.compatibility_line
            )
            readers[writer.fingerprint] = _Reader(
                writer, current if same_line and current else writer
            )
    for schema in catalogue().values():
        readers[schema.fingerprint] = _Reader(schema, schema)
    return readers


def encode(schema_name: str, record: dict[str, Any]) -> bytes:
    schema = catalogue()[schema_name]
    out = io.BytesIO()
    out.write(MARKER)
    out.write(schema.fingerprint)
    schemaless_writer(out, schema.parsed, record)
    return out.getvalue()


def schema_name(message: bytes) -> str | None:
    """The name of the schema a message was written with, read from its header alone (None
    when the header is not one of a known schema: :func:`decode` says why)."""
    found = _by_fingerprint().get(message[2:10]) if message[:2] == MARKER else None
    return found.reader.name if found is not None else None


def decode(message: bytes) -> tuple[Schema, dict[str, Any]]:
    """The reader schema and the record; messages written with an older schema of the same
    compatibility line are resolved to the current schema (new fields take their defaults)."""
    if len(message) < 10 or message[:2] != MARKER:
        raise NotSingleObjectEncoded(
            "message does not start with the Avro single-object marker C3 01"
        )
    found = _by_fingerprint().get(message[2:10])
    if found is None:
        raise UnknownSchema(message[2:10].hex())
    schema = found.reader
    try:
        record = schemaless_reader(
            io.BytesIO(message[10:]),
            found.writer.parsed,
            None if found.writer is schema else schema.parsed,  # no resolution when the same
        )
    except Exception as exc:
        raise CorruptMessage(
            f"{schema.name} body does not decode: {type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(record, dict):
        raise SchemaError(f"{schema.name} is not a record schema")
    return schema, record
