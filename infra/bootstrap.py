"""The composition root: builds every piece of infrastructure from Settings, once.

Nothing is connected at import time; callers build a Container and close it when done.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import structlog
from psycopg import sql
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from infra import contract
from infra.application import ReintegrationApplication
from infra.config import Settings
from infra.contract import Topics
from infra.postgres import eventsourcing_env, start_embedded
from projections import eligibility, households, housing
from projections.runner import EventStoreProjector, KafkaProjector, Projection

log = structlog.get_logger(__name__)

PROJECTIONS = {
    households.NAME: Projection(households.NAME, households.DDL, households.HANDLERS),
    eligibility.NAME: Projection(eligibility.NAME, eligibility.DDL, eligibility.HANDLERS),
    housing.NAME: Projection(housing.NAME, housing.DDL, housing.HANDLERS),
}


@dataclass
class Container:
    settings: Settings
    _closers: list[Any] = field(default_factory=list)

    @cached_property
    def database_url(self) -> str:
        if self.settings.database_url:
            return self.settings.database_url
        warnings.filterwarnings("ignore", module="platformdirs")
        url = start_embedded(self.settings.data_dir / "postgres")
        log.debug("embedded postgres", url=url, data_dir=str(self.settings.data_dir / "postgres"))
        return url

    @cached_property
    def application(self) -> ReintegrationApplication:
        env = eventsourcing_env(self.database_url, self.settings.db_pool_size)
        app = ReintegrationApplication(env=env)
        self._closers.append(app.close)
        return app

    @cached_property
    def eligibility(self) -> Any:
        """Rule sets, determinations and the auditor's re-run (CEL as expression language)."""
        from infra.cel_language import CelLanguage
        from infra.eligibility import Eligibility

        return Eligibility(
            self.application, self.read_pool, CelLanguage(), self.settings.default_rule_set
        )

    @cached_property
    def housing(self) -> Any:
        """Settlements, lottery rounds and offers, relocation and reintegration."""
        from infra.housing import Housing

        return Housing(self.application, self.read_pool, self.eligibility)

    @cached_property
    def topics(self) -> Topics:
        return Topics(self.settings.kafka_topic_prefix)

    @cached_property
    def read_pool(self) -> ConnectionPool[Any]:
        """Connections for queries on the read models (search_path covers every projection)."""
        schemas = sql.SQL(", ").join(sql.Identifier(p.schema) for p in PROJECTIONS.values())

        def configure(conn: Any) -> None:
            conn.execute(sql.SQL("SET search_path TO {}, public").format(schemas))
            conn.commit()

        pool: ConnectionPool[Any] = ConnectionPool(
            self.database_url,
            min_size=1,
            max_size=self.settings.db_pool_size,
            kwargs={"row_factory": dict_row},
            configure=configure,
            open=True,
            name="read-models",
        )
        self._closers.append(pool.close)
        return pool

    def query(self, view: Any, *args: Any) -> Any:
        """Run one read-model query function (``view(cursor, *args)``) on a pooled connection."""
        with self.read_pool.connection() as conn, conn.cursor() as cur:
            return view(cur, *args)

    def prepare_read_models(self) -> None:
        from infra import tamper_evidence
        from projections.runner import prepare

        for projection in PROJECTIONS.values():
            prepare(self.database_url, projection)
        tamper_evidence.prepare(self.database_url)

    # --- audit ---------------------------------------------------------------------------

    def signing_key(self) -> Any:
        """The Ed25519 key that signs checkpoints: AUDIT_SIGNING_KEY, or the published demo key
        in development. None in production without a key (checkpoints are then not written)."""
        from infra import tamper_evidence

        encoded = self.settings.audit_signing_key or (
            tamper_evidence.DEMO_SIGNING_KEY if self.settings.development else None
        )
        return tamper_evidence.signing_key(encoded) if encoded else None

    def public_key(self) -> bytes | None:
        """The key checkpoints are verified with: AUDIT_PUBLIC_KEY (the published one), else the
        signing key's own."""
        import base64

        from infra import tamper_evidence

        if self.settings.audit_public_key:
            return base64.b64decode(self.settings.audit_public_key)
        key = self.signing_key()
        if key is None:
            key = tamper_evidence.signing_key(tamper_evidence.DEMO_SIGNING_KEY)
        return tamper_evidence.public_key_bytes(key)

    @property
    def events_table(self) -> str:
        return str(self.application.recorder.events_table_name)  # type: ignore[attr-defined]

    @property
    def chain_table(self) -> str:
        return str(self.application.recorder.chain_table_name)  # type: ignore[attr-defined]

    def write_checkpoint(self) -> Any:
        from infra import tamper_evidence

        key = self.signing_key()
        if key is None:
            raise RuntimeError("AUDIT_SIGNING_KEY is not set: checkpoints cannot be signed")
        tamper_evidence.prepare(self.database_url)
        producer = None
        if self.settings.kafka_bootstrap_servers:
            from confluent_kafka import Producer

            producer = Producer(
                {
                    "bootstrap.servers": self.settings.kafka_bootstrap_servers,
                    "enable.idempotence": True,
                }
            )
        return tamper_evidence.write_checkpoint(
            self.database_url, self.chain_table, key, producer, self.topics.audit_checkpoints
        )

    def verify_log(self, generated_by: str, public_key: bytes | None = None) -> Any:
        """Recompute the chain and compare it with the stored links, the checkpoints (database
        and Kafka) and the links carried in Kafka messages."""
        from infra import tamper_evidence

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

    def _kafka_attestations(self) -> tuple[Iterator[tuple[int, bytes]], list[Any]]:
        """The signed checkpoints published to Kafka, and the links the event messages carry,
        streamed in notification order: one reader per partition (each partition is in
        notification order), merged."""
        import json

        from infra.tamper_evidence import Checkpoint, in_notification_order

        assert self.settings.kafka_bootstrap_servers
        bootstrap = self.settings.kafka_bootstrap_servers
        checkpoints = [
            Checkpoint.from_json(json.loads(message.value() or b"{}"))
            for reader in read_partitions(
                bootstrap, kafka_partitions(bootstrap, [self.topics.audit_checkpoints])
            )
            for message in reader
        ]
        readers = read_partitions(bootstrap, kafka_partitions(bootstrap, self.topics.event_topics))
        return in_notification_order([_carried_links(r) for r in readers]), checkpoints

    def case_history(self, household_id: Any) -> dict[str, Any]:
        from infra import case_history

        return case_history.history(self.application, household_id)

    def case_as_of(self, household_id: Any, moment: Any) -> dict[str, Any]:
        from infra import case_history

        return case_history.as_of(self.application, household_id, moment)

    def cross_check_projection(self, name: str, generated_by: str) -> Any:
        """Rebuild a projection from the start of the event store's log into scratch tables and
        compare them with the live ones."""
        from projections.admin import compare_schemas, drop_schema
        from projections.runner import EventStoreProjector

        projection = PROJECTIONS[name]
        scratch = f"audit_scratch_{name}"
        drop_schema(self.database_url, scratch)
        app = self.application
        try:
            EventStoreProjector(
                projection,
                database_url=self.database_url,
                select_notifications=lambda start, limit: app.recorder.select_notifications(
                    start, limit
                ),
                encode_notification=self.encode_notification,
                max_notification_id=app.recorder.max_notification_id,
                channel=app.recorder.channel_name,  # type: ignore[attr-defined]
                schema=scratch,
                batch_size=self.settings.projection_batch_size,
            ).run(threading.Event(), until_caught_up=True)
            report = compare_schemas(self.database_url, projection.schema, scratch, generated_by)
            report.subject = name
            lag = self.projection_status(name).total_lag
            report.summary["live lag"] = lag
            if lag:
                report.note(
                    problem=f"the live projection is {lag} behind its source: differences may be "
                    "events it has not applied yet; run again once its lag is 0"
                )
            return report
        finally:
            drop_schema(self.database_url, scratch)

    def catch_up_read_models(self) -> None:
        """Without Kafka, bring every projection up to the end of the event store's log (for a
        command-line process that reads views no `serve` may be keeping up to date). With Kafka,
        the projector processes do that; this does nothing."""
        self.prepare_read_models()
        if self.settings.kafka_bootstrap_servers:
            return
        for name in PROJECTIONS:
            self.projector(name).run(threading.Event(), until_caught_up=True)

    def ensure_topics(self) -> None:
        from infra.kafka import ensure_topics

        assert self.settings.kafka_bootstrap_servers
        ensure_topics(
            self.settings.kafka_bootstrap_servers, self.topics, self.settings.kafka_partitions
        )

    def relay(self) -> Any:
        from infra.relay import Relay

        assert self.settings.kafka_bootstrap_servers, "the relay needs KAFKA_BOOTSTRAP_SERVERS"
        return Relay(
            recorder=self.application.recorder,  # type: ignore[arg-type]
            mapper=self.application.mapper,
            database_url=self.database_url,
            bootstrap_servers=self.settings.kafka_bootstrap_servers,
            topics=self.topics,
            batch_size=self.settings.relay_batch_size,
        )

    def projector(
        self,
        name: str,
        schema: str | None = None,
        group_id: str | None = None,
        group_instance_id: str | None = None,
    ) -> KafkaProjector | EventStoreProjector:
        """The projection's runner: on Kafka when configured, else on the event store's log."""
        projection = PROJECTIONS[name]
        if self.settings.kafka_bootstrap_servers:
            return KafkaProjector(
                projection,
                database_url=self.database_url,
                bootstrap_servers=self.settings.kafka_bootstrap_servers,
                topics=self.topics.event_topics,
                group_id=group_id or f"{self.topics.prefix}.projection.{name}",
                schema=schema,
                batch_size=self.settings.projection_batch_size,
                group_instance_id=group_instance_id or self.settings.kafka_group_instance_id,
                dead_letter_topic=self.topics.dead_letters,
            )
        app = self.application
        return EventStoreProjector(
            projection,
            database_url=self.database_url,
            select_notifications=lambda start, limit: app.recorder.select_notifications(
                start, limit
            ),
            encode_notification=self.encode_notification,
            max_notification_id=app.recorder.max_notification_id,
            channel=app.recorder.channel_name,  # type: ignore[attr-defined]
            schema=schema,
            batch_size=self.settings.projection_batch_size,
        )

    def source_ends(self) -> dict[tuple[str, int], int]:
        """Where every source of the projections ends now: Kafka high watermarks, or the log's end."""
        from projections.admin import event_store_end

        if not self.settings.kafka_bootstrap_servers:
            return event_store_end(self.application.recorder.max_notification_id())
        from confluent_kafka import Consumer, TopicPartition

        consumer = Consumer(
            {"bootstrap.servers": self.settings.kafka_bootstrap_servers, "group.id": "status"}
        )
        try:
            ends = {}
            for topic in self.topics.event_topics:
                metadata = consumer.list_topics(topic, timeout=10).topics[topic]
                for partition in metadata.partitions:
                    _, high = consumer.get_watermark_offsets(
                        TopicPartition(topic, partition), timeout=10, cached=False
                    )
                    ends[(topic, partition)] = high
            return ends
        finally:
            consumer.close()

    def projection_status(self, name: str, schema: str | None = None) -> Any:
        from projections.admin import status

        return status(self.database_url, PROJECTIONS[name], self.source_ends(), schema)

    def rebuild(self, name: str, stop: threading.Event, on_progress: Any = None) -> bool:
        """Rebuild a projection from the start of its source into a new schema while the live one
        keeps serving, then swap it in atomically. An interrupted rebuild resumes where it was.
        Returns False when stopped before the swap."""
        from projections.admin import REBUILD_SUFFIX, swap_in

        projection = PROJECTIONS[name]
        target = projection.schema + REBUILD_SUFFIX
        # One static member: a restarted rebuild takes the partitions back at once, and a
        # second concurrent rebuild fences the first.
        projector = self.projector(
            name,
            schema=target,
            group_id=f"{self.topics.prefix}.projection.{name}.rebuild",
            group_instance_id="rebuild",
        )
        failures: list[BaseException] = []

        def run() -> None:
            try:
                projector.run(stop, until_caught_up=True)
            except BaseException as exc:
                failures.append(exc)

        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        while worker.is_alive():
            worker.join(0.5)
            if on_progress is not None:
                on_progress(self.projection_status(name, schema=target))
        if failures:
            raise failures[0]
        if stop.is_set() or not projector.caught_up.is_set():
            return False
        swap_in(self.database_url, projection.schema, target)
        return True

    def encode_notification(self, notification: Any) -> tuple[bytes, dict[str, str]]:
        """A stored event as Kafka would carry it: Avro single-object bytes and the headers."""
        event = self.application.mapper.to_domain_event(notification)
        schema_name, value = contract.encode(event)
        return value, contract.headers(schema_name, event, notification.id)

    def start_background(
        self, stop: threading.Event, *, relay: bool, projections: bool, checkpoints: bool = False
    ) -> list[threading.Thread]:
        """Run the relay and/or every projection in daemon threads (development and `serve`)."""
        threads = []
        if relay:
            threads.append(
                threading.Thread(
                    target=self._supervised, args=("relay", self.relay, stop), daemon=True
                )
            )
        if projections:
            for name in PROJECTIONS:
                threads.append(
                    threading.Thread(
                        target=self._supervised,
                        args=(f"projection:{name}", lambda n=name: self.projector(n), stop),
                        daemon=True,
                    )
                )
        if checkpoints and self.signing_key() is not None:
            threads.append(
                threading.Thread(target=self._checkpoint_loop, args=(stop,), daemon=True)
            )
        elif checkpoints:
            log.warning("AUDIT_SIGNING_KEY is not set: signed checkpoints are not written")
        for thread in threads:
            thread.start()
        return threads

    def _checkpoint_loop(self, stop: threading.Event) -> None:
        while not stop.wait(self.settings.audit_checkpoint_interval_s):
            try:
                self.write_checkpoint()
            except Exception:
                log.exception("checkpoint failed; trying again at the next interval")

    @staticmethod
    def _supervised(what: str, build: Any, stop: threading.Event) -> None:
        """Run a worker; after a crash, log it and start it again after a pause."""
        while not stop.is_set():
            try:
                build().run(stop)
            except Exception:
                log.exception("worker crashed; restarting in 2 s", worker=what)
                stop.wait(2)

    def close(self) -> None:
        while self._closers:
            closer = self._closers.pop()
            try:
                closer()
            except Exception:
                log.exception("error while closing")


def kafka_partitions(bootstrap_servers: str, topics: list[str]) -> list[Any]:
    """Every partition of the topics that exist."""
    from confluent_kafka import TopicPartition
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap_servers})
    found = admin.list_topics(timeout=10).topics
    return [
        TopicPartition(topic, p)
        for topic in topics
        if topic in found and found[topic].error is None
        for p in sorted(found[topic].partitions)
    ]


def read_partitions(
    bootstrap_servers: str, partitions: list[Any], timeout_s: float = 30
) -> list[Iterator[Any]]:
    """For each partition, its committed messages from its start to its current end, in order.

    Every partition's reader is connected and fetching before the first is read (one after
    the other would wait for each one's first fetch in turn); each keeps a small prefetch."""
    from confluent_kafka import Consumer, TopicPartition

    from infra.kafka import CONSUMER_LIMITS

    consumers = []
    for partition in partitions:
        consumer = Consumer(
            {
                "bootstrap.servers": bootstrap_servers,
                "group.id": "audit-verify",
                "enable.auto.commit": False,
                "enable.partition.eof": True,
                "isolation.level": "read_committed",
                "queued.max.messages.kbytes": 8192,
                **CONSUMER_LIMITS,
            }
        )
        consumer.assign([TopicPartition(partition.topic, partition.partition, 0)])
        consumers.append(consumer)
    return [_read_to_end(consumer, timeout_s) for consumer in consumers]


def _read_to_end(consumer: Any, timeout_s: float) -> Iterator[Any]:
    from confluent_kafka import KafkaError

    try:
        while True:
            first = consumer.poll(timeout_s)  # then what has arrived: consume(n) alone waits
            if first is None:  # for n messages or the whole timeout
                raise TimeoutError(f"Kafka did not answer within {timeout_s} s")
            for message in [first, *consumer.consume(999, 0)]:
                error = message.error()
                if error is None:
                    yield message
                elif error.code() == KafkaError._PARTITION_EOF:
                    return
                else:
                    raise RuntimeError(str(error))
    finally:
        consumer.close()


def _carried_links(messages: Iterator[Any]) -> Iterator[tuple[int, bytes]]:
    from infra.kafka import message_headers

    for message in messages:
        headers = message_headers(message)
        if "chain-hash" in headers:
            yield int(headers["notification-id"]), bytes.fromhex(headers["chain-hash"])
