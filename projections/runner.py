"""The one consumer skeleton every projection runs in.

poll -> check the message's error -> decode -> dispatch to the projection's apply function ->
write -> store the consumed position in the same Postgres transaction as the rows. A crash
therefore never applies an event twice or skips one: the rows and the position commit
together, and on restart the consumer seeks to the stored position.

Each projection lives in its own Postgres schema (``projection_<name>``) holding its tables
and its ``projection_offsets`` table, so a rebuild can fill a fresh schema and swap it in.

Two sources feed the same apply code: Kafka topics (production) and, in embedded mode
without Kafka, the event store's notification log.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
import structlog
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message
from psycopg import Cursor, sql
from psycopg.rows import dict_row

import schemas

log = structlog.get_logger(__name__)

Handler = Callable[[Cursor[Any], dict[str, Any]], None]
EVENT_STORE_SOURCE = "$event-store"

OFFSETS_DDL = """
CREATE TABLE IF NOT EXISTS projection_offsets (
    source       text NOT NULL,
    partition    int NOT NULL,
    next_offset  bigint NOT NULL,
    PRIMARY KEY (source, partition)
)
"""
SELECT_OFFSETS = "SELECT source, partition, next_offset FROM projection_offsets"
LOCK_OFFSET = """
INSERT INTO projection_offsets (source, partition, next_offset) VALUES (%s, %s, 0)
ON CONFLICT (source, partition) DO NOTHING;
"""
SELECT_OFFSET_FOR_UPDATE = (
    "SELECT next_offset FROM projection_offsets WHERE source = %s AND partition = %s FOR UPDATE"
)
STORE_OFFSET = "UPDATE projection_offsets SET next_offset = %s WHERE source = %s AND partition = %s"


@dataclass(frozen=True)
class Projection:
    name: str
    ddl: str
    handlers: Mapping[str, Handler]

    @property
    def schema(self) -> str:
        return f"projection_{self.name}"


def connect(database_url: str, schema: str) -> psycopg.Connection[dict[str, Any]]:
    conn = psycopg.connect(database_url, row_factory=dict_row)
    conn.execute(sql.SQL("SET search_path TO {}, public").format(sql.Identifier(schema)))
    conn.commit()
    return conn


def prepare(database_url: str, projection: Projection, schema: str | None = None) -> None:
    """Create the projection's schema, tables and offsets table if missing."""
    schema = schema or projection.schema
    with psycopg.connect(database_url) as conn:
        # Serialise concurrent preparers (several processes may start at once).
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (schema,))
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(schema)))
        conn.execute(projection.ddl)
        conn.execute(OFFSETS_DDL)


def stored_offsets(conn: psycopg.Connection[Any]) -> dict[tuple[str, int], int]:
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(SELECT_OFFSETS)
        return {(r["source"], r["partition"]): r["next_offset"] for r in cur.fetchall()}


@dataclass
class Delivery:
    """One event to apply: where it came from, and its decoded Avro record."""

    source: str
    partition: int
    offset: int
    schema_name: str
    record: dict[str, Any]


def apply_batch(
    conn: psycopg.Connection[Any], projection: Projection, deliveries: Sequence[Delivery]
) -> int:
    """Apply deliveries in one transaction with their positions; skip any already applied."""
    applied = 0
    with conn.transaction(), conn.cursor() as cur:
        positions: dict[tuple[str, int], int] = {}
        for key in sorted({(d.source, d.partition) for d in deliveries}):
            cur.execute(LOCK_OFFSET, key)
            cur.execute(SELECT_OFFSET_FOR_UPDATE, key)
            row = cur.fetchone()
            assert row is not None  # inserted just above
            positions[key] = row["next_offset"]
        for d in deliveries:
            key = (d.source, d.partition)
            if d.offset < positions[key]:
                continue  # applied before (redelivery after a rebalance or restart)
            handler = projection.handlers.get(d.schema_name)
            if handler is not None:
                handler(cur, d.record)
            positions[key] = d.offset + 1
            applied += 1
        for (source, partition), next_offset in positions.items():
            cur.execute(STORE_OFFSET, (next_offset, source, partition))
    return applied


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
    ) -> None:
        self.projection = projection
        self.database_url = database_url
        self.group_instance_id = group_instance_id
        self.bootstrap_servers = bootstrap_servers
        self.topics = list(topics)
        self.group_id = group_id
        self.schema = schema or projection.schema
        self.batch_size = batch_size
        self._conn: psycopg.Connection[Any] | None = None

    def run(self, stop: threading.Event) -> None:
        prepare(self.database_url, self.projection, self.schema)
        config = {
            "bootstrap.servers": self.bootstrap_servers,
            "group.id": self.group_id,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            "client.id": f"projection-{self.projection.name}",
        }
        if self.group_instance_id:
            # Static membership: a restarted member takes its partitions back at once
            # instead of waiting for the dead one's session to time out.
            config["group.instance.id"] = f"{self.group_instance_id}.{self.projection.name}"
        consumer = Consumer(config)
        with connect(self.database_url, self.schema) as conn:
            self._conn = conn
            consumer.subscribe(self.topics, on_assign=self._on_assign)
            log.info("projection started", projection=self.projection.name, source="kafka")
            try:
                while not stop.is_set():
                    messages = consumer.consume(self.batch_size, timeout=0.5)
                    deliveries = [d for d in map(self._delivery, messages) if d is not None]
                    if deliveries:
                        apply_batch(conn, self.projection, deliveries)
            finally:
                consumer.close()
                self._conn = None
        log.info("projection stopped", projection=self.projection.name)

    def _on_assign(self, consumer: Consumer, partitions: list[Any]) -> None:
        """Start each assigned partition where the read model says it stopped."""
        assert self._conn is not None
        offsets = stored_offsets(self._conn)
        for tp in partitions:
            tp.offset = offsets.get((tp.topic, tp.partition), OFFSET_BEGINNING)
        consumer.assign(partitions)

    def _delivery(self, message: Message) -> Delivery | None:
        error = message.error()
        if error is not None:
            if error.code() == KafkaError._PARTITION_EOF:
                return None
            if error.fatal() or not error.retriable():
                raise KafkaException(error)
            log.warning("kafka error", error=str(error))
            return None
        schema, record = schemas.decode(message.value() or b"")
        return Delivery(
            str(message.topic()),
            int(message.partition() or 0),
            int(message.offset() or 0),
            schema.name,
            record,
        )


class EventStoreProjector:
    """Runs a projection straight off the event store's notification log (embedded mode)."""

    def __init__(
        self,
        projection: Projection,
        *,
        database_url: str,
        select_notifications: Callable[[int, int], Sequence[Any]],
        decode_notification: Callable[[Any], tuple[str, dict[str, Any]]],
        channel: str,
        schema: str | None = None,
        batch_size: int = 500,
    ) -> None:
        self.projection = projection
        self.database_url = database_url
        self.select_notifications = select_notifications
        self.decode_notification = decode_notification
        self.channel = channel
        self.schema = schema or projection.schema
        self.batch_size = batch_size

    def run(self, stop: threading.Event) -> None:
        prepare(self.database_url, self.projection, self.schema)
        with (
            connect(self.database_url, self.schema) as conn,
            psycopg.connect(self.database_url, autocommit=True) as listener,
        ):
            listener.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
            log.info("projection started", projection=self.projection.name, source="event store")
            while not stop.is_set():
                if not self.catch_up(conn):
                    for _ in listener.notifies(timeout=0.5, stop_after=1):
                        pass
        log.info("projection stopped", projection=self.projection.name)

    def catch_up(self, conn: psycopg.Connection[Any]) -> int:
        """Apply one batch from the log; return how many notifications it held."""
        next_id = stored_offsets(conn).get((EVENT_STORE_SOURCE, 0), 1)
        notifications = self.select_notifications(next_id, self.batch_size)
        deliveries = []
        for n in notifications:
            schema_name, record = self.decode_notification(n)
            deliveries.append(Delivery(EVENT_STORE_SOURCE, 0, n.id, schema_name, record))
        if deliveries:
            apply_batch(conn, self.projection, deliveries)
        return len(deliveries)
