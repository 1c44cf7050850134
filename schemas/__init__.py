"""The Avro contract: one committed ``.avsc`` per event type, and the single-object codec.

Messages use Avro single-object encoding: the marker ``C3 01``, the 8-byte little-endian
CRC-64-AVRO fingerprint of the writer schema's Parsing Canonical Form, then the binary
body. A reader that holds the ``.avsc`` files can decode any message without a registry.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
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


def decode(message: bytes, *, uuids_as_text: bool = False) -> tuple[Schema, dict[str, Any]]:
    """The reader schema and the record; messages written with an older schema of the same
    compatibility line are resolved to the current schema (new fields take their defaults).

    ``uuids_as_text``: uuid fields stay the canonical text the message carries (checked to be
    one) instead of becoming :class:`uuid.UUID` objects, a third of the cost of decoding a
    message. For writers that hand them on as text, such as the projections' SQL parameters.
    """
    if len(message) < 10 or message[:2] != MARKER:
        raise NotSingleObjectEncoded(
            "message does not start with the Avro single-object marker C3 01"
        )
    found = _by_fingerprint().get(message[2:10])
    if found is None:
        raise UnknownSchema(message[2:10].hex())
    schema = found.reader
    if uuids_as_text:
        writer, reader, check = _text_reading(message[2:10])
    else:
        writer = found.writer.parsed
        reader = None if found.writer is schema else schema.parsed  # no resolution when same
        check = None
    try:
        record = schemaless_reader(io.BytesIO(message[10:]), writer, reader)
    except Exception as exc:
        raise CorruptMessage(
            f"{schema.name} body does not decode: {type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(record, dict):
        raise SchemaError(f"{schema.name} is not a record schema")
    if check is not None and (field := check(record)) is not None:
        raise CorruptMessage(f"{schema.name} body does not decode: {field} is not a uuid")
    return schema, record


_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

Check = Callable[[Any], str | None]
"""Checks a decoded value's uuid texts: the path of the first that is not one, or None."""


@cache
def _text_reading(fingerprint: bytes) -> tuple[Any, Any, Check | None]:
    """The writer and reader schemas of a message with plain strings for uuids (the binary
    encoding is the same), and the check of the uuid texts a record of it holds."""
    found = _by_fingerprint()[fingerprint]
    writer = parse_schema(_uuids_as_strings(found.writer.definition))
    reader = (
        None
        if found.writer is found.reader
        else parse_schema(_uuids_as_strings(found.reader.definition))
    )
    checker = _uuid_check(found.reader.definition, "")
    return writer, reader, checker[1] if checker else None


def _uuids_as_strings(node: Any) -> Any:
    if isinstance(node, list):
        return [_uuids_as_strings(n) for n in node]
    if isinstance(node, dict):
        return {
            k: _uuids_as_strings(v)
            for k, v in node.items()
            if not (k == "logicalType" and v == "uuid")
        }
    return node


def _uuid_check(
    node: Any, path: str, named: dict[str, Any] | None = None
) -> tuple[type, Check] | None:
    """For a schema type that holds uuids: the Python type of its values and their check.
    ``named``: the named types defined so far, by full and short name (a field may name one)."""
    named = {} if named is None else named
    if isinstance(node, list):  # a union: the branches a value of its type may be
        branches = [b for b in (_uuid_check(n, path, named) for n in node) if b is not None]
        if not branches:
            return None

        def union(value: Any) -> str | None:
            failed = None
            for kind, check in branches:
                if isinstance(value, kind) and (failed := check(value)) is None:
                    return None
            return failed

        return object, union
    if isinstance(node, str):
        if node in PRIMITIVES:
            return None
        if node not in named:  # recursive, or unknown: checked nowhere rather than wrongly
            raise SchemaError(f"the uuid check cannot follow the named type {node!r}")
        return _uuid_check(named[node], path, named)
    if not isinstance(node, dict):
        return None
    if node.get("logicalType") == "uuid":
        return str, lambda value: None if _CANONICAL_UUID.fullmatch(value) else path
    kind = node.get("type")
    if isinstance(kind, dict | list) or (isinstance(kind, str) and kind in named):
        return _uuid_check(kind, path, named)
    if kind in ("enum", "fixed"):
        _define(node, named)
        return None
    if kind == "record":
        fields = [
            (f["name"], found[1])
            for f in node["fields"]
            if (found := _uuid_check(f["type"], f"{path}.{f['name']}".lstrip("."), named))
            is not None
        ]
        _define(node, named)  # after its fields: a record that names itself is refused
        if not fields:
            return None

        def record(value: Any) -> str | None:
            for name, check in fields:
                if (failed := check(value.get(name))) is not None:
                    return failed
            return None

        return dict, record
    if kind in ("array", "map"):
        inner = _uuid_check(node["items" if kind == "array" else "values"], f"{path}[]", named)
        if inner is None:
            return None
        _, check = inner

        def each(value: Any) -> str | None:
            for item in value if kind == "array" else value.values():
                if (failed := check(item)) is not None:
                    return failed
            return None

        return list if kind == "array" else dict, each
    return None


PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
"""Avro's primitive type names."""


def _define(node: dict[str, Any], named: dict[str, Any]) -> None:
    name = node["name"]
    namespace = node.get("namespace")
    named[name.rsplit(".", 1)[-1]] = node
    named[name if "." in name or not namespace else f"{namespace}.{name}"] = node
