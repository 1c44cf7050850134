"""The one consumer skeleton every projection runs in.

poll -> check the message's error -> decode -> dispatch to the projection's apply function ->
write -> store the consumed position in the same Postgres transaction as the rows. A crash
therefore never applies an event twice or skips one: the rows and the position commit
together, and on restart the consumer seeks to the stored position.

A message that cannot be decoded or applied does not stop the projection: it is recorded in
the projection's ``dead_letters`` table in the same transaction (and published to the
dead-letter topic when Kafka is configured), counted, logged, and the position moves past it.
Its reason names none of its values. Dead letters are sequenced per message key (the case):
the later messages of a key with a pending dead letter are parked behind it, in the same
transaction, until an operator replays or discards it.

Each projection lives in its own Postgres schema (``projection_<name>``) holding its tables,
its ``projection_offsets``, its ``dead_letters`` and ``parked_events``, and a
``projection_meta`` row whose generation changes when a rebuild swaps a new schema in. A
running projector checks the generation in every batch and, when it changed, re-seeks to the
new schema's positions.

Two sources feed the same code: Kafka topics, and in embedded mode the event store's log.

Why one module of about 650 lines: it is the one skeleton; the two sources' loops are short
and share every step of a batch (apply, dead-letter, position, generation), which is what must
never diverge between them.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
import structlog
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition
from psycopg import Cursor, sql
from psycopg.rows import dict_row

import schemas
from projections import metrics
from projections.failures import Failure, describe

log = structlog.get_logger(__name__)

Handler = Callable[[Cursor[Any], dict[str, Any]], None]
BatchHandler = Callable[[Cursor[Any], list[dict[str, Any]]], None]
"""Applies consecutive events of one type at once, with the same result as their handler
applied to each in turn (the same guards, the same order)."""
EVENT_STORE_SOURCE = "$event-store"

RUNNER_DDL = """
CREATE TABLE IF NOT EXISTS projection_offsets (
    source       text NOT NULL,
    partition    int NOT NULL,
    next_offset  bigint NOT NULL,
    PRIMARY KEY (source, partition)
);
CREATE TABLE IF NOT EXISTS projection_meta (
    singleton    boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    generation   uuid NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS dead_letters (
    id             bigserial PRIMARY KEY,
    source         text NOT NULL,
    partition      int NOT NULL,
    "offset"       bigint NOT NULL,
    key            bytea,
    value          bytea,
    headers        jsonb NOT NULL,
    error_class    text NOT NULL,
    error_message  text NOT NULL,
    failed_at      timestamptz NOT NULL DEFAULT now(),
    replayed_at    timestamptz,
    replayed_by    text,
    UNIQUE (source, partition, "offset")
);
-- Sequencing per key (idempotent migration of existing schemas; existing rows stay as they are).
ALTER TABLE dead_letters ADD COLUMN IF NOT EXISTS discarded_at timestamptz;
ALTER TABLE dead_letters ADD COLUMN IF NOT EXISTS discarded_by text;
ALTER TABLE dead_letters ADD COLUMN IF NOT EXISTS discard_reason text;
ALTER TABLE dead_letters ADD COLUMN IF NOT EXISTS replay_reason text;
CREATE INDEX IF NOT EXISTS dead_letters_pending_key ON dead_letters (key, id)
    WHERE replayed_at IS NULL AND discarded_at IS NULL;
-- Later events of a key with a pending dead letter wait here, in order, behind it.
CREATE TABLE IF NOT EXISTS parked_events (
    id              bigserial PRIMARY KEY,
    key             bytea NOT NULL,
    dead_letter_id  bigint NOT NULL REFERENCES dead_letters (id),
    source          text NOT NULL,
    partition       int NOT NULL,
    "offset"        bigint NOT NULL,
    value           bytea,
    headers         jsonb NOT NULL,
    parked_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (source, partition, "offset")
);
CREATE INDEX IF NOT EXISTS parked_events_key ON parked_events (key, id);
CREATE INDEX IF NOT EXISTS parked_events_dead_letter ON parked_events (dead_letter_id);
"""
INSERT_GENERATION = "INSERT INTO projection_meta (generation) VALUES (%s) ON CONFLICT DO NOTHING"
SELECT_GENERATION = "SELECT generation FROM projection_meta FOR SHARE"
SELECT_OFFSETS = "SELECT source, partition, next_offset FROM projection_offsets"
ENSURE_OFFSET = """
INSERT INTO projection_offsets (source, partition, next_offset) VALUES (%s, %s, 0)
ON CONFLICT (source, partition) DO NOTHING
"""
SELECT_OFFSET_FOR_UPDATE = (
    "SELECT next_offset FROM projection_offsets WHERE source = %s AND partition = %s FOR UPDATE"
)
STORE_OFFSET = "UPDATE projection_offsets SET next_offset = %s WHERE source = %s AND partition = %s"
ADVANCE_OFFSET = """
INSERT INTO projection_offsets (source, partition, next_offset) VALUES (%s, %s, %s)
ON CONFLICT (source, partition) DO UPDATE
SET next_offset = greatest(projection_offsets.next_offset, excluded.next_offset)
"""
DEAD_LETTER_PENDING = "replayed_at IS NULL AND discarded_at IS NULL"
# A position failing again (only after its offsets were rewound) is pending again: it is not
# applied, and the events of its key behind it must wait.
INSERT_DEAD_LETTER = """
INSERT INTO dead_letters (source, partition, "offset", key, value, headers, error_class, error_message)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (source, partition, "offset") DO UPDATE SET
    error_class = excluded.error_class, error_message = excluded.error_message, failed_at = now(),
    replayed_at = NULL, replayed_by = NULL, discarded_at = NULL, discarded_by = NULL,
    discard_reason = NULL
RETURNING id
"""
# The pending dead letters of the batch's keys, share-locked: a replay or discard of one of them
# (which locks it for update) either finishes first, and this no longer sees it, or waits for
# this batch, and then finds the events it parks.
SELECT_HEADS = f"""
SELECT key, id FROM dead_letters WHERE key = ANY(%s) AND {DEAD_LETTER_PENDING}
ORDER BY id FOR SHARE
"""
INSERT_PARKED = """
INSERT INTO parked_events (key, dead_letter_id, source, partition, "offset", value, headers)
VALUES (%s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (source, partition, "offset") DO NOTHING
"""
COUNT_PARKED = "SELECT count(*) AS parked FROM parked_events"


@dataclass(frozen=True)
class Projection:
    name: str
    ddl: str
    handlers: Mapping[str, Handler]
    batch_handlers: Mapping[str, BatchHandler] = field(default_factory=dict)

    @property
    def schema(self) -> str:
        return f"projection_{self.name}"


def connect(database_url: str, schema: str) -> psycopg.Connection[dict[str, Any]]:
    conn = psycopg.connect(database_url, row_factory=dict_row)
    conn.execute(sql.SQL("SET search_path TO {}, public").format(sql.Identifier(schema)))
    conn.commit()
    return conn


def prepare(database_url: str, projection: Projection, schema: str | None = None) -> None:
    """Create the projection's schema and tables if missing (safe to run concurrently).

    Not run by a process of the application role, which may change rows but no table: the
    owner role creates and upgrades the schemas (``reintegration db create-roles``)."""
    schema = schema or projection.schema
    with psycopg.connect(database_url) as conn:
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (schema,))
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(schema)))
        conn.execute(projection.ddl)
        conn.execute(RUNNER_DDL)
        conn.execute(INSERT_GENERATION, (uuid.uuid4(),))


def stored_offsets(conn: psycopg.Connection[Any]) -> dict[tuple[str, int], int]:
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(SELECT_OFFSETS)
        return {(r["source"], r["partition"]): r["next_offset"] for r in cur.fetchall()}


def current_generation(conn: psycopg.Connection[Any]) -> Any:
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(SELECT_GENERATION)
        row = cur.fetchone()
        return row["generation"] if row else None


class Delivery:
    """One message to apply, as it arrived: where from, and its raw bytes.

    Given the Kafka message instead of ``headers``, it decodes the message's headers only when
    they are asked for: only a dead letter or a parked event keeps them, and decoding every
    message's was a tenth of a households rebuild's Python."""

    __slots__ = ("_headers", "_message", "key", "offset", "partition", "source", "value")

    def __init__(
        self,
        source: str,
        partition: int,
        offset: int,
        value: bytes | None,
        key: bytes | None = None,
        headers: dict[str, str] | None = None,
        *,
        message: Any = None,
    ) -> None:
        self.source = source
        self.partition = partition
        self.offset = offset
        self.value = value
        self.key = key
        self._headers = headers
        self._message = message

    @property
    def headers(self) -> dict[str, str]:
        if self._headers is None:
            raw = self._message.headers() if self._message is not None else None
            self._headers = {k: (v or b"").decode("utf-8", "replace") for k, v in raw or ()}
            self._message = None
        return self._headers

    def _fields(self) -> tuple[Any, ...]:
        return (self.source, self.partition, self.offset, self.value, self.key, self.headers)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Delivery) and self._fields() == other._fields()

    __hash__ = None  # type: ignore[assignment]  # mutable, as the dataclass it was

    def __repr__(self) -> str:
        return f"Delivery({self.source!r}, {self.partition}, {self.offset})"


@dataclass
class DeadLetter:
    """A message that could not be applied; ``error_message`` names none of its values."""

    delivery: Delivery
    error_class: str
    error_message: str


class GenerationChanged(Exception):
    """A rebuild swapped a new schema in: positions must be read again."""


@dataclass
class BatchResult:
    applied: int = 0
    dead: list[DeadLetter] = field(default_factory=list)
    parked: list[Delivery] = field(default_factory=list)


def advance_to_end(
    conn: psycopg.Connection[Any], ends: Mapping[tuple[str, int], int], expected_generation: Any
) -> None:
    """Record that partitions were read to their end: offsets below hold only transaction
    markers now, so the stored position (and the lag derived from it) reaches the end."""
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(SELECT_GENERATION)
        row = cur.fetchone()
        if row is None or row["generation"] != expected_generation:
            raise GenerationChanged
        for (source, partition), end in ends.items():
            cur.execute(ADVANCE_OFFSET, (source, partition, end))


def _decode(projection: Projection, delivery: Delivery) -> tuple[str, dict[str, Any]] | None:
    """The schema name and record of a message of a type the projection follows; None for a
    known type it does not follow (not even decoded). Raises for a message that does not
    decode. Uuids stay text: the handlers hand them to PostgreSQL as text."""
    value = delivery.value or b""
    name = schemas.schema_name(value)
    if name is not None and name not in projection.handlers:
        return None
    schema, record = schemas.decode(value, uuids_as_text=True)
    return schema.name, record


def apply_one(cur: Cursor[Any], projection: Projection, delivery: Delivery) -> None:
    found = _decode(projection, delivery)
    if found is not None:
        name, record = found
        handler = projection.handlers.get(name)
        if handler is not None:
            handler(cur, record)


def apply_all(cur: Cursor[Any], projection: Projection, deliveries: Sequence[Delivery]) -> None:
    """The deliveries, with the rows :func:`apply_one` on each in order leaves; events of a type
    with a batch handler are held in runs and applied a run at a time (a statement per run).

    A batch handler writes only the rows of its events' own aggregates, which no handler of
    another aggregate's event reads, so events of different aggregates commute: only each
    aggregate's own order must hold. An event joins the newest run of its type unless a later
    run holds its aggregate; any other event of an aggregate held in a run first applies every
    run, in the order they were begun."""
    batched = projection.batch_handlers
    runs: list[_Run] = []
    for delivery in deliveries:
        found = _decode(projection, delivery)
        if found is None:
            continue  # a known type this view does not follow
        name, record = found
        aggregate = record.get("aggregate_id")
        if name in batched and aggregate is not None:
            into = None
            for run in reversed(runs):
                if run.name == name:
                    into = run
                    break
                if aggregate in run.aggregates:
                    break  # that aggregate's later event must stay after this one
            if into is None:
                into = _Run(name)
                runs.append(into)
            into.events.append(record)
            into.aggregates.add(aggregate)
            continue
        if runs and (aggregate is None or any(aggregate in run.aggregates for run in runs)):
            _apply_runs(cur, batched, runs)
        handler = projection.handlers.get(name)
        if handler is not None:
            handler(cur, record)
    _apply_runs(cur, batched, runs)


@dataclass
class _Run:
    name: str
    events: list[dict[str, Any]] = field(default_factory=list)
    aggregates: set[Any] = field(default_factory=set)


def _apply_runs(cur: Cursor[Any], batched: Mapping[str, BatchHandler], runs: list[_Run]) -> None:
    for run in runs:
        batched[run.name](cur, run.events)
    runs.clear()


def apply_batch(
    conn: psycopg.Connection[Any],
    projection: Projection,
    deliveries: Sequence[Delivery],
    *,
    expected_generation: Any = None,
    publish_dead_letters: Callable[[list[DeadLetter]], None] | None = None,
) -> BatchResult:
    """Apply deliveries in one transaction with their positions; skip any already applied.

    Dead letters are sequenced per key (the case): a message whose key has a pending dead
    letter, or gets one earlier in this batch, is parked behind it in ``parked_events``: neither
    applied nor skipped, and released in order when the dead letter is replayed or discarded
    (:mod:`projections.admin`). The position moves on either way, so other keys are not held up.

    Fast path: the batch's messages that are not parked, in one savepoint, in pipeline mode: the
    handlers' statements go to the server without waiting for each answer (a handler that needs
    one fetches it, which waits for that statement only). If anything fails, the batch is applied
    again one message per savepoint, without the pipeline, and each failing message becomes a
    dead letter, with a reason that names none of its values (:mod:`projections.failures`).
    """
    started = time.perf_counter()
    result = BatchResult()
    with conn.transaction(), conn.cursor() as cur:
        if expected_generation is not None:
            cur.execute(SELECT_GENERATION)
            row = cur.fetchone()
            if row is None or row["generation"] != expected_generation:
                raise GenerationChanged
        positions: dict[tuple[str, int], int] = {}
        for key in sorted({(d.source, d.partition) for d in deliveries}):
            cur.execute(ENSURE_OFFSET, key)
            cur.execute(SELECT_OFFSET_FOR_UPDATE, key)
            row = cur.fetchone()
            assert row is not None  # inserted just above
            positions[key] = row["next_offset"]
        pending = [d for d in deliveries if d.offset >= positions[(d.source, d.partition)]]
        heads = pending_heads(cur, pending)
        failures: dict[int, Failure] = {}
        try:
            with conn.pipeline(), conn.transaction():
                apply_all(cur, projection, [d for d in pending if d.key not in heads])
        except Exception:
            held = set(heads)
            for i, d in enumerate(pending):
                if d.key in held:
                    continue
                try:
                    with conn.transaction():
                        apply_one(cur, projection, d)
                except Exception as exc:
                    failures[i] = describe(exc)
                    if d.key is not None:
                        held.add(d.key)
        for i, d in enumerate(pending):  # in order: a dead letter before what it holds back
            if d.key is not None and d.key in heads:
                park(cur, d, heads[d.key])
                result.parked.append(d)
            elif i in failures:
                dead = DeadLetter(d, failures[i].error_class, failures[i].reason)
                dead_letter_id = record_dead_letter(cur, dead)
                if d.key is not None:
                    heads[d.key] = dead_letter_id
                result.dead.append(dead)
        for d in pending:
            positions[(d.source, d.partition)] = d.offset + 1
        result.applied = len(pending) - len(result.dead) - len(result.parked)
        for (source, partition), next_offset in positions.items():
            cur.execute(STORE_OFFSET, (next_offset, source, partition))
        cur.execute(COUNT_PARKED)
        row = cur.fetchone()
        parked_now = row["parked"] if row else 0
        if result.dead and publish_dead_letters is not None:
            publish_dead_letters(result.dead)  # before the commit: at least once, never lost
    for dead in result.dead:
        metrics.DEAD_LETTERS.labels(projection.name, dead.error_class).inc()
        log_dead_letter(projection, dead)
    for d in result.parked:
        log.warning(
            "event parked behind a dead letter",
            projection=projection.name,
            source=d.source,
            partition=d.partition,
            offset=d.offset,
        )
    metrics.EVENTS_PARKED.labels(projection.name).inc(len(result.parked))
    metrics.PARKED_EVENTS.labels(projection.name).set(parked_now)
    metrics.PROJECTION_APPLIED.labels(projection.name).inc(result.applied)
    metrics.PROJECTION_APPLY_SECONDS.labels(projection.name).observe(time.perf_counter() - started)
    return result


def pending_heads(cur: Cursor[Any], deliveries: Sequence[Delivery]) -> dict[bytes, int]:
    """The first pending dead letter of each of the deliveries' keys (share-locked)."""
    keys = sorted({d.key for d in deliveries if d.key is not None})
    if not keys:
        return {}
    cur.execute(SELECT_HEADS, (keys,))
    heads: dict[bytes, int] = {}
    for row in cur.fetchall():
        heads.setdefault(bytes(row["key"]), row["id"])
    return heads


def park(cur: Cursor[Any], delivery: Delivery, dead_letter_id: int) -> None:
    d = delivery
    cur.execute(
        INSERT_PARKED,
        (d.key, dead_letter_id, d.source, d.partition, d.offset, d.value, json.dumps(d.headers)),
    )


def record_dead_letter(cur: Cursor[Any], dead: DeadLetter) -> int:
    """Store a dead letter; its id (the head its key's later events are parked behind)."""
    d = dead.delivery
    cur.execute(
        INSERT_DEAD_LETTER,
        (
            d.source,
            d.partition,
            d.offset,
            d.key,
            d.value,
            json.dumps(d.headers),
            dead.error_class,
            dead.error_message,
        ),
    )
    row = cur.fetchone()
    assert row is not None  # inserted or updated: RETURNING gives the row either way
    return int(row["id"])


def log_dead_letter(projection: Projection, dead: DeadLetter) -> None:
    log.error(
        "dead letter",
        projection=projection.name,
        source=dead.delivery.source,
        partition=dead.delivery.partition,
        offset=dead.delivery.offset,
        error_class=dead.error_class,
        error=dead.error_message,
    )


class KafkaProjector:
    """Runs a projection as a member of a Kafka consumer group."""

    def __init__(
        self,
        projection: Projection,
        *,
        database_url: str,
        bootstrap_servers: str,
        topics: Sequence[str],
        group_id: str,
        schema: str | None = None,
        batch_size: int = 500,
        group_instance_id: str | None = None,
        dead_letter_topic: str | None = None,
        consumer_config: Mapping[str, object] | None = None,
        producer_config: Mapping[str, object] | None = None,
        watch: Any = None,
        prepare_schema: bool = True,
    ) -> None:
        """``consumer_config`` and ``producer_config`` add to the clients' settings (the
        message limits of the contract, the group's timeouts, logging). ``watch`` follows the
        cluster's availability (``infra.resilience.KafkaWatch``: ``error_cb``, ``check``).
        ``prepare_schema`` False: the schema's owner keeps its tables (see :func:`prepare`)."""
        self.projection = projection
        self.consumer_config = dict(consumer_config or {})
        self.producer_config = dict(producer_config or {})
        self.database_url = database_url
        self.bootstrap_servers = bootstrap_servers
        self.topics = list(topics)
        self.group_id = group_id
        self.schema = schema or projection.schema
        self.batch_size = batch_size
        self.group_instance_id = group_instance_id
        self.dead_letter_topic = dead_letter_topic
        self.watch = watch
        self.prepare_schema = prepare_schema
        self._unassigned_since: float | None = None
        self._conn: psycopg.Connection[Any] | None = None
        self._generation: Any = None
        self._producer: Any = None
        self.caught_up = threading.Event()

    def run(self, stop: threading.Event, *, until_caught_up: bool = False) -> None:
        """Consume until ``stop`` is set (or, with ``until_caught_up``, until every assigned
        partition has reached its end once)."""
        if self.prepare_schema:
            prepare(self.database_url, self.projection, self.schema)
        config: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap_servers,
            "group.id": self.group_id,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            "enable.partition.eof": True,
            "client.id": f"projection-{self.projection.name}",
            # Prefetch at most 16 MB (the client's default is 64 MB per consumer, and a
            # process runs one consumer per projection): a couple of seconds of a rebuild.
            "queued.max.messages.kbytes": 16384,
            **self.consumer_config,
        }
        if self.group_instance_id:
            # Static membership: a restarted member takes its partitions back at once
            # instead of waiting for the dead one's session to time out.
            config["group.instance.id"] = f"{self.group_instance_id}.{self.projection.name}"
        if self.watch is not None:
            config["error_cb"] = self.watch.error_cb
        consumer = Consumer(config)
        at_end: set[tuple[str, int]] = set()
        with connect(self.database_url, self.schema) as conn:
            self._conn = conn
            self._generation = current_generation(conn)
            consumer.subscribe(
                self.topics,
                on_assign=self._on_assign,
                on_revoke=self._on_revoke,
                on_lost=self._on_revoke,
            )
            log.info("projection started", projection=self.projection.name, source="kafka")
            self._unassigned_since = time.monotonic()
            try:
                while not stop.is_set():
                    # Wait for the first message only, then take what has already arrived:
                    # consume(n, timeout) alone would hold every batch for the whole timeout
                    # under light load (half a second added to every event's latency).
                    first = consumer.poll(0.5)
                    messages = (
                        []
                        if first is None
                        else [first, *consumer.consume(self.batch_size - 1, timeout=0)]
                    )
                    self._say_when_waiting(consumer, messages)
                    deliveries = []
                    ends: dict[tuple[str, int], int] = {}
                    for message in messages:
                        delivery = self._delivery(message)
                        tp = (str(message.topic()), int(message.partition() or 0))
                        if delivery is None:
                            if _is_eof(message):
                                at_end.add(tp)
                                ends[tp] = int(message.offset() or 0)
                        else:
                            at_end.discard(tp)
                            ends.pop(tp, None)
                            deliveries.append(delivery)
                    try:
                        if deliveries:
                            apply_batch(
                                conn,
                                self.projection,
                                deliveries,
                                expected_generation=self._generation,
                                publish_dead_letters=self._publish_dead_letters,
                            )
                            self._record_lag(consumer, deliveries)
                        if ends:
                            advance_to_end(conn, ends, self._generation)
                            for topic, partition in ends:
                                metrics.PROJECTION_LAG.labels(
                                    self.projection.name, topic, str(partition)
                                ).set(0)
                    except GenerationChanged:
                        self._reseek(consumer)
                        at_end.clear()
                        continue
                    assigned = {(tp.topic, tp.partition) for tp in consumer.assignment()}
                    if assigned and assigned <= at_end:
                        self.caught_up.set()
                        if until_caught_up:
                            break
            finally:
                consumer.close()
                if self._producer is not None:
                    self._producer.flush(10)
                self._conn = None
        log.info("projection stopped", projection=self.projection.name)

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Start each assigned partition where the read model says it stopped."""
        assert self._conn is not None
        offsets = stored_offsets(self._conn)
        for tp in partitions:
            tp.offset = offsets.get((tp.topic, tp.partition), OFFSET_BEGINNING) or OFFSET_BEGINNING
        consumer.assign(partitions)
        self._unassigned_since = None if partitions else time.monotonic()
        log.info("partitions assigned", projection=self.projection.name, partitions=len(partitions))

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._unassigned_since = time.monotonic()
        log.info("partitions revoked", projection=self.projection.name, partitions=len(partitions))

    def _say_when_waiting(self, consumer: Consumer, messages: list[Any]) -> None:
        """One line when the group has given this member nothing for a while (another member
        holds every partition, or the group waits for a dead member's session to end), and
        Kafka's state when the cluster was lost and now answers."""
        if self.watch is not None:
            if messages and not self.watch.kafka.up:
                self.watch.kafka.back()
            elif not messages:
                self.watch.check(consumer)
        since = self._unassigned_since
        if since is not None and time.monotonic() - since > 5:
            log.info(
                "waiting for the consumer group to assign partitions",
                projection=self.projection.name,
                waited_s=round(time.monotonic() - since),
            )
            self._unassigned_since = None  # said once until the next revocation

    def _reseek(self, consumer: Consumer) -> None:
        assert self._conn is not None
        self._generation = current_generation(self._conn)
        offsets = stored_offsets(self._conn)
        log.info("projection schema was swapped; re-seeking", projection=self.projection.name)
        for tp in consumer.assignment():
            target = offsets.get((tp.topic, tp.partition), 0)
            consumer.seek(TopicPartition(tp.topic, tp.partition, target or OFFSET_BEGINNING))

    def _delivery(self, message: Any) -> Delivery | None:
        error = message.error()
        if error is not None:
            if error.code() == KafkaError._PARTITION_EOF:
                return None
            if error.fatal():
                raise KafkaException(error)
            if self.watch is not None and error.code() in (
                KafkaError._ALL_BROKERS_DOWN,
                KafkaError._TRANSPORT,
            ):
                self.watch.error_cb(error)  # one line when the cluster goes, not one per error
                return None
            if not error.retriable():
                raise KafkaException(error)
            log.warning("kafka error", error_code=error.name())
            return None
        return Delivery(
            str(message.topic()),
            int(message.partition() or 0),
            int(message.offset() or 0),
            message.value(),
            message.key(),
            message=message,
        )

    def _publish_dead_letters(self, dead: list[DeadLetter]) -> None:
        if not self.dead_letter_topic:
            return
        if self._producer is None:
            from confluent_kafka import Producer

            self._producer = Producer(
                {
                    "bootstrap.servers": self.bootstrap_servers,
                    "enable.idempotence": True,
                    **self.producer_config,
                }
            )
        for letter in dead:
            d = letter.delivery
            self._producer.produce(
                self.dead_letter_topic,
                key=d.key,
                value=d.value,
                headers=[
                    *[(k, v.encode()) for k, v in d.headers.items()],
                    ("dlq-projection", self.projection.name.encode()),
                    ("dlq-source-topic", d.source.encode()),
                    ("dlq-source-partition", str(d.partition).encode()),
                    ("dlq-source-offset", str(d.offset).encode()),
                    ("dlq-error-class", letter.error_class.encode()),
                    ("dlq-error-message", letter.error_message.encode()),
                ],
            )
        remaining = self._producer.flush(30)
        if remaining:
            raise RuntimeError(f"{remaining} dead letters were not acknowledged by Kafka")

    def _record_lag(self, consumer: Consumer, deliveries: Sequence[Delivery]) -> None:
        last: dict[tuple[str, int], int] = {}
        for d in deliveries:
            last[(d.source, d.partition)] = d.offset
        for (topic, partition), offset in last.items():
            _, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), cached=True)
            if high is not None and high >= 0:
                metrics.PROJECTION_LAG.labels(self.projection.name, topic, str(partition)).set(
                    max(0, high - offset - 1)
                )


def _is_eof(message: Any) -> bool:
    error = message.error()
    return error is not None and error.code() == KafkaError._PARTITION_EOF


class EventStoreProjector:
    """Runs a projection straight off the event store's notification log (embedded mode)."""

    def __init__(
        self,
        projection: Projection,
        *,
        database_url: str,
        select_notifications: Callable[[int, int], Sequence[Any]],
        encode_notification: Callable[[Any], tuple[bytes, dict[str, str], bytes]],
        max_notification_id: Callable[[], int | None],
        channel: str,
        schema: str | None = None,
        batch_size: int = 500,
        prepare_schema: bool = True,
    ) -> None:
        self.projection = projection
        self.database_url = database_url
        self.prepare_schema = prepare_schema
        self.select_notifications = select_notifications
        self.encode_notification = encode_notification
        self.max_notification_id = max_notification_id
        self.channel = channel
        self.schema = schema or projection.schema
        self.batch_size = batch_size
        self.caught_up = threading.Event()

    def run(self, stop: threading.Event, *, until_caught_up: bool = False) -> None:
        if self.prepare_schema:
            prepare(self.database_url, self.projection, self.schema)
        with (
            connect(self.database_url, self.schema) as conn,
            psycopg.connect(self.database_url, autocommit=True) as listener,
        ):
            listener.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
            say = log.debug if until_caught_up else log.info  # a catch-up is not worth a line
            say("projection started", projection=self.projection.name, source="event store")
            while not stop.is_set():
                if self.catch_up(conn):
                    continue
                self.caught_up.set()
                if until_caught_up:
                    break
                for _ in listener.notifies(timeout=0.5, stop_after=1):
                    pass
        say("projection stopped", projection=self.projection.name)

    def catch_up(self, conn: psycopg.Connection[Any]) -> int:
        """Apply one batch from the log; return how many notifications it held."""
        next_id = stored_offsets(conn).get((EVENT_STORE_SOURCE, 0), 0)
        notifications = self.select_notifications(max(next_id, 1), self.batch_size)
        deliveries = []
        for n in notifications:
            try:
                value, headers, key = self.encode_notification(n)
            except Exception as exc:  # its class only: the text may quote the event's values
                # Keyed like the relay's record of an event it withholds.
                value, headers = None, {"encode-error": type(exc).__name__}
                key = str(n.originator_id).encode()
            deliveries.append(Delivery(EVENT_STORE_SOURCE, 0, n.id, value, key, headers))
        if deliveries:
            apply_batch(conn, self.projection, deliveries)
            last = deliveries[-1].offset
            metrics.PROJECTION_LAG.labels(self.projection.name, EVENT_STORE_SOURCE, "0").set(
                max(0, (self.max_notification_id() or 0) - last)
            )
        return len(deliveries)
