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
        self, name: str, schema: str | None = None, group_id: str | None = None
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
                group_instance_id=self.settings.kafka_group_instance_id,
            )
        app = self.application
        return EventStoreProjector(
            projection,
            database_url=self.database_url,
            select_notifications=lambda start, limit: app.recorder.select_notifications(
                start, limit
            ),
            decode_notification=self.decode_notification,
            channel=app.recorder.channel_name,  # type: ignore[attr-defined]
            schema=schema,
            batch_size=self.settings.projection_batch_size,
        )

    def decode_notification(self, notification: Any) -> tuple[str, dict[str, Any]]:
        """A stored event as the projections see it: through the same Avro encoding as Kafka."""
        import schemas

        event = self.application.mapper.to_domain_event(notification)
        _, value = contract.encode(event)
        schema, record = schemas.decode(value)
        return schema.name, record

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
