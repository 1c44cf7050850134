"""The composition root: builds every piece from Settings, once, and wires them. Nothing else.

Nothing is connected at import time; a process builds a Container and closes it when done.
What the pieces do lives elsewhere: the use cases in ``application/``, the projections'
administration in ``infra/projection_admin.py``, the audit trail in ``infra/audit_trail.py``,
the background workers in ``infra/supervision.py``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import structlog
from psycopg import sql
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from application import services
from application.services import Services
from application.store import ReintegrationApplication
from infra import contract
from infra.config import Settings
from infra.contract import Topics
from infra.database_roles import check_schema
from infra.event_store import PostgresEventStore
from infra.freshness import Freshness
from infra.idempotency import IdempotencyKeys
from infra.postgres import CONNECTION_WAIT_S, eventsourcing_env, schema_lock, start_embedded
from infra.projection_admin import PROJECTIONS, ProjectionAdmin
from infra.resilience import POSTGRESQL, dependency

if TYPE_CHECKING:  # built on first use: it loads the cryptography package
    from infra.audit_trail import AuditTrail

log = structlog.get_logger(__name__)

__all__ = ["PROJECTIONS", "Container"]


def event_type(event: Any) -> str:
    """How a case's history names an event: its Avro schema's full name."""
    try:
        return contract.schema_name_for(event)
    except contract.UnmappedEvent:
        return type(event).__qualname__


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
        manages_schema = self.settings.manages_schema
        env = eventsourcing_env(
            self.database_url, self.settings.db_pool_size, manages_schema=manages_schema
        )
        if manages_schema:
            with schema_lock(self.database_url):  # processes started together create tables once
                app = ReintegrationApplication(env=env)
        else:  # the application role: the owner made every table (reintegration db create-roles)
            app = ReintegrationApplication(env=env)
        self._closers.append(app.close)
        if not manages_schema:
            recorder: Any = app.recorder
            check_schema(self.database_url, recorder.datastore.schema, recorder.events_table_name)
        # After PostgreSQL restarts, the pool's idle connections are dead: drop them at once.
        dependency(POSTGRESQL).when_back.append(app.recorder.datastore.pool.check)  # type: ignore[attr-defined]
        return app

    @cached_property
    def store(self) -> PostgresEventStore:
        return PostgresEventStore(self.application)

    @cached_property
    def idempotency_keys(self) -> IdempotencyKeys:
        """The keyed commands' answers, kept by the event store's recorder (same database)."""
        recorder: Any = self.application.recorder
        keys: IdempotencyKeys = recorder.idempotency_keys
        return keys

    @cached_property
    def services(self) -> Services:
        from infra.cel_language import CelLanguage
        from infra.lottery_participants import PublishedParticipantKeys

        return services.build(
            self.store,
            CelLanguage(),
            self.settings.default_rule_set,
            event_type,
            PublishedParticipantKeys(
                self.settings.lottery_participant_keys, self.settings.audit_log_origin
            ),
        )

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
            timeout=CONNECTION_WAIT_S,
            kwargs={"row_factory": dict_row, "connect_timeout": 3},
            configure=configure,
            open=True,
            name="read-models",
        )
        self._closers.append(pool.close)
        dependency(POSTGRESQL).when_back.append(pool.check)
        return pool

    def query(self, view: Any, *args: Any, **kwargs: Any) -> Any:
        """Run one read-model query function (``view(cursor, ...)``) on a pooled connection."""
        with self.read_pool.connection() as conn, conn.cursor() as cur:
            return view(cur, *args, **kwargs)

    @cached_property
    def freshness(self) -> Freshness:
        recorder: Any = self.application.recorder
        return Freshness(recorder.events_table_name, self.settings.kafka_enabled)

    def database_pools(self) -> list[Any]:
        """The connection pools of the read models and of the event store (the library's),
        those built so far."""
        built = self.__dict__
        pools = [built["read_pool"]] if "read_pool" in built else []
        if "application" in built:
            pools.append(built["application"].recorder.datastore.pool)
        return pools

    @cached_property
    def projections(self) -> ProjectionAdmin:
        return ProjectionAdmin(self.settings, self.database_url, self.application, self.topics)

    @cached_property
    def audit_trail(self) -> AuditTrail:
        from infra.audit_trail import AuditTrail

        recorder: Any = self.application.recorder
        return AuditTrail(
            self.settings,
            self.database_url,
            recorder.events_table_name,
            recorder.chain_table_name,
            self.topics,
            connection=lambda: self.read_pool.connection(),
            application=self.application,
        )

    def ensure_topics(self) -> None:
        from infra.kafka import ensure_topics

        if not self.settings.kafka_bootstrap_servers:
            raise RuntimeError("KAFKA_BOOTSTRAP_SERVERS is not set")
        ensure_topics(
            self.settings.kafka_bootstrap_servers,
            self.topics,
            self.settings.kafka_partitions,
            self.settings.kafka_replication_factor,
            self.settings.kafka_min_insync_replicas,
        )

    def relay(self) -> Any:
        from infra.relay import Relay, relay_mapper

        if not self.settings.kafka_bootstrap_servers:
            raise RuntimeError("the relay needs KAFKA_BOOTSTRAP_SERVERS")
        return Relay(
            recorder=self.application.recorder,  # type: ignore[arg-type]
            mapper=relay_mapper(self.application),
            database_url=self.database_url,
            bootstrap_servers=self.settings.kafka_bootstrap_servers,
            topics=self.topics,
            batch_size=self.settings.relay_batch_size,
            prepare_schema=self.settings.manages_schema,
        )

    def close(self) -> None:
        while self._closers:
            closer = self._closers.pop()
            try:
                closer()
            except Exception:
                log.exception("error while closing")
