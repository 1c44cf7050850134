"""Reading the published contract: the AsyncAPI document and the Avro schema files."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from fastavro import parse_schema, schemaless_reader
from fastavro.schema import fingerprint, to_parsing_canonical_form

MARKER = b"\xc3\x01"


@dataclass(frozen=True)
class Contract:
    topic: str
    readers: dict[bytes, tuple[Any, Any, str]]  # fingerprint -> (writer, reader, full name)

    def decode(self, value: bytes) -> tuple[str, dict[str, Any]] | None:
        """(event type, record), or None for a schema this agency does not hold."""
        if value[:2] != MARKER:
            raise ValueError("not Avro single-object encoding")
        known = self.readers.get(value[2:10])
        if known is None:
            return None
        writer, reader, name = known
        record = schemaless_reader(io.BytesIO(value[10:]), writer, reader)
        if not isinstance(record, dict):
            raise ValueError(f"{name} is not a record")
        return name, record


def _fingerprint(definition: dict[str, Any]) -> bytes:
    return bytes.fromhex(fingerprint(to_parsing_canonical_form(definition), "CRC-64-AVRO"))


def load(schemas_dir: Path, wanted: set[str]) -> Contract:
    """The case-events topic and readers for the wanted message names, from the contract files."""
    document = yaml.safe_load((schemas_dir / "asyncapi.yaml").read_text(encoding="utf-8"))
    channel = document["channels"]["cases"]
    readers: dict[bytes, tuple[Any, Any, str]] = {}
    for name in wanted:
        message = document["components"]["messages"][name]
        current_file = schemas_dir / message["x-avro-file"]
        current = json.loads(current_file.read_text(encoding="utf-8"))
        reader = parse_schema(current, _write_hint=False)
        full_name = f"{current['namespace']}.{current['name']}"
        history = schemas_dir / "history" / current_file.parent.name / current_file.stem
        for path in sorted(history.glob("v*.avsc")) if history.exists() else []:
            old = json.loads(path.read_text(encoding="utf-8"))
            if old.get("compatibilityLine", 1) == current.get("compatibilityLine", 1):
                readers[_fingerprint(old)] = (
                    parse_schema(old, _write_hint=False),
                    reader,
                    full_name,
                )
        readers[_fingerprint(current)] = (reader, reader, full_name)
    return Contract(channel["address"], readers)
