"""The relay: follows the event store's notification log and publishes to Kafka, exactly once.

Each batch is one Kafka transaction holding the batch's events and a record of the last
notification id it published (on the compacted relay-position topic). Kafka is therefore
the only place that says how far the relay got: a relay killed at any point restarts with
the same ``transactional.id``, which fences and aborts whatever the dead one left open, then
reads the last committed position and carries on from the next notification. Consumers that
read committed messages see no gap and no duplicate.

One event never stops the relay. An event that cannot be published (it no longer decodes or
encodes, or its message is larger than Kafka accepts, which the event store's own limit
prevents for every event recorded since that limit) is withheld: the same transaction carries,
instead of it, a record on the dead-letter topic naming its position, aggregate and type and
why (``dlq-source: relay``), the relay logs one line and counts it
(``reintegration_relay_withheld_total``), and carries on with the next event. The event stays
in the event store, which remains the record.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, cast
from uuid import UUID

import psycopg
import structlog
from confluent_kafka import (
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from eventsourcing.application import Application
from eventsourcing.persistence import Mapper, Notification, Transcoding
from psycopg import sql
from psycopg.types.json import Jsonb

from domain.base import CaseAggregate
from infra import contract, metrics
from infra.chain import ChainedApplicationRecorder
from infra.contract import Topics
from infra.kafka import PRODUCER_LIMITS, client_config, high_watermarks, retrying
from infra.postgres import SCHEMA_XACT_LOCK
from infra.resilience import KafkaUnavailable, KafkaWatch

log = structlog.get_logger(__name__)

COMMIT_TIMEOUT_S = 10
"""How long a batch may take to reach Kafka before the relay takes Kafka for lost (and starts
again once it answers, from the position Kafka holds)."""

Batch = tuple[Sequence[Notification], dict[int, bytes]]


class Relay:
    def __init__(
        self,
        *,
        recorder: ChainedApplicationRecorder,
        mapper: Mapper[UUID],
        database_url: str,
        bootstrap_servers: str,
        topics: Topics,
        batch_size: int = 1000,
        idle_wait_s: float = 0.5,
        prepare_schema: bool = True,
    ) -> None:
        self.recorder = recorder
        self.mapper = mapper
        self.database_url = database_url
        self.bootstrap_servers = bootstrap_servers
        self.topics = topics
        self.batch_size = batch_size
        self.idle_wait_s = idle_wait_s
        self.prepare_schema = prepare_schema  # False: the owner role made its table
        self.published_position = 0
        self.ends: dict[tuple[str, int], int] = {}

    def run(self, stop: threading.Event) -> None:
        """Publish until ``stop`` is set. Raises when PostgreSQL or Kafka goes away (the
        supervisor waits for it and runs the relay again, which carries on from the position
        Kafka holds)."""
        watch = KafkaWatch()
        producer = Producer(
            client_config(
                self.bootstrap_servers,
                **{
                    "transactional.id": f"{self.topics.prefix}.relay",
                    "enable.idempotence": True,
                    "acks": "all",
                    "linger.ms": 5,
                    "compression.type": "lz4",
                    "error_cb": watch.error_cb,
                    "on_delivery": self._delivered,
                    **PRODUCER_LIMITS,
                },
            )
        )
        producer.init_transactions(30)
        self.published_position = read_position(self.bootstrap_servers, self.topics.relay_position)
        self.ends = high_watermarks(self.bootstrap_servers, self.topics.event_topics)
        watch.kafka.back()
        log.info("relay started", position=self.published_position)
        with (
            psycopg.connect(self.database_url, autocommit=True) as listener,
            ThreadPoolExecutor(1, thread_name_prefix="relay-read") as reader,
        ):
            self.published = PublishedPositions(listener, self.recorder.events_table_name)
            if self.prepare_schema:
                self.published.prepare()
            listener.execute(f'LISTEN "{self.recorder.channel_name}"')
            ahead: Future[Batch] | None = None
            while not stop.is_set():
                notifications, links = (
                    ahead.result() if ahead else self._read(self.published_position)
                )
                ahead = None
                if not notifications:
                    metrics.RELAY_LAG.set(
                        max(0, (self.recorder.max_notification_id() or 0) - self.published_position)
                    )
                    producer.poll(0)  # serve the client's callbacks: its errors say Kafka went
                    watch.check(producer)
                    for _ in listener.notifies(timeout=self.idle_wait_s, stop_after=1):
                        pass
                    continue
                if len(notifications) == self.batch_size:
                    # A backlog: read the next batch while this one is encoded and committed.
                    ahead = reader.submit(self._read, notifications[-1].id)
                self._publish(producer, notifications, links)
                self.published.record(self.published_position, self.ends)
        producer.flush(10)
        log.info("relay stopped", position=self.published_position)

    def _delivered(self, error: KafkaError | None, message: Message) -> None:
        """Where each event landed: the end of its partition (for read-your-writes)."""
        if error is None:
            key = (message.topic() or "", message.partition() or 0)
            if key in self.ends:
                self.ends[key] = max(self.ends[key], (message.offset() or 0) + 1)

    def _read(self, after: int) -> Batch:
        """The next notifications after a position, with their chain links."""
        notifications = self.recorder.select_notifications(
            start=after, limit=self.batch_size, inclusive_of_start=False
        )
        if not notifications:
            return notifications, {}
        return notifications, self.recorder.chain_links(notifications[0].id, notifications[-1].id)

    def _publish(
        self, producer: Producer, notifications: Sequence[Notification], links: dict[int, bytes]
    ) -> None:
        producer.begin_transaction()
        for i, notification in enumerate(notifications):
            try:
                self._produce(producer, notification, links.get(notification.id))
            except Unpublishable as exc:
                self._withhold(producer, notification, exc)
            if i % 500 == 499:
                producer.poll(0)  # serve delivery reports now and then, not per message
        last = notifications[-1].id
        producer.produce(
            self.topics.relay_position,
            key=b"relay",
            value=json.dumps({"notification_id": last}).encode(),
        )
        producer.commit_transaction(COMMIT_TIMEOUT_S)
        self.published_position = last
        metrics.EVENTS_RELAYED.inc(len(notifications))
        if len(notifications) == self.batch_size:  # more may be waiting
            metrics.RELAY_LAG.set(max(0, (self.recorder.max_notification_id() or 0) - last))
        log.debug("relay batch committed", events=len(notifications), position=last)

    def _produce(self, producer: Producer, notification: Notification, link: bytes | None) -> None:
        """One event as its Avro message; :class:`Unpublishable` when it cannot be one."""
        try:
            event = cast(CaseAggregate.Event, self.mapper.to_domain_event(notification))
            schema_name, value = contract.encode(event)
        except Exception as exc:  # it decoded and encoded when it was recorded: an old event
            raise Unpublishable("cannot be encoded", exc) from exc
        headers = contract.headers(schema_name, event, notification.id)
        if link is not None:
            headers["chain-hash"] = link.hex()
        full_since = None
        while True:
            try:
                producer.produce(
                    self.topics.for_event(event),
                    key=str(event.partition_key).encode(),
                    value=value,
                    headers=list(headers.items()),  # str values: the client sends them as UTF-8
                )
                return
            except BufferError:  # the client's queue is full: let it send, then try again
                full_since = full_since or time.monotonic()
                if time.monotonic() - full_since > COMMIT_TIMEOUT_S:
                    raise KafkaUnavailable("the client's queue stayed full") from None
                producer.poll(0.5)
            except KafkaException as exc:
                if exc.args[0].code() == KafkaError.MSG_SIZE_TOO_LARGE:
                    raise Unpublishable(
                        f"its message of {len(value):,} bytes is larger than Kafka accepts", exc
                    ) from exc
                raise

    def _withhold(self, producer: Producer, notification: Notification, exc: Unpublishable) -> None:
        """Publish, in the event's place in the transaction, a record saying it is withheld."""
        producer.produce(
            self.topics.dead_letters,
            key=str(notification.originator_id).encode(),
            value=None,
            headers=[
                ("dlq-source", b"relay"),
                ("notification-id", str(notification.id).encode()),
                ("originator-id", str(notification.originator_id).encode()),
                ("originator-version", str(notification.originator_version).encode()),
                ("event-topic", notification.topic.encode()),
                ("dlq-error-class", exc.error_class.encode()),
                ("dlq-error-message", exc.reason.encode()),
            ],
        )
        metrics.RELAY_WITHHELD.inc()
        log.error(
            "event withheld from Kafka",
            notification_id=notification.id,
            event_type=notification.topic.rsplit(":", 1)[-1],
            reason=exc.reason,
            error_class=exc.error_class,
        )


class UuidAsText(Transcoding):
    """The relay's reading of a stored uuid: its canonical text, which is what the Avro record
    and the headers hold (a UUID object, built and then written out as text, costs four times
    as much). Domain events read so are only encoded, never handled."""

    type = UUID
    name = "uuid_hex"  # replaces the library's transcoding of that name
    _HEX = re.compile(r"[0-9a-f]{32}")

    def encode(self, obj: UUID) -> str:
        return obj.hex

    def decode(self, data: str) -> str:
        if self._HEX.fullmatch(data):
            return f"{data[:8]}-{data[8:12]}-{data[12:16]}-{data[16:20]}-{data[20:]}"
        return str(UUID(data))  # another spelling UUID() reads, or its ValueError


def relay_mapper(application: Application[Any]) -> Mapper[UUID]:
    """The application's mapper, reading stored uuids as their text (:class:`UuidAsText`)."""
    transcoder = type(application.mapper.transcoder)()
    application.register_transcodings(transcoder)  # type: ignore[arg-type]
    transcoder.register(UuidAsText())  # type: ignore[attr-defined]
    return Mapper(transcoder, application.mapper.compressor, application.mapper.cipher)


class Unpublishable(Exception):
    """An event the relay cannot publish. The reason names no value of the event: it may hold
    personal data."""

    def __init__(self, reason: str, cause: BaseException) -> None:
        super().__init__(reason)
        self.reason = reason
        self.error_class = type(cause).__name__


def read_position(bootstrap_servers: str, position_topic: str, timeout_s: float = 30.0) -> int:
    """The last notification id whose transaction committed, or 0 when nothing was published.

    Reads backwards from the end of the single-partition position topic in growing steps: the
    tail may hold aborted records and transaction markers, which a read_committed consumer skips.
    """
    consumer = Consumer(
        client_config(
            bootstrap_servers,
            **{
                "group.id": f"{position_topic}.reader",
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
                "enable.partition.eof": True,
            },
        )
    )
    try:
        low, high = retrying(
            lambda: consumer.get_watermark_offsets(
                TopicPartition(position_topic, 0), timeout=timeout_s, cached=False
            )
        )
        step = 8
        while high > low:
            start = max(low, high - step)
            last = _last_committed_value(consumer, position_topic, start, high, timeout_s)
            if last is not None:
                return int(json.loads(last)["notification_id"])
            if start == low:
                break
            step *= 4
        return 0
    finally:
        consumer.close()


def _last_committed_value(
    consumer: Consumer, topic: str, start: int, end: int, timeout_s: float
) -> bytes | None:
    consumer.assign([TopicPartition(topic, 0, start)])
    last: bytes | None = None
    while True:
        message = consumer.poll(timeout_s)
        if message is None:
            raise KafkaUnavailable(f"no answer from {topic} within {timeout_s} s")
        error = message.error()
        if error is not None:
            if error.code() == KafkaError._PARTITION_EOF:
                return last
            raise RuntimeError(f"reading {topic}: {error}")
        last = message.value()
        if (message.offset() or 0) >= end - 1:
            return last


class PublishedPositions:
    """Where the relay got to, in Kafka's terms: after each committed batch, the end offset of
    every partition of the event topics (``<events table>_published``). A reader that was given
    a log position finds the first row at or after it and waits until a read model's stored
    offsets reach those ends (read-your-writes, see ``infra/freshness.py``). Rows older than an
    hour are removed (the newest one always stays): a position older than every row is covered
    by the oldest, which lies after it."""

    PRUNE_EVERY = 500

    def __init__(self, conn: psycopg.Connection[Any], events_table: str) -> None:
        self.conn = conn
        self.table = sql.Identifier(f"{events_table}_published")
        self.recorded = 0

    def prepare(self) -> None:
        with self.conn.transaction():
            self.conn.execute(SCHEMA_XACT_LOCK)  # as every process creating tables
            self.conn.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {} (position bigint PRIMARY KEY, "
                    "ends jsonb NOT NULL, published_at timestamptz NOT NULL DEFAULT now())"
                ).format(self.table)
            )

    def record(self, position: int, ends: dict[tuple[str, int], int]) -> None:
        by_topic: dict[str, dict[str, int]] = {}
        for (topic, partition), end in ends.items():
            by_topic.setdefault(topic, {})[str(partition)] = end
        self.conn.execute(
            sql.SQL(
                "INSERT INTO {} (position, ends) VALUES (%s, %s) ON CONFLICT (position) "
                "DO UPDATE SET ends = excluded.ends"
            ).format(self.table),
            (position, Jsonb(by_topic)),
        )
        self.recorded += 1
        if self.recorded % self.PRUNE_EVERY == 0:
            self.conn.execute(
                sql.SQL(
                    "DELETE FROM {0} WHERE published_at < now() - interval '1 hour' "
                    "AND position < (SELECT max(position) FROM {0})"
                ).format(self.table)
            )
