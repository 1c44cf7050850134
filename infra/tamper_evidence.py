"""Signed checkpoints of the hash chain, and verification of the whole log.

A checkpoint states "the chain's link at position N is H", signed with Ed25519. Checkpoints are
written to the database and to the Kafka topic ``<prefix>.audit-checkpoints``. Verification
recomputes the chain from the stored events alone and compares it with the stored links, every
checkpoint (signature checked with the *published* public key) and the links the relay carried
to Kafka in each message's ``chain-hash`` header; it reports the first position that disagrees.
"""

from __future__ import annotations

import base64
import heapq
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
import structlog
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from psycopg.sql import SQL, Identifier

from application.reports import AuditReport
from infra.chain import walk
from infra.config import AuditKey

log = structlog.get_logger(__name__)

# Development and demo only: the README publishes its public key. Production sets AUDIT_SIGNING_KEY.
DEMO_SIGNING_KEY = "PZQcOhkt2ohks9RU7SKHE7fb77PHZjF+T51Oda5Wbk8="

AUDIT_DDL = """
CREATE SCHEMA IF NOT EXISTS audit;
CREATE TABLE IF NOT EXISTS audit.checkpoints (
    position    bigint PRIMARY KEY,
    chain_hash  bytea NOT NULL,
    created_at  timestamptz NOT NULL,
    key_id      text NOT NULL,
    signature   bytea NOT NULL
);
CREATE TABLE IF NOT EXISTS audit.access_log (
    id              bigserial PRIMARY KEY,
    at              timestamptz NOT NULL DEFAULT now(),
    actor_id        text NOT NULL,
    actor_role      text NOT NULL,
    action          text NOT NULL,
    resource        text NOT NULL,
    subject_ids     uuid[] NOT NULL,
    reason          text,
    correlation_id  text
);
CREATE INDEX IF NOT EXISTS access_log_subjects ON audit.access_log USING gin (subject_ids);
CREATE INDEX IF NOT EXISTS access_log_actor ON audit.access_log (actor_id, at);
CREATE OR REPLACE FUNCTION audit.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit.% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;
DROP TRIGGER IF EXISTS access_log_append_only ON audit.access_log;
CREATE TRIGGER access_log_append_only BEFORE UPDATE OR DELETE ON audit.access_log
    FOR EACH ROW EXECUTE FUNCTION audit.refuse_change();
DROP TRIGGER IF EXISTS access_log_no_truncate ON audit.access_log;
CREATE TRIGGER access_log_no_truncate BEFORE TRUNCATE ON audit.access_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit.refuse_change();
DO $$
BEGIN
    -- Which checkpoints Kafka acknowledged. Those stored before this table was are taken as
    -- published: they were, or their publication failed and was logged.
    IF to_regclass('audit.checkpoint_publications') IS NULL THEN
        CREATE TABLE audit.checkpoint_publications (
            position      bigint PRIMARY KEY REFERENCES audit.checkpoints (position),
            published_at  timestamptz NOT NULL DEFAULT now()
        );
        INSERT INTO audit.checkpoint_publications (position, published_at)
            SELECT position, created_at FROM audit.checkpoints;
    END IF;
END $$;
DROP TRIGGER IF EXISTS checkpoints_append_only ON audit.checkpoints;
CREATE TRIGGER checkpoints_append_only BEFORE UPDATE OR DELETE ON audit.checkpoints
    FOR EACH ROW EXECUTE FUNCTION audit.refuse_change();
"""


def prepare(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('audit-schema'))")
        conn.execute(AUDIT_DDL)


def demo_public_key() -> bytes:
    return public_key_bytes(signing_key(DEMO_SIGNING_KEY))


def signing_key(encoded: str) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(base64.b64decode(encoded))


def public_key_bytes(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(public_key: bytes) -> str:
    return AuditKey(public_key).key_id


def signed_bytes(position: int, chain_hash: bytes, created_at: str) -> bytes:
    return f"reintegration-checkpoint-v1|{position}|{chain_hash.hex()}|{created_at}".encode()


@dataclass(frozen=True)
class Checkpoint:
    position: int
    chain_hash: bytes
    created_at: str
    key_id: str
    signature: bytes

    def to_json(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "chain_hash": self.chain_hash.hex(),
            "created_at": self.created_at,
            "key_id": self.key_id,
            "signature": base64.b64encode(self.signature).decode(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Checkpoint:
        return cls(
            int(data["position"]),
            bytes.fromhex(data["chain_hash"]),
            data["created_at"],
            data["key_id"],
            base64.b64decode(data["signature"]),
        )

    def signature_valid(self, public_key: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(public_key).verify(
                self.signature, signed_bytes(self.position, self.chain_hash, self.created_at)
            )
            return True
        except InvalidSignature:
            return False


def write_checkpoint(
    database_url: str,
    chain_table: str,
    key: Ed25519PrivateKey,
    producer: Any = None,
    topic: str | None = None,
) -> Checkpoint | None:
    """Sign the chain's head if it moved since the last checkpoint and store it; then publish
    every stored checkpoint Kafka has not acknowledged yet (one that could not reach Kafka
    before is published now)."""
    checkpoint = None
    with psycopg.connect(database_url) as conn:
        head = conn.execute(
            SQL(
                "SELECT notification_id, chain_hash FROM {} ORDER BY notification_id DESC LIMIT 1"
            ).format(Identifier(chain_table))
        ).fetchone()
        last = conn.execute("SELECT max(position) FROM audit.checkpoints").fetchone()
        if head is not None and (last is None or last[0] is None or last[0] < head[0]):
            created_at = datetime.now(UTC).isoformat()
            public = public_key_bytes(key)
            checkpoint = Checkpoint(
                head[0],
                bytes(head[1]),
                created_at,
                key_id(public),
                key.sign(signed_bytes(head[0], bytes(head[1]), created_at)),
            )
            conn.execute(
                "INSERT INTO audit.checkpoints (position, chain_hash, created_at, key_id, signature) "
                "VALUES (%s, %s, %s, %s, %s)",
                (
                    checkpoint.position,
                    checkpoint.chain_hash,
                    created_at,
                    checkpoint.key_id,
                    checkpoint.signature,
                ),
            )
            log.info("checkpoint signed", position=checkpoint.position, key_id=checkpoint.key_id)
    if producer is not None and topic:
        publish_checkpoints(database_url, producer, topic)
    return checkpoint


def publish_checkpoints(database_url: str, producer: Any, topic: str) -> int:
    """Publish the stored checkpoints Kafka has not acknowledged, in order; record each once
    acknowledged (``audit.checkpoint_publications``). Returns how many were published."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT c.position, c.chain_hash, c.created_at, c.key_id, c.signature "
            "FROM audit.checkpoints c LEFT JOIN audit.checkpoint_publications p USING (position) "
            "WHERE p.position IS NULL ORDER BY c.position"
        ).fetchall()
        if not rows:
            return 0
        pending = [
            Checkpoint(r[0], bytes(r[1]), r[2].astimezone(UTC).isoformat(), r[3], bytes(r[4]))
            for r in rows
        ]
        acknowledged: list[int] = []

        def delivered(error: Any, message: Any) -> None:
            if error is None:
                acknowledged.append(int(message.key()))

        for checkpoint in pending:
            producer.produce(
                topic,
                key=str(checkpoint.position).encode(),
                value=json.dumps(checkpoint.to_json()).encode(),
                on_delivery=delivered,
            )
        producer.flush(30)
        if acknowledged:
            conn.execute(
                "INSERT INTO audit.checkpoint_publications (position) "
                "SELECT unnest(%s::bigint[]) ON CONFLICT DO NOTHING",
                (acknowledged,),
            )
    if len(acknowledged) < len(pending):
        from infra.resilience import KafkaUnavailable

        raise KafkaUnavailable(
            f"{len(pending) - len(acknowledged)} checkpoints not acknowledged by Kafka"
        )
    if len(pending) > 1:
        log.info("checkpoints published late", checkpoints=len(pending))
    return len(pending)


def stored_checkpoints(database_url: str) -> list[Checkpoint]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT position, chain_hash, created_at, key_id, signature FROM audit.checkpoints ORDER BY position"
        ).fetchall()
    return [
        Checkpoint(r[0], bytes(r[1]), r[2].astimezone(UTC).isoformat(), r[3], bytes(r[4]))
        for r in rows
    ]


def verify(
    database_url: str,
    events_table: str,
    chain_table: str,
    keys: list[AuditKey],
    checkpoints: list[Checkpoint],
    kafka_links: Iterable[tuple[int, bytes]] | None,
    kafka_checkpoints: list[Checkpoint] | None,
    generated_by: str,
    max_age_s: float | None = None,
) -> AuditReport:
    """Recompute the chain from the events and compare it with everything that attests to it.

    ``kafka_links`` are (notification id, carried link) in notification order (see
    ``in_notification_order``): they are compared as the walk reaches each position, so nothing
    is held per event and memory stays flat with the length of the log.

    With ``max_age_s``, the log must be vouched for: a validly signed checkpoint must exist,
    and when events follow the newest one, it must be no older than ``max_age_s`` (else the
    checkpoints were removed, or stopped being written).
    """
    report = AuditReport("chain verification", events_table, generated_by)
    db_positions = {c.position for c in checkpoints}
    all_checkpoints = list(checkpoints) + [
        c for c in (kafka_checkpoints or []) if c not in checkpoints
    ]
    carried = _Carried(iter(kafka_links or ()), report)
    wanted = {c.position for c in all_checkpoints}
    recomputed_at: dict[int, bytes] = {}
    vouched: list[Checkpoint] = []  # validly signed, and the log agrees with them
    events = 0
    positions = 0  # held by an event or a link
    head = 0
    chain_break: int | None = None
    with psycopg.connect(database_url) as conn:
        for position, recomputed, stored in walk(conn, events_table, chain_table):
            head = max(head, position)
            positions += 1
            links_in_kafka = carried.up_to(position)
            if recomputed is None:
                if links_in_kafka:
                    carried.missing(position)
                if chain_break is None:
                    chain_break = position
                    report.fail(
                        position=position, problem="event missing: the chain has a link for it"
                    )
                continue
            events += 1
            if position in wanted:
                recomputed_at[position] = recomputed
            if chain_break is None:
                if stored is None:
                    chain_break = position
                    report.fail(
                        position=position,
                        problem="event not in the chain (added outside the event store)",
                    )
                elif stored != recomputed:
                    chain_break = position
                    report.fail(
                        position=position,
                        problem="stored link differs: event altered, deleted or reordered at or before here",
                    )
            if any(link != recomputed for link in links_in_kafka):
                carried.differs(position)
    carried.up_to(None)  # whatever Kafka holds beyond the head of the log
    for checkpoint in sorted(all_checkpoints, key=lambda c: c.position):
        source = "database" if checkpoint in checkpoints else "kafka"
        signers = [k for k in keys if k.key_id == checkpoint.key_id]
        signed_at = datetime.fromisoformat(checkpoint.created_at)
        signed = False
        if not keys:  # the caller chose to check the chain only (its signatures: not checked)
            pass
        elif not signers:
            report.fail(
                position=checkpoint.position,
                problem=f"checkpoint signed by an unknown key {checkpoint.key_id} ({source})",
            )
        elif not any(k.valid_at(signed_at) for k in signers):
            report.fail(
                position=checkpoint.position,
                problem=f"checkpoint signed at {checkpoint.created_at}, outside the validity "
                f"of key {checkpoint.key_id} ({source})",
            )
        elif not checkpoint.signature_valid(signers[0].public):
            report.fail(
                position=checkpoint.position, problem=f"checkpoint signature invalid ({source})"
            )
        else:
            signed = True
        if keys and not signed:
            continue
        if checkpoint.position not in recomputed_at:
            report.fail(
                position=checkpoint.position, problem=f"checkpointed event missing ({source})"
            )
        elif recomputed_at[checkpoint.position] != checkpoint.chain_hash:
            report.fail(
                position=checkpoint.position,
                problem=f"differs from the signed checkpoint ({source})",
            )
        elif signed:
            vouched.append(checkpoint)
    if kafka_checkpoints is not None:
        in_kafka = {c.position for c in kafka_checkpoints}
        for checkpoint in checkpoints:
            if checkpoint.position not in in_kafka:
                report.note(position=checkpoint.position, problem="checkpoint not (yet) in Kafka")
        for checkpoint in kafka_checkpoints:
            if checkpoint.position not in db_positions:
                report.fail(
                    position=checkpoint.position,
                    problem="checkpoint in Kafka is missing from the database",
                )
    newest_age_s = _check_freshness(report, vouched, events, head, max_age_s)
    skipped = head - positions
    if skipped:
        report.note(
            problem=f"{skipped} positions skipped: notification ids increase but a rolled-back "
            "transaction consumes the ids it drew; not a deleted event: the chain links each "
            "committed event to the one before it, so a deletion breaks it at the next event "
            "(and the newest events are covered by the signed checkpoints)"
        )
    if not keys and all_checkpoints:
        report.note(problem="checkpoint signatures not checked: no public key configured")
    failures = [
        f["position"]
        for f in report.findings
        if f.get("severity") != "info" and f.get("position") is not None
    ]
    report.summary = {
        "events": events,
        "head position": head,
        "positions skipped (rolled back, not deleted)": skipped,
        "checkpoints verified": len(all_checkpoints),
        "checkpoints in Kafka": "not checked"
        if kafka_checkpoints is None
        else len(kafka_checkpoints),
        "links compared with Kafka": "not checked" if kafka_links is None else carried.count,
        "first broken position": min(failures) if failures else None,
        "public key ids": ", ".join(k.key_id for k in keys),
        "newest checkpoint age (s)": newest_age_s,
    }
    return report


def _check_freshness(
    report: AuditReport,
    vouched: list[Checkpoint],
    events: int,
    head: int,
    max_age_s: float | None,
) -> float | None:
    """That a signed checkpoint vouches for the log, and a recent one for its newest events:
    an insider who rewrites history and removes the checkpoints is caught here."""
    newest = max(vouched, key=lambda c: c.position, default=None)
    age = (
        None
        if newest is None
        else round((datetime.now(UTC) - datetime.fromisoformat(newest.created_at)).total_seconds())
    )
    if max_age_s is None or not events:
        return age
    if newest is None or age is None:
        report.fail(
            position=None,
            problem="no valid signed checkpoint vouches for the log: the checkpoints were "
            "removed, never written (is AUDIT_SIGNING_KEY set where the service runs? "
            "`reintegration audit checkpoint` signs one now) or signed by a key not published",
        )
        return None
    after = head - newest.position
    if after > 0 and age > max_age_s:
        report.fail(
            position=newest.position + 1,
            problem=f"positions after {newest.position} are vouched for by no checkpoint: the "
            f"newest valid one is {age} s old (AUDIT_CHECKPOINT_MAX_AGE_S is {max_age_s:g})",
        )
    elif after > 0:
        report.note(
            problem=f"positions after {newest.position} are not yet in a checkpoint (the "
            f"newest was signed {age} s ago)"
        )
    return age


class _Carried:
    """The links carried in Kafka, consumed in step with the walk over the log."""

    def __init__(self, links: Iterator[tuple[int, bytes]], report: AuditReport) -> None:
        self.links = links
        self.report = report
        self.pending: tuple[int, bytes] | None = next(links, None)
        self.count = 0
        self.last = 0
        self.reported: set[str] = set()

    def up_to(self, position: int | None) -> list[bytes]:
        """The links Kafka carries for ``position``; any for an earlier position that the log
        does not hold are reported (``None``: up to the end)."""
        here: list[bytes] = []
        while self.pending is not None and (position is None or self.pending[0] <= position):
            notification_id, link = self.pending
            self.count += 1
            if notification_id < self.last:
                self._fail(notification_id, "Kafka holds this link out of notification order")
            elif notification_id == position:
                here.append(link)
            elif notification_id != self.last:
                self.missing(notification_id)
            self.last = max(self.last, notification_id)
            self.pending = next(self.links, None)
        return here

    def missing(self, position: int) -> None:
        self._fail(position, "published to Kafka but missing from the event store")

    def differs(self, position: int) -> None:
        self._fail(position, "differs from the link carried in Kafka")

    def _fail(self, position: int, problem: str) -> None:
        if problem not in self.reported:  # the first of each kind; later ones follow from it
            self.reported.add(problem)
            self.report.fail(position=position, problem=problem)


def in_notification_order(
    partitions: Iterable[Iterable[tuple[int, bytes]]],
) -> Iterator[tuple[int, bytes]]:
    """Merge the links of several partitions, each in notification order (the relay publishes
    in that order), into one stream in notification order."""
    return heapq.merge(*partitions, key=lambda pair: pair[0])
