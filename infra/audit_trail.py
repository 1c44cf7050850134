"""The tamper evidence of the log, operated: the key that signs checkpoints, writing a signed
checkpoint of the chain's head (to the database and to Kafka), and verifying the whole chain
against the stored links, the checkpoints and the links carried in Kafka."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

from application.reports import AuditReport
from infra import tamper_evidence
from infra.config import Settings
from infra.contract import Topics
from infra.kafka import kafka_partitions, read_partitions


class AuditTrail:
    def __init__(
        self,
        settings: Settings,
        database_url: str,
        events_table: str,
        chain_table: str,
        topics: Topics,
    ) -> None:
        self.settings = settings
        self.database_url = database_url
        self.events_table = events_table
        self.chain_table = chain_table
        self.topics = topics

    def signing_key(self) -> Any:
        """The Ed25519 key that signs checkpoints: AUDIT_SIGNING_KEY, or the published demo key
        in development. None in production without a key (checkpoints are then not written)."""
        encoded = self.settings.audit_signing_key or (
            tamper_evidence.DEMO_SIGNING_KEY if self.settings.development else None
        )
        return tamper_evidence.signing_key(encoded) if encoded else None

    def public_key(self) -> bytes | None:
        """The key checkpoints are verified with: AUDIT_PUBLIC_KEY (the published one), else the
        signing key's own."""
        if self.settings.audit_public_key:
            return base64.b64decode(self.settings.audit_public_key)
        key = self.signing_key()
        if key is None:
            key = tamper_evidence.signing_key(tamper_evidence.DEMO_SIGNING_KEY)
        return tamper_evidence.public_key_bytes(key)

    def write_checkpoint(self) -> Any:
        key = self.signing_key()
        if key is None:
            raise RuntimeError("AUDIT_SIGNING_KEY is not set: checkpoints cannot be signed")
        tamper_evidence.prepare(self.database_url)
        producer = None
        if self.settings.kafka_bootstrap_servers:
            from confluent_kafka import Producer

            from infra.kafka import client_config

            producer = Producer(
                client_config(
                    self.settings.kafka_bootstrap_servers,
                    **{"enable.idempotence": True, "message.timeout.ms": 20000},
                )
            )
        return tamper_evidence.write_checkpoint(
            self.database_url, self.chain_table, key, producer, self.topics.audit_checkpoints
        )

    def verify(self, generated_by: str, public_key: bytes | None = None) -> AuditReport:
        """Recompute the chain and compare it with the stored links, the checkpoints (database
        and Kafka) and the links carried in Kafka messages."""
        tamper_evidence.prepare(self.database_url)
        kafka_links = kafka_checkpoints = None
        if self.settings.kafka_bootstrap_servers:
            kafka_links, kafka_checkpoints = self._kafka_attestations()
        return tamper_evidence.verify(
            self.database_url,
            self.events_table,
            self.chain_table,
            public_key or self.public_key() or b"",
            tamper_evidence.stored_checkpoints(self.database_url),
            kafka_links,
            kafka_checkpoints,
            generated_by,
        )

    def stored_checkpoints(self) -> list[Any]:
        return tamper_evidence.stored_checkpoints(self.database_url)

    def _kafka_attestations(self) -> tuple[Iterator[tuple[int, bytes]], list[Any]]:
        """The signed checkpoints published to Kafka, and the links the event messages carry,
        streamed in notification order: one reader per partition (each partition is in
        notification order), merged."""
        from infra.kafka import message_headers
        from infra.tamper_evidence import Checkpoint, in_notification_order

        bootstrap = self.settings.kafka_bootstrap_servers or ""
        checkpoints = [
            Checkpoint.from_json(json.loads(message.value() or b"{}"))
            for reader in read_partitions(
                bootstrap, kafka_partitions(bootstrap, [self.topics.audit_checkpoints])
            )
            for message in reader
        ]
        readers = read_partitions(bootstrap, kafka_partitions(bootstrap, self.topics.event_topics))

        def carried(messages: Iterator[Any]) -> Iterator[tuple[int, bytes]]:
            for message in messages:
                headers = message_headers(message)
                if "chain-hash" in headers:
                    yield int(headers["notification-id"]), bytes.fromhex(headers["chain-hash"])

        return in_notification_order([carried(r) for r in readers]), checkpoints
