"""The tamper evidence of the log, operated: the key that signs checkpoints, writing a signed
checkpoint of the chain's head (to the database and to Kafka), and verifying the whole chain
against the stored links, the checkpoints and the links carried in Kafka."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from application.reports import AuditReport
from infra import tamper_evidence
from infra.config import AuditKey, ConfigurationError, Settings
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
        in development. None in production without a key (checkpoints are then not written).
        Outside development the demo key is refused: its private half is public."""
        encoded = self.settings.audit_signing_key or (
            tamper_evidence.DEMO_SIGNING_KEY if self.settings.development else None
        )
        if encoded is None:
            return None
        key = tamper_evidence.signing_key(encoded)
        demo = tamper_evidence.demo_public_key()
        if not self.settings.development and tamper_evidence.public_key_bytes(key) == demo:
            raise ConfigurationError(
                "AUDIT_SIGNING_KEY is the published demo key, whose private half is in the "
                "repository: generate a key of your own (see the README, 'Keys')"
            )
        return key

    def public_keys(self) -> list[AuditKey]:
        """The keys checkpoints are verified with: AUDIT_PUBLIC_KEYS (several, for rotation).
        In development only, when none are configured, the signing key's own (the demo key by
        default). Outside development nothing is derived here and the demo key is refused."""
        configured = list(self.settings.audit_public_keys)
        if not self.settings.development:
            demo = tamper_evidence.demo_public_key()
            if any(k.public == demo for k in configured):
                raise ConfigurationError(
                    "AUDIT_PUBLIC_KEYS holds the published demo key, whose private half is in "
                    "the repository: anyone could sign a checkpoint it verifies"
                )
            return configured
        if configured:
            return configured
        key = self.signing_key()
        return [AuditKey(tamper_evidence.public_key_bytes(key))] if key is not None else []

    def prepare(self) -> None:
        """The audit tables, created or upgraded; nothing when the owner role keeps them
        (``DATABASE_SCHEMA_MANAGED=owner``)."""
        if self.settings.manages_schema:
            tamper_evidence.prepare(self.database_url)

    def write_checkpoint(self) -> Any:
        key = self.signing_key()
        if key is None:
            raise RuntimeError("AUDIT_SIGNING_KEY is not set: checkpoints cannot be signed")
        self.prepare()
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

    def verify(
        self, generated_by: str, public_key: bytes | None = None, *, require_keys: bool = True
    ) -> AuditReport:
        """Recompute the chain and compare it with the stored links, the checkpoints (database
        and Kafka) and the links carried in Kafka messages. ``public_key`` adds a key (the
        auditor's own copy of a published one). Raises :class:`ConfigurationError` without any
        key to check checkpoints with, unless ``require_keys`` is False (a case report: the
        chain is checked, the signatures are said not to be)."""
        keys = [AuditKey(public_key)] if public_key else []
        keys += self.public_keys()
        if not keys and require_keys:
            raise ConfigurationError(
                "no public key to verify checkpoints with: set AUDIT_PUBLIC_KEYS to the "
                "published key(s) (see the README, 'Keys'), or pass --public-key"
            )
        self.prepare()
        kafka_links = kafka_checkpoints = None
        if self.settings.kafka_bootstrap_servers:
            kafka_links, kafka_checkpoints = self._kafka_attestations()
        return tamper_evidence.verify(
            self.database_url,
            self.events_table,
            self.chain_table,
            keys,
            tamper_evidence.stored_checkpoints(self.database_url),
            kafka_links,
            kafka_checkpoints,
            generated_by,
            self.settings.audit_checkpoint_max_age_s if require_keys else None,
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
