"""Running and administering the projections: a projection's runner (on Kafka, or on the event
store's log in embedded mode), its status and lag, a rebuild with an atomic swap, and the
auditor's cross-check of a read model against one rebuilt from the log."""

from __future__ import annotations

import threading
from functools import cached_property
from typing import Any

from application.reports import AuditReport
from infra import contract
from infra.config import Settings
from infra.contract import Topics
from infra.kafka import CONSUMER_GROUP, CONSUMER_LIMITS, PRODUCER_LIMITS, client_config
from infra.relay import relay_mapper
from infra.resilience import KafkaWatch
from projections import eligibility, households, housing
from projections.runner import EventStoreProjector, KafkaProjector, Projection

PROJECTIONS = {
    households.NAME: Projection(
        households.NAME, households.DDL, households.HANDLERS, households.BATCH_HANDLERS
    ),
    eligibility.NAME: Projection(eligibility.NAME, eligibility.DDL, eligibility.HANDLERS),
    housing.NAME: Projection(housing.NAME, housing.DDL, housing.HANDLERS),
}


def kafka_settings(**extra: object) -> dict[str, object]:
    """The project's client settings (logging, reconnection) for a projector's clients, which
    name themselves and their brokers."""
    settings = client_config("", **extra)
    del settings["bootstrap.servers"], settings["client.id"]
    return settings


class ProjectionAdmin:
    def __init__(
        self, settings: Settings, database_url: str, application: Any, topics: Topics
    ) -> None:
        self.settings = settings
        self.database_url = database_url
        self.application = application
        self.topics = topics

    def prepare(self) -> None:
        """Every projection's schema and tables, and the audit tables (idempotent). Nothing
        when the owner role keeps them (``DATABASE_SCHEMA_MANAGED=owner``)."""
        from infra import tamper_evidence
        from projections.runner import prepare

        if not self.settings.manages_schema:
            return

        for projection in PROJECTIONS.values():
            prepare(self.database_url, projection)
        tamper_evidence.prepare(self.database_url)

    def catch_up(self) -> None:
        """Without Kafka, bring every projection up to the end of the event store's log (for a
        command-line process that shows views no `serve` may be keeping up to date). With
        Kafka, the projector processes do that; this does nothing."""
        self.prepare()
        if self.settings.kafka_bootstrap_servers:
            return
        for name in PROJECTIONS:
            self.projector(name).run(threading.Event(), until_caught_up=True)

    @cached_property
    def _mapper(self) -> Any:
        return relay_mapper(self.application)

    def encode_notification(self, notification: Any) -> tuple[bytes, dict[str, str], bytes]:
        """A stored event as Kafka would carry it: Avro single-object bytes, the headers and the
        message key (the relay's: the event's partition key, which orders a case's events),
        read as the relay reads it."""
        event = self._mapper.to_domain_event(notification)
        schema_name, value = contract.encode(event)
        key = str(event.partition_key).encode()
        return value, contract.headers(schema_name, event, notification.id), key

    def projector(
        self,
        name: str,
        schema: str | None = None,
        group_id: str | None = None,
        group_instance_id: str | None = None,
    ) -> KafkaProjector | EventStoreProjector:
        """The projection's runner: on Kafka when configured, else on the event store's log.

        A runner into a schema of its own (a rebuild, the auditor's scratch tables) creates it,
        whoever manages the live ones: only a role that may create schemas (the owner) runs it.
        """
        projection = PROJECTIONS[name]
        prepare_schema = schema is not None or self.settings.manages_schema
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
                consumer_config=kafka_settings(**CONSUMER_LIMITS, **CONSUMER_GROUP),
                producer_config=kafka_settings(**PRODUCER_LIMITS),
                watch=KafkaWatch(),
                prepare_schema=prepare_schema,
            )
        return self._log_projector(projection, schema)

    def _log_projector(self, projection: Projection, schema: str | None) -> EventStoreProjector:
        recorder: Any = self.application.recorder
        prepare_schema = schema is not None or self.settings.manages_schema
        return EventStoreProjector(
            projection,
            database_url=self.database_url,
            select_notifications=lambda start, limit: recorder.select_notifications(start, limit),
            encode_notification=self.encode_notification,
            max_notification_id=recorder.max_notification_id,
            channel=recorder.channel_name,
            schema=schema,
            batch_size=self.settings.projection_batch_size,
            prepare_schema=prepare_schema,
        )

    def source_ends(self) -> dict[tuple[str, int], int]:
        """Where every source of the projections ends now: Kafka high watermarks, or the log's end."""
        from projections.admin import event_store_end

        if not self.settings.kafka_bootstrap_servers:
            return event_store_end(self.application.recorder.max_notification_id())
        from infra.kafka import high_watermarks

        return high_watermarks(self.settings.kafka_bootstrap_servers, self.topics.event_topics)

    def status(self, name: str, schema: str | None = None) -> Any:
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
                on_progress(self.status(name, schema=target))
        if failures:
            raise failures[0]
        if stop.is_set() or not projector.caught_up.is_set():
            return False
        swap_in(self.database_url, projection.schema, target)
        return True

    def cross_check(self, name: str, generated_by: str) -> AuditReport:
        """Rebuild a projection from the start of the event store's log into scratch tables and
        compare them with the live ones."""
        from projections.admin import compare_schemas, drop_schema

        projection = PROJECTIONS[name]
        scratch = f"audit_scratch_{name}"
        drop_schema(self.database_url, scratch)
        try:
            self._log_projector(projection, scratch).run(threading.Event(), until_caught_up=True)
            report = compare_schemas(self.database_url, projection.schema, scratch, generated_by)
            report.subject = name
            lag = self.status(name).total_lag
            report.summary["live lag"] = lag
            if lag:
                report.note(
                    problem=f"the live projection is {lag} behind its source: differences may be "
                    "events it has not applied yet; run again once its lag is 0"
                )
            return report
        finally:
            drop_schema(self.database_url, scratch)
