"""The tamper evidence of the log, operated: the key that signs checkpoints, writing a signed
checkpoint of the chain's head (to the database and to Kafka), and verifying the whole chain
against the stored links, the checkpoints and the links carried in Kafka."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
import structlog
from psycopg.sql import SQL, Identifier

from application.reports import AuditReport
from infra import merkle, tamper_evidence, transparency_log
from infra.config import AuditKey, ConfigurationError, Settings
from infra.contract import Topics
from infra.kafka import kafka_partitions, read_partitions
from infra.kafka_links import (
    LINKS_IN_A_PROCESS_FROM,
    carried_links,
    links_read_in_another_process,
)
from infra.signed_note import ED25519, VerifierKey

log = structlog.get_logger(__name__)


class ProofUnavailable(Exception):
    """No proof can be given; ``status`` is the HTTP status that says why."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class InclusionProof:
    leaf: transparency_log.Leaf
    tree_size: int
    hashes: list[bytes]
    checkpoint: str | None  # the signed note of that tree size, when one was signed


class AuditTrail:
    def __init__(
        self,
        settings: Settings,
        database_url: str,
        events_table: str,
        chain_table: str,
        topics: Topics,
        connection: Callable[[], AbstractContextManager[Any]] | None = None,
        application: Any | None = None,
    ) -> None:
        self.settings = settings
        self.application = application  # whose snapshots a verification recomputes
        self.database_url = database_url
        self.events_table = events_table
        self.chain_table = chain_table
        self.topics = topics
        self._pooled = connection
        # From this many events on, a verification reads Kafka's links in a process of its own
        # (about a second to start; on a shorter log, reading them here is quicker).
        self.links_in_a_process_from = LINKS_IN_A_PROCESS_FROM

    @contextmanager
    def _connection(self) -> Iterator[Any]:
        if self._pooled is not None:
            with self._pooled() as conn:
                yield conn
        else:
            with psycopg.connect(self.database_url) as conn:
                yield conn

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
            from infra import timestamping

            tamper_evidence.prepare(self.database_url)
            timestamping.prepare(self.database_url)

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
        checkpoint = tamper_evidence.write_checkpoint(
            self.database_url,
            self.chain_table,
            key,
            producer,
            self.topics.audit_checkpoints,
            origin=self.settings.audit_log_origin,
        )
        self.timestamp_checkpoints()
        return checkpoint

    def timestamp_checkpoints(self, limit: int = 100) -> int:
        """Ask the timestamping authority (AUDIT_TSA_URL) for a token over every signed
        checkpoint that has none yet, oldest first: one missed while the authority was down
        is timestamped at a later round. Returns how many were stored."""
        from infra import timestamping

        settings = self.settings
        if not settings.audit_tsa_url or settings.audit_tsa_certificates is None:
            return 0
        with psycopg.connect(self.database_url) as conn:
            notes = [
                r[0]
                for r in conn.execute(
                    "SELECT c.note FROM audit.checkpoints c WHERE c.note IS NOT NULL AND NOT "
                    "EXISTS (SELECT FROM audit.checkpoint_timestamps t WHERE t.tree_size = "
                    "c.tree_size) ORDER BY c.tree_size LIMIT %s",
                    (limit,),
                )
            ]
        return timestamping.timestamp_pending(
            self.database_url,
            notes,
            settings.audit_tsa_url,
            settings.audit_tsa_timeout_s,
            timestamping.read_certificates(str(settings.audit_tsa_certificates)),
        )

    def verify(
        self,
        generated_by: str,
        public_key: bytes | None = None,
        *,
        require_keys: bool = True,
        snapshots: bool = True,
    ) -> AuditReport:
        """Recompute the chain and compare it with the stored links, the checkpoints (database
        and Kafka) and the links carried in Kafka messages. ``public_key`` adds a key (the
        auditor's own copy of a published one). Raises :class:`ConfigurationError` without any
        key to check checkpoints with, unless ``require_keys`` is False (a case report: the
        chain is checked, the signatures are said not to be). ``snapshots``: every stored snapshot
        is recomputed from its events too, and one that differs is a finding (ADR 17)."""
        keys = [AuditKey(public_key)] if public_key else []
        keys += self.public_keys()
        if not keys and require_keys:
            raise ConfigurationError(
                "no public key to verify checkpoints with: set AUDIT_PUBLIC_KEYS to the "
                "published key(s) (see the README, 'Keys'), or pass --public-key"
            )
        self.prepare()
        kafka_links = kafka_checkpoints = None
        unreadable: list[str] = []  # Kafka's messages whose link cannot be read
        if self.settings.kafka_bootstrap_servers:
            kafka_links, kafka_checkpoints = self._kafka_attestations(unreadable)
        try:
            report = tamper_evidence.verify(
                self.database_url,
                self.events_table,
                self.chain_table,
                keys,
                tamper_evidence.stored_checkpoints(self.database_url),
                kafka_links,
                kafka_checkpoints,
                generated_by,
                self.settings.audit_checkpoint_max_age_s if require_keys else None,
                origin=self.settings.audit_log_origin,
                witnessing=self.witness_policy() if require_keys else None,
            )
        finally:
            close = getattr(kafka_links, "close", None)
            if close is not None:  # a verification that failed stops the links' reader now
                close()
        if unreadable:
            report.fail(
                problem=f"{len(unreadable)} messages in Kafka carry a link whose position or "
                f"hash cannot be read (the first: {unreadable[0]})"
            )
        self._check_timestamps(report)
        if snapshots and self.application is not None:
            from infra.snapshots import check_snapshots

            check_snapshots(self.application, report)
        return report

    def _check_timestamps(self, report: AuditReport) -> None:
        """Every stored RFC 3161 token must verify over its checkpoint's note with the
        authority's certificates, and its time must not precede the checkpoint's signing."""
        from datetime import datetime, timedelta

        from infra import timestamping

        stored = timestamping.stored_timestamps(self.database_url)
        report.summary["checkpoints timestamped (RFC 3161)"] = len(stored)
        if not stored:
            return
        certificates_path = self.settings.audit_tsa_certificates
        if certificates_path is None:
            report.note(
                problem=f"{len(stored)} checkpoint timestamps not checked: set "
                "AUDIT_TSA_CERTIFICATES to the timestamping authority's certificates"
            )
            return
        certificates = timestamping.read_certificates(str(certificates_path))
        checkpoints = {
            (c.tree_size, timestamping.note_sha256(c.note)): c
            for c in tamper_evidence.stored_checkpoints(self.database_url)
            if c.note is not None
        }
        newest = None
        for (tree_size, digest), token in sorted(stored.items()):
            checkpoint = checkpoints.get((tree_size, digest))
            if checkpoint is None or checkpoint.note is None:
                report.fail(
                    position=None,
                    problem=f"a timestamp of tree size {tree_size} is over a note that is "
                    "not a stored checkpoint",
                )
                continue
            try:
                at = timestamping.verify_timestamp(
                    checkpoint.note.encode(), token.token, certificates
                )
            except timestamping.TimestampError as exc:
                report.fail(
                    position=checkpoint.position,
                    problem=f"the RFC 3161 timestamp of tree size {tree_size} does not "
                    f"verify: {exc}",
                )
                continue
            signed_at = datetime.fromisoformat(checkpoint.created_at)
            if at < signed_at - timedelta(minutes=5):
                report.fail(
                    position=checkpoint.position,
                    problem=f"the checkpoint of tree size {tree_size} claims to be signed at "
                    f"{checkpoint.created_at}, after its timestamp {at.isoformat()}",
                )
            newest = max(newest or at, at)
        if newest is not None:
            report.summary["newest timestamp (RFC 3161)"] = newest.isoformat()

    def witnesses(self) -> list[VerifierKey]:
        return [VerifierKey.parse(k) for k in self.settings.audit_witnesses]

    def witness_policy(self) -> tamper_evidence.WitnessPolicy:
        with self._connection() as conn:
            cosignatures = tamper_evidence.stored_cosignatures(conn)
        return tamper_evidence.WitnessPolicy(
            self.witnesses(),
            self.settings.audit_witness_quorum,
            self.settings.audit_witness_max_age_s,
            cosignatures,
            tamper_evidence.first_event_after(self.database_url, self.events_table),
        )

    def log_vkeys(self) -> list[str]:
        """The verifier keys (C2SP vkeys) of the log's signing keys, named by its origin."""
        return [
            str(VerifierKey(self.settings.audit_log_origin, ED25519, key.public))
            for key in self.public_keys()
        ]

    def checkpoint_note(self, tree_size: int | None = None) -> str | None:
        """A checkpoint as C2SP signed note text, with the cosignatures kept for it (the newest
        checkpoint when ``tree_size`` is None); None when there is none."""
        with self._connection() as conn:
            checkpoint = tamper_evidence.checkpoint_at(conn, tree_size)
            return None if checkpoint is None else tamper_evidence.cosigned_note(conn, checkpoint)

    def inclusion(self, position: int, tree_size: int | None) -> InclusionProof:
        """The proof that the event at ``position`` is in the tree of ``tree_size`` leaves (the
        newest checkpoint's by default). Raises :class:`ProofUnavailable`."""
        with self._connection() as conn:
            checkpoint = tamper_evidence.checkpoint_at(conn, tree_size)
            size = tree_size if tree_size is not None else (checkpoint and checkpoint.tree_size)
            if not size:
                raise ProofUnavailable(404, "no checkpoint has been signed yet")
            if size > transparency_log.size(conn):
                raise ProofUnavailable(404, f"the tree has not grown to {size} leaves yet")
            leaf = transparency_log.leaf_at(conn, position, self.chain_table)
            if leaf is None:
                raise ProofUnavailable(
                    404,
                    f"no event at position {position} in the tree (yet): positions skip "
                    "where a transaction rolled back, and new events join at the next checkpoint",
                )
            if leaf.index >= size:
                raise ProofUnavailable(
                    409,
                    f"position {position} is leaf {leaf.index}, after a tree of {size} "
                    "leaves: ask with a later tree_size",
                )
            hashes = transparency_log.inclusion_proof(conn, leaf.index, size)
            note = tamper_evidence.cosigned_note(conn, checkpoint) if checkpoint else None
        return InclusionProof(leaf, size, hashes, note)

    def consistency(self, old: int, new: int) -> list[bytes]:
        with self._connection() as conn:
            if new > transparency_log.size(conn):
                raise ProofUnavailable(404, f"the tree has not grown to {new} leaves yet")
            try:
                return transparency_log.consistency_proof(conn, old, new)
            except merkle.ProofError as exc:
                raise ProofUnavailable(400, str(exc)) from None

    def receive_cosignature(self, note: str) -> list[str]:
        """Keep a witness's cosignature of one of this log's checkpoints, and publish the
        cosigned note to Kafka; returns the witnesses whose cosignatures were new."""
        with self._connection() as conn:
            kept = tamper_evidence.store_cosignatures(conn, note, self.witnesses())
            if kept and self.settings.kafka_bootstrap_servers:
                size = int(note.split("\n", 2)[1])
                checkpoint = tamper_evidence.checkpoint_at(conn, size)
                assert checkpoint is not None  # the cosignatures were kept against it
                # what the log holds (its own signature and the cosignatures it verified),
                # never the submitted text with whatever other lines it carried
                self._publish_cosigned(size, tamper_evidence.cosigned_note(conn, checkpoint))
        return [s.name for s in kept]

    def rebuild_tree(self) -> int:
        self.prepare()
        return transparency_log.rebuild(self.database_url, self.chain_table)

    def _publish_cosigned(self, size: int, note: str) -> None:
        from confluent_kafka import Producer

        from infra.kafka import client_config

        producer = Producer(
            client_config(
                self.settings.kafka_bootstrap_servers or "", **{"message.timeout.ms": 10000}
            )
        )
        producer.produce(
            self.topics.audit_cosignatures, key=str(size).encode(), value=note.encode()
        )
        if producer.flush(10):
            log.warning("cosignature kept but not yet published to Kafka", tree_size=size)

    def stored_checkpoints(self) -> list[Any]:
        return tamper_evidence.stored_checkpoints(self.database_url)

    def _kafka_attestations(
        self, unreadable: list[str]
    ) -> tuple[Iterator[tuple[int, bytes]], list[Any]]:
        """The signed checkpoints published to Kafka, and the links the event messages carry,
        streamed in notification order (:func:`carried_links`); on a long log, by a process of
        their own (:func:`links_read_in_another_process`)."""
        from infra.tamper_evidence import Checkpoint

        bootstrap = self.settings.kafka_bootstrap_servers or ""
        checkpoints = [
            Checkpoint.from_json(json.loads(message.value() or b"{}"))
            for reader in read_partitions(
                bootstrap, kafka_partitions(bootstrap, [self.topics.audit_checkpoints])
            )
            for message in reader
        ]
        topics = self.topics.event_topics
        with psycopg.connect(self.database_url) as conn:
            row = conn.execute(
                SQL("SELECT coalesce(max(notification_id), 0) FROM {}").format(
                    Identifier(self.events_table)
                )
            ).fetchone()
        if row is not None and row[0] >= self.links_in_a_process_from:
            settings = self.settings
            return (
                links_read_in_another_process(
                    bootstrap, topics, unreadable, settings.log_format, settings.log_level
                ),
                checkpoints,
            )
        return carried_links(bootstrap, topics, unreadable), checkpoints
