"""Signed checkpoints of the transparency log, and verification of the whole log.

A checkpoint is a C2SP ``tlog-checkpoint`` signed note: the log's origin, the size of the
Merkle tree over the events' chain links (``infra/transparency_log.py``) and its root hash,
signed with Ed25519. The database row keeps beside it the position (notification id) and chain
link of its last leaf. Checkpoints are written to the database and to the Kafka topic
``<prefix>.audit-checkpoints``; witnesses cosign them (``infra/witness.py``), and their
cosignatures are kept in ``audit.cosignatures``.

Verification recomputes the chain and the tree from the stored events alone and compares them
with the stored links, every checkpoint (signature checked with the *published* public keys;
root hash recomputed), the witnesses' cosignatures and the links the relay carried to Kafka in
each message's ``chain-hash`` header; it reports the first position that disagrees.

Kept whole: checkpoints, cosignatures and the verification walk share one schema and one
report; the next split is the witnesses' part (cosignatures, WitnessPolicy) into its own
module.
"""

from __future__ import annotations

import base64
import heapq
import json
from collections.abc import Callable, Iterable, Iterator
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
from infra import merkle, transparency_log
from infra.chain import walk
from infra.config import AuditKey
from infra.signed_note import (
    ED25519,
    CheckpointBody,
    Note,
    NoteError,
    Signature,
    VerifierKey,
    sign,
    signed_by,
)

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
ALTER TABLE audit.access_log ADD COLUMN IF NOT EXISTS actor_districts text[] NOT NULL DEFAULT '{}',
    ADD COLUMN IF NOT EXISTS client_address text, ADD COLUMN IF NOT EXISTS user_agent text,
    ADD COLUMN IF NOT EXISTS search_terms jsonb;
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
-- Checkpoints as signed notes over the Merkle tree (those before have none: chain only).
ALTER TABLE audit.checkpoints ADD COLUMN IF NOT EXISTS tree_size bigint UNIQUE;
ALTER TABLE audit.checkpoints ADD COLUMN IF NOT EXISTS root_hash bytea;
ALTER TABLE audit.checkpoints ADD COLUMN IF NOT EXISTS note text;
CREATE TABLE IF NOT EXISTS audit.cosignatures (
    tree_size    bigint NOT NULL REFERENCES audit.checkpoints (tree_size),
    witness      text NOT NULL,
    key_hash     bytea NOT NULL,
    signed_at    bigint NOT NULL,
    signature    bytea NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tree_size, witness, key_hash, signed_at)
);
DROP TRIGGER IF EXISTS cosignatures_append_only ON audit.cosignatures;
CREATE TRIGGER cosignatures_append_only BEFORE UPDATE OR DELETE ON audit.cosignatures
    FOR EACH ROW EXECUTE FUNCTION audit.refuse_change();
"""


def prepare(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('audit-schema'))")
        conn.execute(AUDIT_DDL)
        conn.execute(transparency_log.TLOG_DDL)


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
    """A signed checkpoint: the note (``tree_size``, ``root_hash`` and the log's signature) and,
    beside it, the position and chain link of its last leaf. Checkpoints written before the
    Merkle tree have no note; their signature covers position, link and time
    (:func:`signed_bytes`)."""

    position: int
    chain_hash: bytes
    created_at: str
    key_id: str
    signature: bytes
    tree_size: int | None = None
    root_hash: bytes | None = None
    note: str | None = None

    @property
    def origin(self) -> str | None:
        return self.note.split("\n", 1)[0] if self.note else None

    def to_json(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "chain_hash": self.chain_hash.hex(),
            "created_at": self.created_at,
            "key_id": self.key_id,
            "signature": base64.b64encode(self.signature).decode(),
            "tree_size": self.tree_size,
            "root_hash": base64.b64encode(self.root_hash).decode() if self.root_hash else None,
            "note": self.note,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Checkpoint:
        root = data.get("root_hash")
        return cls(
            int(data["position"]),
            bytes.fromhex(data["chain_hash"]),
            data["created_at"],
            data["key_id"],
            base64.b64decode(data["signature"]),
            int(data["tree_size"]) if data.get("tree_size") is not None else None,
            base64.b64decode(root) if root else None,
            data.get("note"),
        )

    def signature_valid(self, public_key: bytes) -> bool:
        if self.note is None:
            try:
                Ed25519PublicKey.from_public_bytes(public_key).verify(
                    self.signature, signed_bytes(self.position, self.chain_hash, self.created_at)
                )
                return True
            except InvalidSignature:
                return False
        try:
            note = Note.parse(self.note)
            body = CheckpointBody.parse(note.text)
            if (body.size, body.root) != (self.tree_size, self.root_hash):
                return False
            return signed_by(note, VerifierKey(body.origin, ED25519, public_key)) is not None
        except NoteError:
            return False


def write_checkpoint(
    database_url: str,
    chain_table: str,
    key: Ed25519PrivateKey,
    producer: Any = None,
    topic: str | None = None,
    origin: str = "reintegration.local/audit-log",
) -> Checkpoint | None:
    """Grow the Merkle tree to the chain's head and, if it grew since the last checkpoint,
    sign a checkpoint of it and store it; then publish every stored checkpoint Kafka has not
    acknowledged yet (one that could not reach Kafka before is published now)."""
    checkpoint = None
    tree_size = transparency_log.integrate(database_url, chain_table)
    with psycopg.connect(database_url) as conn:
        last = conn.execute("SELECT coalesce(max(tree_size), 0) FROM audit.checkpoints").fetchone()
        if tree_size and last is not None and last[0] < tree_size:
            leaf = conn.execute(
                SQL(
                    "SELECT l.position, c.chain_hash FROM audit.tlog_leaves l "
                    "JOIN {} c ON c.notification_id = l.position WHERE l.leaf_index = %s"
                ).format(Identifier(chain_table)),
                (tree_size - 1,),
            ).fetchone()
            assert leaf is not None
            body = CheckpointBody(origin, tree_size, transparency_log.root(conn, tree_size))
            signature = sign(body.text, origin, key)
            checkpoint = Checkpoint(
                int(leaf[0]),
                bytes(leaf[1]),
                datetime.now(UTC).isoformat(),
                key_id(public_key_bytes(key)),
                signature.signature,
                tree_size,
                body.root,
                str(Note(body.text, (signature,))),
            )
            inserted = conn.execute(
                "INSERT INTO audit.checkpoints (position, chain_hash, created_at, key_id, "
                "signature, tree_size, root_hash, note) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT DO NOTHING",
                (
                    checkpoint.position,
                    checkpoint.chain_hash,
                    checkpoint.created_at,
                    checkpoint.key_id,
                    checkpoint.signature,
                    tree_size,
                    body.root,
                    checkpoint.note,
                ),
            ).rowcount
            if inserted:
                log.info(
                    "checkpoint signed",
                    tree_size=tree_size,
                    position=checkpoint.position,
                    key_id=checkpoint.key_id,
                )
            else:  # another process signed this size first
                checkpoint = None
    if producer is not None and topic:
        publish_checkpoints(database_url, producer, topic)
    return checkpoint


def publish_checkpoints(database_url: str, producer: Any, topic: str) -> int:
    """Publish the stored checkpoints Kafka has not acknowledged, in order; record each once
    acknowledged (``audit.checkpoint_publications``). Returns how many were published."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            f"SELECT {CHECKPOINT_COLUMNS} "
            "FROM audit.checkpoints c LEFT JOIN audit.checkpoint_publications p USING (position) "
            "WHERE p.position IS NULL ORDER BY c.position"
        ).fetchall()
        if not rows:
            return 0
        pending = [_checkpoint(r) for r in rows]
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


CHECKPOINT_COLUMNS = "c.position, c.chain_hash, c.created_at, c.key_id, c.signature, c.tree_size, c.root_hash, c.note"


def _checkpoint(r: Any) -> Checkpoint:
    return Checkpoint(
        r[0],
        bytes(r[1]),
        r[2].astimezone(UTC).isoformat(),
        r[3],
        bytes(r[4]),
        r[5],
        bytes(r[6]) if r[6] is not None else None,
        r[7],
    )


def stored_checkpoints(database_url: str) -> list[Checkpoint]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            f"SELECT {CHECKPOINT_COLUMNS} FROM audit.checkpoints c ORDER BY c.position"
        ).fetchall()
    return [_checkpoint(r) for r in rows]


def checkpoint_at(conn: psycopg.Connection[Any], tree_size: int | None = None) -> Checkpoint | None:
    """The checkpoint of ``tree_size`` leaves (the newest when None)."""
    where = "WHERE c.note IS NOT NULL" + (" AND c.tree_size = %s" if tree_size is not None else "")
    row = (
        transparency_log.tuples(conn)
        .execute(
            f"SELECT {CHECKPOINT_COLUMNS} FROM audit.checkpoints c {where} "
            "ORDER BY c.tree_size DESC LIMIT 1",
            (tree_size,) if tree_size is not None else (),
        )
        .fetchone()
    )
    return _checkpoint(row) if row else None


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
    origin: str | None = None,
    witnessing: WitnessPolicy | None = None,
) -> AuditReport:
    """Recompute the chain from the events and compare it with everything that attests to it.

    ``kafka_links`` are (notification id, carried link) in notification order (see
    ``in_notification_order``): they are compared as the walk reaches each position, so nothing
    is held per event and memory stays flat with the length of the log.

    With ``max_age_s``, the log must be vouched for: a validly signed checkpoint must exist,
    and when events follow the newest one, it must be no older than ``max_age_s`` (else the
    checkpoints were removed, or stopped being written).

    The Merkle tree is recomputed too, in O(log n) memory: each checkpoint's root hash must be
    that of the events before it. With ``witnessing``, a quorum of the named witnesses must
    have cosigned a checkpoint the log agrees with, recently enough when events follow it.
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
    sizes = {c.tree_size for c in all_checkpoints if c.tree_size}
    tree = merkle.CompactRange()
    roots_at: dict[int, tuple[int, bytes]] = {}  # tree size: (last position, root)
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
            tree.append(merkle.leaf_hash(recomputed))
            if tree.size in sizes:
                roots_at[tree.size] = (position, tree.root())
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
        elif origin and checkpoint.origin not in (None, origin):
            report.fail(
                position=checkpoint.position,
                problem=f"checkpoint of another log ({checkpoint.origin!r}, not {origin!r})",
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
        elif checkpoint.tree_size is not None and roots_at.get(checkpoint.tree_size) != (
            checkpoint.position,
            checkpoint.root_hash,
        ):
            report.fail(
                position=checkpoint.position,
                problem=f"the Merkle root of the first {checkpoint.tree_size} events differs "
                f"from the signed checkpoint ({source})",
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
    _check_stored_tree(database_url, report, vouched)
    witnessed = None
    if witnessing is not None and witnessing.keys:
        witnessed = witnessing.check(report, vouched, events, head)
    skipped = head - positions
    if skipped:
        report.note(
            problem=f"{skipped} positions skipped: notification ids increase but a rolled-back "
            "transaction consumes the ids it drew; not a deleted event: the chain links each "
            "committed event to the one before it, so a deletion breaks it at the next event, "
            "and the signed Merkle tree covers every committed event"
        )
    if not keys and all_checkpoints:
        report.note(problem="checkpoint signatures not checked: no public key configured")
    failures = [
        f["position"]
        for f in report.findings
        if f.get("severity") != "info" and f.get("position") is not None
    ]
    report.evidence = [
        f"the event store's events ({events_table}), every link recomputed from them",
        f"the stored hash chain ({chain_table}) and the Merkle tree recomputed over it",
        f"{len(checkpoints)} signed checkpoints in the database"
        + ("" if kafka_checkpoints is None else f", {len(kafka_checkpoints)} in Kafka"),
        "the chain links carried in Kafka's event messages"
        if kafka_links is not None
        else "Kafka: not configured, its copies not compared",
        "published keys: " + (", ".join(k.key_id for k in keys) or "none"),
    ]
    if witnessing is not None and witnessing.keys:
        report.evidence.append(
            f"cosignatures of {witnessing.quorum} of the witnesses "
            + ", ".join(k.name for k in witnessing.keys)
        )
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
        "tree size (events in the Merkle tree)": tree.size,
        "newest checkpoint tree size": max((c.tree_size or 0 for c in vouched), default=None),
        "witnessed tree size": "no witnesses configured"
        if witnessing is None or not witnessing.keys
        else witnessed,
    }
    return report


def _check_stored_tree(database_url: str, report: AuditReport, vouched: list[Checkpoint]) -> None:
    """That the tree proofs are served from gives the newest checkpoint's root (a tile changed
    in the database would make every proof through it fail for whoever checks it)."""
    newest = max((c for c in vouched if c.tree_size), key=lambda c: c.tree_size or 0, default=None)
    if newest is None or newest.tree_size is None:
        return
    with psycopg.connect(database_url) as conn:
        if transparency_log.size(conn) < newest.tree_size:
            stored = None
        else:
            try:
                stored = transparency_log.root(conn, newest.tree_size)
            except merkle.ProofError:
                stored = None
    if stored != newest.root_hash:
        report.fail(
            position=newest.position,
            problem=f"the stored Merkle tree does not give the root of checkpoint "
            f"{newest.tree_size}, so proofs served from it would not verify: "
            "`reintegration audit rebuild-tree` grows it again from the chain",
        )


@dataclass(frozen=True)
class WitnessPolicy:
    """Which witnesses must have cosigned (``keys``, at least ``quorum`` of them), and how old
    the newest witnessed checkpoint may be when events follow it; ``cosignatures`` are those
    kept per tree size."""

    keys: list[VerifierKey]
    quorum: int
    max_age_s: float
    cosignatures: dict[int, list[Signature]]
    first_event_after: Callable[[int], datetime | None] = lambda _position: None

    def check(
        self, report: AuditReport, vouched: list[Checkpoint], events: int, head: int
    ) -> int | None:
        """Report on the newest checkpoint a quorum cosigned; returns its tree size.

        A witness that cosigned tree size N has checked the log's consistency up to N, so it
        vouches for every checkpoint up to N: witnesses running out of step with the log's
        checkpoints (several per witness round) still make a quorum. The witnessed size is
        the ``quorum``-th largest of the witnesses' newest cosigned sizes; its time, the
        oldest of those witnesses' newest cosignatures."""
        by_size = {c.tree_size: c for c in vouched if c.note is not None and c.tree_size}
        newest: dict[str, tuple[int, int]] = {}  # witness: (size, time) of its newest
        for size, checkpoint in sorted(by_size.items()):
            assert checkpoint.note is not None
            carried = Note.parse(checkpoint.note).with_signatures(*self.cosignatures.get(size, []))
            for key in self.keys:
                for signature in carried.signatures:
                    one = Note(carried.text, (signature,))
                    try:
                        if signed_by(one, key) is None:
                            continue
                    except NoteError:
                        report.fail(
                            position=checkpoint.position,
                            problem=f"the cosignature of witness {key.name!r} on tree size "
                            f"{size} does not verify",
                        )
                        continue
                    held = newest.get(key.name, (0, 0))
                    newest[key.name] = (max(held[0], size), max(held[1], signature.timestamp))
        witnessed: tuple[Checkpoint, float] | None = None
        if len(newest) >= self.quorum:
            top = sorted(newest.values(), reverse=True)[: self.quorum]
            witnessed = (by_size[min(s for s, _ in top)], min(t for _, t in top))
        names = ", ".join(k.name for k in self.keys)
        if witnessed is None:
            if events:
                report.fail(
                    position=None,
                    problem=f"no checkpoint is cosigned by {self.quorum} of the witnesses "
                    f"({names}): the log cannot show that anyone outside saw it; are the "
                    "witnesses running (`reintegration witness`)?",
                )
            return None
        checkpoint, at = witnessed
        now = datetime.now(UTC)
        age = now.timestamp() - at
        limit = f"(AUDIT_WITNESS_MAX_AGE_S is {self.max_age_s:g})"
        if age > self.max_age_s:
            # Witnesses cosign the newest checkpoint every round, even when the log is idle: an
            # old quorum means they stopped, or were shown nothing since (the newest events
            # and checkpoints removed, or hidden from them).
            report.fail(
                position=checkpoint.position,
                problem=f"the newest checkpoint a quorum cosigned (tree size "
                f"{checkpoint.tree_size}) was cosigned {round(age)} s ago {limit}: the "
                "witnesses stopped, or the log showed them nothing newer",
            )
        for later in vouched:
            signed_at = datetime.fromisoformat(later.created_at)
            if (later.tree_size or 0) > (checkpoint.tree_size or 0) and (
                now - signed_at
            ).total_seconds() > self.max_age_s:
                report.fail(
                    position=later.position,
                    problem=f"the checkpoint of tree size {later.tree_size}, signed "
                    f"{later.created_at}, was never cosigned by a quorum {limit}: it was "
                    "kept from the witnesses",
                )
                break
        after = head - checkpoint.position
        first_after = self.first_event_after(checkpoint.position) if after > 0 else None
        if first_after is not None and (now - first_after).total_seconds() > self.max_age_s:
            report.fail(
                position=checkpoint.position + 1,
                problem=f"positions after {checkpoint.position} are not witnessed: the first "
                f"was recorded {first_after.isoformat()} {limit}",
            )
        elif after > 0:
            report.note(
                position=checkpoint.position + 1,
                problem=f"not yet witnessed: positions after {checkpoint.position} (the "
                f"witnessed tree has {checkpoint.tree_size} events)",
            )
        return checkpoint.tree_size


def first_event_after(database_url: str, events_table: str) -> Callable[[int], datetime | None]:
    """When the first event after a position was recorded (its own timestamp)."""

    def when(position: int) -> datetime | None:
        with psycopg.connect(database_url) as conn:
            row = conn.execute(
                SQL(
                    "SELECT convert_from(state, 'UTF8')::jsonb -> 'timestamp' ->> '_data_' "
                    "FROM {} WHERE notification_id > %s ORDER BY notification_id LIMIT 1"
                ).format(Identifier(events_table)),
                (position,),
            ).fetchone()
        if row is None or row[0] is None:
            return None
        return datetime.fromisoformat(row[0])

    return when


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
    return heapq.merge(*partitions)  # by notification id first: each pair has its own


# --- witnesses' cosignatures -------------------------------------------------------------------


COSIGNATURE_SPACING_S = 300


class CosignatureRefused(Exception):
    """A cosignature the log does not keep; ``status`` is the HTTP status that says why."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def store_cosignatures(
    conn: psycopg.Connection[Any], note_text: str, witnesses: list[VerifierKey]
) -> list[Signature]:
    """Keep the cosignatures by configured witnesses that a note carries, once each verifies
    over a checkpoint this log signed; returns those newly kept. Other signature lines (the
    log's own, unknown cosigners) are ignored, as C2SP signed notes require."""
    try:
        note = Note.parse(note_text)
        body = CheckpointBody.parse(note.text)
    except NoteError as exc:
        raise CosignatureRefused(400, str(exc)) from None
    checkpoint = checkpoint_at(conn, body.size)
    if checkpoint is None or checkpoint.note is None:
        raise CosignatureRefused(404, f"this log signed no checkpoint of tree size {body.size}")
    if Note.parse(checkpoint.note).text != note.text:
        raise CosignatureRefused(
            409, f"the note differs from this log's checkpoint of tree size {body.size}"
        )
    found: list[Signature] = []
    for witness in witnesses:
        try:
            signature = signed_by(note, witness)
        except NoteError as exc:
            raise CosignatureRefused(422, str(exc)) from None
        if signature is not None:
            if signature.timestamp > datetime.now(UTC).timestamp() + 300:
                raise CosignatureRefused(422, f"the cosignature of {witness.name!r} is dated ahead")
            found.append(signature)
    if not found:
        raise CosignatureRefused(
            403, "the note carries no cosignature by a witness this log is configured with"
        )
    with conn.transaction():
        # One row per witness per checkpoint per COSIGNATURE_SPACING_S at most: witnesses
        # cosign the same checkpoint every round while the log is idle, and only the newest
        # time matters (how recently a quorum saw it).
        cursor = transparency_log.tuples(conn)
        kept = []
        for s in found:
            cursor.execute(
                "INSERT INTO audit.cosignatures (tree_size, witness, key_hash, signed_at, "
                "signature) SELECT %s, %s, %s, %s, %s WHERE NOT EXISTS (SELECT FROM "
                "audit.cosignatures WHERE tree_size = %s AND witness = %s AND key_hash = %s "
                "AND signed_at > %s) ON CONFLICT DO NOTHING",
                (
                    body.size,
                    s.name,
                    s.key_hash,
                    s.timestamp,
                    s.signature,
                    body.size,
                    s.name,
                    s.key_hash,
                    s.timestamp - COSIGNATURE_SPACING_S,
                ),
            )
            if cursor.rowcount:
                kept.append(s)
    for s in kept:
        log.info("checkpoint cosigned", tree_size=body.size, witness=s.name)
    return kept


def stored_cosignatures(
    conn: psycopg.Connection[Any], tree_size: int | None = None
) -> dict[int, list[Signature]]:
    where = "" if tree_size is None else "WHERE tree_size = %s"
    rows = (
        transparency_log.tuples(conn)
        .execute(
            f"SELECT tree_size, witness, key_hash, signature FROM audit.cosignatures {where} "
            "ORDER BY tree_size, witness, signed_at",
            () if tree_size is None else (tree_size,),
        )
        .fetchall()
    )
    found: dict[int, list[Signature]] = {}
    for size, witness, hash_, signature in rows:
        found.setdefault(int(size), []).append(Signature(witness, bytes(hash_), bytes(signature)))
    return found


def cosigned_note(conn: psycopg.Connection[Any], checkpoint: Checkpoint) -> str:
    """The checkpoint's note with every cosignature kept for it (the latest per witness)."""
    assert checkpoint.note is not None and checkpoint.tree_size is not None
    latest: dict[tuple[str, bytes], Signature] = {}
    for s in stored_cosignatures(conn, checkpoint.tree_size).get(checkpoint.tree_size, []):
        latest[(s.name, s.key_hash)] = s  # in time order: the last is the newest
    return str(Note.parse(checkpoint.note).with_signatures(*latest.values()))
