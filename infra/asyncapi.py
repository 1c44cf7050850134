"""The topic catalogue: an AsyncAPI 3 document generated from the schemas and the topic
configuration. ``reintegration contract asyncapi`` rewrites schemas/asyncapi.yaml; a test fails
when the committed file is out of date."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path
from typing import Any

import yaml

import schemas
from infra.config import PROJECT_ROOT
from infra.contract import (
    CASES_TOPIC,
    CONSUMER_FETCH_MAX_BYTES,
    EVENT_SCHEMAS,
    MAX_EVENT_BYTES,
    MAX_MESSAGE_BYTES,
    REFERENCE_TOPIC,
    Topics,
    topic_suffix,
)

DOCUMENT = PROJECT_ROOT / "schemas" / "asyncapi.yaml"
BINDING_VERSION = "0.5.0"
AVRO_FORMAT = "application/vnd.apache.avro+json;version=1.9.0"

EVENT_HEADERS = {
    "type": "object",
    "required": ["event-type", "event-id", "notification-id", "correlation-id"],
    "properties": {
        "event-type": {"type": "string", "description": "Avro full name of the message's schema."},
        "event-id": {"type": "string", "format": "uuid", "description": "Id of the event."},
        "notification-id": {
            "type": "string",
            "description": "Position of the event in the event store's global log (decimal). "
            "Positions increase in commit order but may skip numbers: a rolled-back "
            "transaction consumes the ids it drew; no committed event is ever missing (the "
            "chain-hash links each committed event to the one before it).",
        },
        "correlation-id": {
            "type": "string",
            "description": "Id shared by everything one request or conversation caused.",
        },
        "chain-hash": {
            "type": "string",
            "description": "The event's link in the tamper-evident hash chain (hex SHA-256).",
        },
    },
}
CHECKPOINT = {
    "type": "object",
    "description": (
        "A signed checkpoint of the transparency log (JSON): the C2SP tlog-checkpoint note over "
        "the Merkle tree of the events' chain links, and beside it the position and chain link "
        "of its last event. Checkpoints written before the Merkle tree have no note."
    ),
    "properties": {
        "tree_size": {"type": ["integer", "null"], "description": "Events in the tree."},
        "root_hash": {"type": ["string", "null"], "description": "Base64 RFC 9162 root hash."},
        "note": {
            "type": ["string", "null"],
            "description": "The C2SP signed note (origin, tree size, root hash; signature).",
        },
        "position": {"type": "integer"},
        "chain_hash": {"type": "string", "description": "Hex SHA-256 link at the position."},
        "created_at": {"type": "string", "format": "date-time"},
        "key_id": {
            "type": "string",
            "description": "First 16 hex digits of SHA-256 of the public key.",
        },
        "signature": {
            "type": "string",
            "description": "Base64 Ed25519 signature of the note's text (before the tree: of "
            "'reintegration-checkpoint-v1|<position>|<chain_hash>|<created_at>').",
        },
    },
}
DEAD_LETTER_HEADERS = {
    "type": "object",
    "description": (
        "From a projection: the original message's headers, plus these. From the relay "
        "(dlq-source: relay, no value): an event it could not publish and withheld, which stays "
        "in the event store."
    ),
    "properties": {
        "dlq-source": {
            "type": "string",
            "description": "relay when the relay withheld an event; absent from a projection.",
        },
        "notification-id": {"type": "string", "description": "Position of the withheld event."},
        "originator-id": {"type": "string", "description": "Aggregate of the withheld event."},
        "originator-version": {"type": "string", "description": "Its version (decimal)."},
        "event-topic": {"type": "string", "description": "The withheld event's stored type."},
        "dlq-projection": {"type": "string", "description": "Projection that failed."},
        "dlq-source-topic": {"type": "string"},
        "dlq-source-partition": {"type": "string", "description": "Decimal."},
        "dlq-source-offset": {"type": "string", "description": "Decimal."},
        "dlq-error-class": {"type": "string"},
        "dlq-error-message": {"type": "string"},
    },
}


def _schema_file(name: str) -> str:
    namespace, short = name.rsplit(".", 1)
    return f"{namespace.rsplit('.', 1)[-1]}/{short}.avsc"


def generate(prefix: str = "reintegration", partitions: int = 6) -> dict[str, Any]:
    topics = Topics(prefix)
    messages: dict[str, Any] = {}
    for name in sorted(set(EVENT_SCHEMAS.values())):
        schema = schemas.catalogue()[name]
        released = schemas.history().get(name, [])
        messages[schema.short_name] = {
            "name": schema.short_name,
            "title": schema.short_name,
            "summary": schema.definition["doc"],
            "contentType": "application/octet-stream",
            "headers": {"$ref": "#/components/schemas/EventHeaders"},
            "payload": {"schemaFormat": AVRO_FORMAT, "schema": schema.definition},
            "bindings": {
                "kafka": {
                    "key": {
                        "type": "string",
                        "format": "uuid",
                        "description": "Household (case) id.",
                    },
                    "bindingVersion": BINDING_VERSION,
                }
            },
            "x-avro-file": _schema_file(name),
            "x-fingerprint": schema.fingerprint.hex(),
            "x-released-fingerprints": {
                f"v{i}": s.fingerprint.hex() for i, s in enumerate(released, start=1)
            },
        }
    topic_of = {
        schemas.catalogue()[name].short_name: topic_suffix(cls)
        for cls, name in EVENT_SCHEMAS.items()
    }
    case_messages = {
        n: {"$ref": f"#/components/messages/{n}"} for n in messages if topic_of[n] == CASES_TOPIC
    }
    reference_messages = {
        n: {"$ref": f"#/components/messages/{n}"}
        for n in messages
        if topic_of[n] == REFERENCE_TOPIC
    }

    def forever() -> dict[str, Any]:
        return {
            "retention.ms": -1,
            "retention.bytes": -1,
            "cleanup.policy": ["delete"],
            "max.message.bytes": MAX_MESSAGE_BYTES,
        }

    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Return and Reintegration events",
            "version": version("reintegration"),
            "description": (
                "Events of the Return and Reintegration e-control system. Message values use Avro "
                "single-object encoding: the bytes C3 01, the 8-byte little-endian CRC-64-AVRO "
                "fingerprint of the writer schema's Parsing Canonical Form, then the Avro binary "
                "body. Decode with the .avsc files under schemas/ (x-avro-file) or the schemas "
                "inlined here; a message written with an older released version (see "
                "x-released-fingerprints and schemas/history/) resolves to the current schema. "
                "Read with isolation.level=read_committed and skip event types you do not know "
                "by the event-type header: new types are added without notice. "
                f"Message size: every topic accepts messages of up to {MAX_MESSAGE_BYTES} bytes "
                f"(max.message.bytes); the event store refuses an event whose stored JSON would "
                f"exceed {MAX_EVENT_BYTES} bytes, and its Avro message is smaller, so every event "
                "fits. The largest legitimate one is a lottery announcement for a settlement of "
                "20,000 households (6.4 MB as JSON, 2.2 MB as Avro). Consumers must be able to "
                "fetch such a message: "
                f"fetch.max.bytes at least {CONSUMER_FETCH_MAX_BYTES} (the Java client's and "
                "librdkafka's default is 52428800) and, for librdkafka, receive.message.max.bytes "
                "at least fetch.max.bytes plus 512; a client raises its per-partition fetch size "
                "(max.partition.fetch.bytes) for a larger message by itself."
            ),
            "x-limits": {
                "maxEventBytes": MAX_EVENT_BYTES,
                "maxMessageBytes": MAX_MESSAGE_BYTES,
                "consumerFetchMaxBytes": CONSUMER_FETCH_MAX_BYTES,
            },
        },
        "servers": {
            "local": {
                "host": "127.0.0.1:9092",
                "protocol": "kafka",
                "description": "The development broker started by `make up`.",
            }
        },
        "channels": {
            "cases": {
                "address": topics.cases,
                "title": "Case events",
                "description": (
                    "Every event that belongs to a household (the case), keyed by household id "
                    "so that one case's events stay in order on one partition."
                ),
                "messages": case_messages,
                "bindings": {
                    "kafka": {
                        "topic": topics.cases,
                        "partitions": partitions,
                        "topicConfiguration": forever(),
                        "bindingVersion": BINDING_VERSION,
                    }
                },
            },
            "referenceData": {
                "address": topics.reference_data,
                "title": "Reference data",
                "description": "Published questionnaires (and later rule sets and settlements), keyed by their id.",
                "messages": reference_messages,
                "bindings": {
                    "kafka": {
                        "topic": topics.reference_data,
                        "partitions": partitions,
                        "topicConfiguration": forever(),
                        "bindingVersion": BINDING_VERSION,
                    }
                },
            },
            "deadLetters": {
                "address": topics.dead_letters,
                "title": "Dead letters",
                "description": (
                    "Messages a projection could not decode or apply, as received; and records of "
                    "events the relay withheld (dlq-source: relay)."
                ),
                "messages": {"DeadLetter": {"$ref": "#/components/messages/DeadLetter"}},
                "bindings": {
                    "kafka": {
                        "topic": topics.dead_letters,
                        "partitions": 1,
                        "topicConfiguration": forever(),
                        "bindingVersion": BINDING_VERSION,
                    }
                },
            },
            "auditCheckpoints": {
                "address": topics.audit_checkpoints,
                "title": "Audit checkpoints",
                "description": "Signed checkpoints of the hash chain over the event log.",
                "messages": {"Checkpoint": {"$ref": "#/components/messages/Checkpoint"}},
                "bindings": {
                    "kafka": {
                        "topic": topics.audit_checkpoints,
                        "partitions": 1,
                        "topicConfiguration": forever(),
                        "bindingVersion": BINDING_VERSION,
                    }
                },
            },
            "auditCosignatures": {
                "address": topics.audit_cosignatures,
                "title": "Witnesses' cosignatures",
                "description": (
                    "Checkpoints cosigned by the witnesses (C2SP tlog-cosignature), as each "
                    "was received and verified; keyed by tree size."
                ),
                "messages": {
                    "CosignedCheckpoint": {"$ref": "#/components/messages/CosignedCheckpoint"}
                },
                "bindings": {
                    "kafka": {
                        "topic": topics.audit_cosignatures,
                        "partitions": 1,
                        "topicConfiguration": forever(),
                        "bindingVersion": BINDING_VERSION,
                    }
                },
            },
        },
        "operations": {
            "receiveCaseEvents": {
                "action": "receive",
                "channel": {"$ref": "#/channels/cases"},
                "summary": "Subscribe to case events.",
                "messages": [{"$ref": f"#/channels/cases/messages/{n}"} for n in case_messages],
            },
            "receiveReferenceData": {
                "action": "receive",
                "channel": {"$ref": "#/channels/referenceData"},
                "summary": "Subscribe to published questionnaires.",
                "messages": [
                    {"$ref": f"#/channels/referenceData/messages/{n}"} for n in reference_messages
                ],
            },
            "receiveAuditCheckpoints": {
                "action": "receive",
                "channel": {"$ref": "#/channels/auditCheckpoints"},
                "summary": "Keep an independent copy of the signed checkpoints (auditors).",
                "messages": [{"$ref": "#/channels/auditCheckpoints/messages/Checkpoint"}],
            },
            "receiveAuditCosignatures": {
                "action": "receive",
                "channel": {"$ref": "#/channels/auditCosignatures"},
                "summary": "Keep the witnesses' cosignatures (auditors, other witnesses).",
                "messages": [{"$ref": "#/channels/auditCosignatures/messages/CosignedCheckpoint"}],
            },
            "receiveDeadLetters": {
                "action": "receive",
                "channel": {"$ref": "#/channels/deadLetters"},
                "summary": "Watch for messages projections could not apply (operations).",
                "messages": [{"$ref": "#/channels/deadLetters/messages/DeadLetter"}],
            },
        },
        "components": {
            "messages": {
                **messages,
                "Checkpoint": {
                    "name": "Checkpoint",
                    "title": "Signed checkpoint",
                    "contentType": "application/json",
                    "payload": CHECKPOINT,
                },
                "CosignedCheckpoint": {
                    "name": "CosignedCheckpoint",
                    "title": "Cosigned checkpoint",
                    "summary": "The checkpoint note with the log's signature and a witness's.",
                    "contentType": "text/plain",
                    "payload": {"type": "string"},
                },
                "DeadLetter": {
                    "name": "DeadLetter",
                    "title": "Dead letter",
                    "summary": "The original key and value, unchanged, with headers saying why.",
                    "contentType": "application/octet-stream",
                    "headers": {"$ref": "#/components/schemas/DeadLetterHeaders"},
                    "payload": {"type": "string", "format": "binary"},
                },
            },
            "schemas": {"EventHeaders": EVENT_HEADERS, "DeadLetterHeaders": DEAD_LETTER_HEADERS},
        },
    }


def render(document: dict[str, Any]) -> str:
    header = "# Generated by `reintegration contract asyncapi`; do not edit by hand.\n"
    body: str = yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)
    return header + body


def write(path: Path = DOCUMENT) -> Path:
    path.write_text(render(generate()), encoding="utf-8")
    return path
