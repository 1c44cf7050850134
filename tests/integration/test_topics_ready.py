"""Topics just created are ready for producers and readers as soon as ``ensure_topics`` returns
(a fresh broker elects each new partition's leader a moment after the topic exists)."""

from __future__ import annotations

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

from infra.contract import Topics
from infra.kafka import ensure_topics, high_watermarks
from infra.relay import read_position


def test_every_partition_of_freshly_created_topics_has_a_leader_when_ensure_topics_returns(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    topics = Topics(topic_prefix)
    ensure_topics(kafka_bootstrap, topics, partitions=6)

    found = AdminClient({"bootstrap.servers": kafka_bootstrap}).list_topics(timeout=10).topics
    names = [*topics.event_topics, topics.relay_position, topics.dead_letters]
    leaderless = [
        (name, number)
        for name in names
        for number, partition in found[name].partitions.items()
        if partition.error is not None or partition.leader < 0
    ]
    assert leaderless == []
    assert all(len(found[name].partitions) == 6 for name in topics.event_topics)


def test_producing_to_every_partition_right_after_creating_the_topics_succeeds(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    topics = Topics(topic_prefix)
    ensure_topics(kafka_bootstrap, topics, partitions=6)
    # At once, as the relay does: the partitions' ends, the position, then a transaction.
    assert set(high_watermarks(kafka_bootstrap, topics.event_topics).values()) == {0}
    assert read_position(kafka_bootstrap, topics.relay_position) == 0
    producer = Producer(
        {
            "bootstrap.servers": kafka_bootstrap,
            "transactional.id": f"{topic_prefix}.ready-test",
            "message.timeout.ms": 20000,
        }
    )
    producer.init_transactions(30)
    producer.begin_transaction()
    failures: list[str] = []
    for topic in topics.event_topics:
        for partition in range(6):
            producer.produce(
                topic,
                value=b"x",
                partition=partition,
                on_delivery=lambda error, _m: failures.append(str(error)) if error else None,
            )
    producer.commit_transaction(30)
    assert failures == []
    ends = high_watermarks(kafka_bootstrap, topics.event_topics)
    assert all(end >= 1 for end in ends.values()), ends
