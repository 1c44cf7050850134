"""A signed checkpoint that could not reach Kafka is kept and published once Kafka answers."""

from __future__ import annotations

from confluent_kafka import Producer

from infra import tamper_evidence
from infra.resilience import KafkaUnavailable
from tests.integration.conftest import Stack, register_households
from tests.integration.kafka_reading import read_topic


def test_a_checkpoint_kafka_did_not_acknowledge_is_published_later_and_only_once(
    stack: Stack,
) -> None:
    container = stack.container
    container.projections.prepare()
    register_households(container, 3)
    url = container.database_url
    chain_table = container.application.recorder.chain_table_name  # type: ignore[attr-defined]
    topic = container.topics.audit_checkpoints
    key = tamper_evidence.signing_key(tamper_evidence.DEMO_SIGNING_KEY)
    unreachable = Producer({"bootstrap.servers": "127.0.0.1:1", "message.timeout.ms": 1000})

    try:
        tamper_evidence.write_checkpoint(url, chain_table, key, unreachable, topic)
        raise AssertionError("an unacknowledged checkpoint was taken as published")
    except KafkaUnavailable:
        pass
    stored = tamper_evidence.stored_checkpoints(url)
    assert len(stored) == 1, "the checkpoint is kept in the database"

    container.ensure_topics()
    live = Producer({"bootstrap.servers": container.settings.kafka_bootstrap_servers})
    assert tamper_evidence.publish_checkpoints(url, live, topic) == 1
    assert tamper_evidence.publish_checkpoints(url, live, topic) == 0
    published = read_topic(container.settings.kafka_bootstrap_servers or "", topic)
    assert [m.key for m in published] == [str(stored[0].position).encode()]
