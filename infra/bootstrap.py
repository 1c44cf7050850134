"""The composition root: builds every piece of infrastructure from Settings, once.

Nothing is connected at import time; callers build a Container and close it when done.
"""

from __future__ import annotations

import threading
import warnings
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
from projections import households
from projections.runner import EventStoreProjector, KafkaProjector, Projection

log = structlog.get_logger(__name__)

PROJECTIONS = {
    households.NAME: Projection(households.NAME, households.DDL, households.HANDLERS),
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
        log.info("embedded postgres", url=url, data_dir=str(self.settings.data_dir / "postgres"))
        return url

    @cached_property
    def application(self) -> ReintegrationApplication:
        env = eventsourcing_env(self.database_url, self.settings.db_pool_size)
        app = ReintegrationApplication(env=env)
        self._closers.append(app.close)
        return app

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

    def prepare_read_models(self) -> None:
        from projections.runner import prepare

        for projection in PROJECTIONS.values():
            prepare(self.database_url, projection)

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
        self, stop: threading.Event, *, relay: bool, projections: bool
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
        for thread in threads:
            thread.start()
        return threads

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
