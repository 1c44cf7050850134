"""Reading whole topics back, as committed (read_committed) or with aborted records (read_uncommitted)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaError, TopicPartition


@dataclass(frozen=True)
class ReadMessage:
    partition: int
    offset: int
    key: bytes
    value: bytes
    headers: dict[str, str]


def read_topic(
    bootstrap: str, topic: str, *, committed: bool = True, timeout_s: float = 30
) -> list[ReadMessage]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{secrets.token_hex(4)}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "isolation.level": "read_committed" if committed else "read_uncommitted",
        }
    )
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        partitions = sorted(metadata.topics[topic].partitions)
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        done: set[int] = set()
        out: list[ReadMessage] = []
        while len(done) < len(partitions):
            message = consumer.poll(timeout_s)
            assert message is not None, f"no answer from {topic} within {timeout_s} s"
            error = message.error()
            if error is not None:
                assert error.code() == KafkaError._PARTITION_EOF, error
                done.add(message.partition())
                continue
            headers = {k: v.decode() for k, v in (message.headers() or [])}
            out.append(
                ReadMessage(
                    message.partition(), message.offset(), message.key(), message.value(), headers
                )
            )
        return out
    finally:
        consumer.close()
