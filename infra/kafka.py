"""Kafka plumbing shared by the relay and the projections: topics and client settings."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import structlog
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
    ResourceType,
)

from infra.contract import CONSUMER_FETCH_MAX_BYTES, MAX_MESSAGE_BYTES, Topics

log = structlog.get_logger(__name__)
T = TypeVar("T")


def ensure_topics(
    bootstrap_servers: str,
    topics: Topics,
    partitions: int,
    replication_factor: int = 1,
    min_insync_replicas: int = 1,
) -> None:
    """Create the project's topics if they are missing (with the replication factor and
    ``min.insync.replicas`` given: 3 and 2 in production), and give every one the project's
    message size limit (``max.message.bytes``; idempotent). Nothing else of an existing topic
    is changed."""
    admin = AdminClient(client_config(bootstrap_servers))
    sized = {
        "max.message.bytes": str(MAX_MESSAGE_BYTES),
        "min.insync.replicas": str(min_insync_replicas),
    }
    forever = {"retention.ms": "-1", "retention.bytes": "-1", **sized}  # the events are the record
    wanted = [
        NewTopic(
            name, num_partitions=partitions, replication_factor=replication_factor, config=forever
        )
        for name in topics.event_topics
    ]
    wanted.append(
        NewTopic(
            topics.relay_position,
            num_partitions=1,
            replication_factor=replication_factor,
            config={"cleanup.policy": "compact", **sized},
        )
    )
    for single in (topics.dead_letters, topics.audit_checkpoints, topics.audit_cosignatures):
        wanted.append(
            NewTopic(
                single, num_partitions=1, replication_factor=replication_factor, config=forever
            )
        )
    existing = set(admin.list_topics(timeout=10).topics)
    missing = [t for t in wanted if t.topic not in existing]
    for name, future in (
        admin.create_topics(missing, operation_timeout=30).items() if missing else []
    ):
        try:
            future.result()
            log.info("topic created", topic=name)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
    _ensure_message_limit(admin, [t.topic for t in wanted if t.topic in existing])
    wait_for_leaders(admin, [t.topic for t in wanted])


LEADERS_TIMEOUT_S = 60.0


def wait_for_leaders(
    admin: AdminClient, topics: list[str], timeout_s: float = LEADERS_TIMEOUT_S
) -> None:
    """Until every partition of the topics has a leader in the cluster's metadata.

    A topic just created exists before its partitions have leaders: a client that produces,
    or asks a partition's end, in between is told ``NOT_LEADER_FOR_PARTITION`` (or
    ``LEADER_NOT_AVAILABLE``). Raises :class:`TimeoutError` when some partition still has
    none after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        waiting = _leaderless(admin, topics)
        if not waiting:
            return
        if time.monotonic() >= deadline:
            raise TimeoutError(
                f"no leader after {timeout_s:.0f} s for {len(waiting)} partitions, e.g. {waiting[0]}"
            )
        time.sleep(0.1)


RETRIABLE_AT_START = frozenset(
    {
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
    }
)


def retrying(call: Callable[[], T], timeout_s: float = LEADERS_TIMEOUT_S) -> T:
    """``call()``, again after a short pause while it fails with an error Kafka calls retriable
    or one a partition gives while its leader is elected (its metadata may lag behind the
    admin client's); the last error after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return call()
        except KafkaException as exc:
            error = exc.args[0]
            if not (
                isinstance(error, KafkaError)
                and (error.retriable() or error.code() in RETRIABLE_AT_START)
            ):
                raise
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.1)


def _leaderless(admin: AdminClient, topics: list[str]) -> list[str]:
    try:
        found = admin.list_topics(timeout=5).topics
    except KafkaException:
        return list(topics)  # no answer yet: ask again
    waiting = []
    for name in topics:
        topic = found.get(name)
        if topic is None or topic.error is not None or not topic.partitions:
            waiting.append(name)
            continue
        waiting.extend(
            f"{name}[{number}]"
            for number, partition in sorted(topic.partitions.items())
            if partition.error is not None or partition.leader < 0
        )
    return waiting


def _ensure_message_limit(admin: AdminClient, names: list[str]) -> None:
    """Topics created before the limit was set get it (older deployments)."""
    if not names:
        return
    resources = [ConfigResource(ResourceType.TOPIC, name) for name in names]
    described = admin.describe_configs(resources)
    stale = []
    for resource, future in described.items():
        entry = future.result(timeout=30).get("max.message.bytes")
        if entry is None or int(entry.value or 0) < MAX_MESSAGE_BYTES:
            stale.append(
                ConfigResource(
                    ResourceType.TOPIC,
                    resource.name,
                    incremental_configs=[
                        ConfigEntry(
                            "max.message.bytes",
                            str(MAX_MESSAGE_BYTES),
                            incremental_operation=AlterConfigOpType.SET,
                        )
                    ],
                )
            )
    for resource, future in admin.incremental_alter_configs(stale).items() if stale else []:
        future.result(timeout=30)
        log.info(
            "topic message limit set", topic=resource.name, max_message_bytes=MAX_MESSAGE_BYTES
        )


def message_headers(message: Any) -> dict[str, str]:
    """A message's headers as text (values are UTF-8 here)."""
    out: dict[str, str] = {}
    for key, value in message.headers() or []:
        out[key] = (
            value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value or "")
        )
    return out


def client_config(bootstrap_servers: str, **extra: Any) -> dict[str, Any]:
    """Every Kafka client's settings: the client's own log lines go through structlog, rate
    limited; a lost broker is tried again within a second (the client's default waits up to
    ten), so work resumes soon after the broker is back."""
    from infra.resilience import kafka_client_logger

    return {
        "bootstrap.servers": bootstrap_servers,
        "client.id": "reintegration",
        "logger": kafka_client_logger(),
        "reconnect.backoff.ms": 100,
        "reconnect.backoff.max.ms": 1000,
        **extra,
    }


CONSUMER_GROUP: dict[str, object] = {
    "session.timeout.ms": 6000,
    "heartbeat.interval.ms": 1500,
}
"""What a projector's consumer sets: a member that died is noticed after 6 s (the client's
default is 45 s, for which a restarted projector waited before it got its partitions back); 6 s
is the least a broker accepts by default (``group.min.session.timeout.ms``)."""


PRODUCER_LIMITS: dict[str, object] = {"message.max.bytes": MAX_MESSAGE_BYTES}
"""What the project's producers set: the same message limit as the topics."""
CONSUMER_LIMITS: dict[str, object] = {
    "fetch.max.bytes": CONSUMER_FETCH_MAX_BYTES,
    "receive.message.max.bytes": CONSUMER_FETCH_MAX_BYTES + 512,
}
"""What the project's consumers set: a fetch holds the largest message (the per-partition
fetch size stays small; the client raises it for a message larger than it)."""


def kafka_partitions(bootstrap_servers: str, topics: list[str]) -> list[Any]:
    """Every partition of the topics that exist."""
    from confluent_kafka import TopicPartition

    admin = AdminClient(client_config(bootstrap_servers))
    found = admin.list_topics(timeout=10).topics
    return [
        TopicPartition(topic, p)
        for topic in topics
        if topic in found and found[topic].error is None
        for p in sorted(found[topic].partitions)
    ]


def high_watermarks(bootstrap_servers: str, topics: list[str]) -> dict[tuple[str, int], int]:
    """Where every partition of the topics ends now."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(client_config(bootstrap_servers, **{"group.id": "status"}))
    try:
        ends = {}
        for topic in topics:
            metadata = consumer.list_topics(topic, timeout=10).topics[topic]
            for partition in metadata.partitions:
                part = TopicPartition(topic, partition)
                _, high = retrying(
                    lambda part=part: consumer.get_watermark_offsets(part, timeout=10, cached=False)  # type: ignore[misc]
                )
                ends[(topic, partition)] = high
        return ends
    finally:
        consumer.close()


def read_partitions(
    bootstrap_servers: str, partitions: list[Any], timeout_s: float = 30
) -> list[Iterator[Any]]:
    """For each partition, its committed messages from its start to its current end, in order.

    Every partition's reader is connected and fetching before the first is read (one after
    the other would wait for each one's first fetch in turn); each keeps a small prefetch."""
    from confluent_kafka import Consumer, TopicPartition

    consumers = []
    for partition in partitions:
        consumer = Consumer(
            client_config(
                bootstrap_servers,
                **{
                    "group.id": "audit-verify",
                    "enable.auto.commit": False,
                    "enable.partition.eof": True,
                    "isolation.level": "read_committed",
                    "queued.max.messages.kbytes": 8192,
                    **CONSUMER_LIMITS,
                },
            )
        )
        consumer.assign([TopicPartition(partition.topic, partition.partition, 0)])
        consumers.append(consumer)
    return [_read_to_end(consumer, timeout_s) for consumer in consumers]


def _read_to_end(consumer: Any, timeout_s: float) -> Iterator[Any]:
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


def kafka_probe(bootstrap_servers: str) -> Any:
    """A check that the cluster answers (raises when it does not within 2 s)."""

    def probe() -> object:
        return AdminClient(client_config(bootstrap_servers)).list_topics(timeout=2)

    return probe
