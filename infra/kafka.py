"""Kafka plumbing shared by the relay and the projections: topics and client settings."""

from __future__ import annotations

from typing import Any

import structlog
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from infra.contract import Topics

log = structlog.get_logger(__name__)


def ensure_topics(bootstrap_servers: str, topics: Topics, partitions: int) -> None:
    """Create the project's topics if they are missing (idempotent; never changes existing ones)."""
    admin = AdminClient({"bootstrap.servers": bootstrap_servers})
    forever = {"retention.ms": "-1", "retention.bytes": "-1"}  # the events are the record
    wanted = [
        NewTopic(name, num_partitions=partitions, replication_factor=1, config=forever)
        for name in topics.event_topics
    ]
    wanted.append(
        NewTopic(
            topics.relay_position,
            num_partitions=1,
            replication_factor=1,
            config={"cleanup.policy": "compact"},
        )
    )
    for single in (topics.dead_letters, topics.audit_checkpoints):
        wanted.append(NewTopic(single, num_partitions=1, replication_factor=1, config=forever))
    existing = set(admin.list_topics(timeout=10).topics)
    missing = [t for t in wanted if t.topic not in existing]
    if not missing:
        return
    for name, future in admin.create_topics(missing, operation_timeout=30).items():
        try:
            future.result()
            log.info("topic created", topic=name)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise


def message_headers(message: Any) -> dict[str, str]:
    """A message's headers as text (values are UTF-8 here)."""
    out: dict[str, str] = {}
    for key, value in message.headers() or []:
        out[key] = (
            value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value or "")
        )
    return out


def client_config(bootstrap_servers: str, **extra: object) -> dict[str, object]:
    return {"bootstrap.servers": bootstrap_servers, "client.id": "reintegration", **extra}
