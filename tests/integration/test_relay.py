"""The relay publishes the event store's log to Kafka exactly once, even when killed mid-batch."""

from __future__ import annotations

import json
import random
import re
import threading
import time
from pathlib import Path

from confluent_kafka import OFFSET_END, Consumer, TopicPartition

from tests.integration.conftest import Stack, register_households
from tests.integration.kafka_reading import read_topic
from tests.support import Service, wait_until


def store_log(stack: Stack) -> list[tuple[int, str]]:
    """(notification id, case id) for every stored event, in log order."""
    from infra.contract import to_record

    app = stack.container.application
    out = []
    for n in app.recorder.select_notifications(start=1, limit=1_000_000):
        _, record = to_record(app.mapper.to_domain_event(n))
        out.append((n.id, str(record["case_id"])))
    return out


def relay_env(stack: Stack, batch_size: int) -> dict[str, str]:
    return {
        "DATABASE_URL": stack.settings.database_url or "",
        "KAFKA_BOOTSTRAP_SERVERS": stack.settings.kafka_bootstrap_servers or "",
        "KAFKA_TOPIC_PREFIX": stack.settings.kafka_topic_prefix,
        "RELAY_BATCH_SIZE": str(batch_size),
        "LOG_LEVEL": "debug",
        "LOG_FORMAT": "json",
    }


def committed_batches(log_text: str) -> int:
    return log_text.count('"relay batch committed"')


def committed_position(log_text: str) -> int:
    positions = [int(p) for p in re.findall(r'"position": (\d+)', log_text)]
    return max(positions, default=0)


def kill_inside_a_transaction(
    relay: Service, bootstrap: str, topic: str, after_batches: int = 0, timeout_s: float = 60
) -> bool:
    """SIGKILL the relay, once it has committed ``after_batches`` batches, as soon as a record
    it has not yet committed reaches the broker.

    A read_uncommitted consumer sees records of the open transaction; the relay's log says
    which positions it committed. Returns whether the kill hit an open transaction (the
    relay may still win the race and commit first; the caller counts the hits).
    """
    watcher = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"watcher-{random.random()}",
            "isolation.level": "read_uncommitted",
            "enable.auto.commit": False,
        }
    )
    try:
        partitions = watcher.list_topics(topic, timeout=10).topics[topic].partitions
        watcher.assign([TopicPartition(topic, p, OFFSET_END) for p in partitions])
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert relay.process is not None
            if relay.process.poll() is not None:
                return False
            message = watcher.poll(0.005)
            if message is None or message.error() is not None:
                continue
            seen = int(dict(message.headers() or [])["notification-id"].decode())
            output = relay.output()
            if committed_batches(output) >= after_batches and seen > committed_position(output):
                relay.kill()
                return True
        raise AssertionError("the relay published nothing to kill it in")
    finally:
        if relay.process is not None and relay.process.poll() is None:
            relay.kill()
        watcher.close()


def test_relay_killed_mid_batch_resumes_with_no_gap_and_no_duplicate(
    stack: Stack, tmp_path: Path
) -> None:
    total = register_households(stack.container, 600)
    env = relay_env(stack, batch_size=150)
    bootstrap = stack.settings.kafka_bootstrap_servers or ""

    hits = 0
    for round_, after_batches in enumerate([0, 2, 1, 3]):
        relay = Service(["relay"], env, tmp_path / f"relay-{round_}.log").start()
        hits += kill_inside_a_transaction(
            relay, bootstrap, stack.container.topics.cases, after_batches
        )
        if round_ == 1:
            # More events arrive while the relay is down.
            total += register_households(stack.container, 50)
    assert hits > 0, "no kill landed inside an open transaction; the test proved nothing"

    relay = Service(["relay"], env, tmp_path / "relay-final.log").start()
    try:
        expected = store_log(stack)
        assert len(expected) == total
        last_id = expected[-1][0]

        def caught_up() -> bool:
            lines = [
                json.loads(line) for line in relay.output().splitlines() if line.startswith("{")
            ]
            return any(line.get("position") == last_id for line in lines)

        wait_until(caught_up, timeout_s=120, what="the relay to publish the whole log")
    finally:
        relay.stop()

    messages = read_topic(
        stack.settings.kafka_bootstrap_servers or "", stack.container.topics.cases
    )
    ids = [int(m.headers["notification-id"]) for m in messages]
    assert len(ids) == len(set(ids)), "a notification was published twice"
    assert sorted(ids) == [n for n, _ in expected], "the topic and the event store's log differ"

    # In order: within every partition, notification ids only grow ...
    for partition in {m.partition for m in messages}:
        in_partition = [
            int(m.headers["notification-id"]) for m in messages if m.partition == partition
        ]
        assert in_partition == sorted(in_partition)
    # ... and every case lives in one partition, keyed by its id.
    case_of = dict(expected)
    partitions_of_case: dict[str, set[int]] = {}
    for m in messages:
        assert m.key.decode() == case_of[int(m.headers["notification-id"])]
        partitions_of_case.setdefault(m.key.decode(), set()).add(m.partition)
    assert all(len(p) == 1 for p in partitions_of_case.values())

    # The killed transactions' records reached the broker, and were aborted, not delivered.
    everything = read_topic(bootstrap, stack.container.topics.cases, committed=False)
    assert len(everything) > len(messages)


def test_relay_started_twice_fences_the_older_one(stack: Stack, tmp_path: Path) -> None:
    """A second relay with the same transactional id takes over; the log is still published once."""
    register_households(stack.container, 100)
    env = relay_env(stack, batch_size=25)
    first = Service(["relay"], env, tmp_path / "first.log").start()
    wait_until(lambda: committed_batches(first.output()) >= 1, timeout_s=60, what="first relay")
    second = Service(["relay"], env, tmp_path / "second.log").start()
    try:
        expected = store_log(stack)
        last_id = expected[-1][0]
        wait_until(
            lambda: (
                f'"position": {last_id}' in second.output()
                or f'"position": {last_id}' in first.output()
            ),
            timeout_s=120,
            what="the log to be published",
        )
        time.sleep(0.5)
    finally:
        second.stop()
        first.stop()
    messages = read_topic(
        stack.settings.kafka_bootstrap_servers or "", stack.container.topics.cases
    )
    ids = sorted(int(m.headers["notification-id"]) for m in messages)
    assert ids == [n for n, _ in expected]


def test_relay_stops_cleanly_on_sigterm(stack: Stack, tmp_path: Path) -> None:
    register_households(stack.container, 5)
    relay = Service(["relay"], relay_env(stack, 10), tmp_path / "relay.log").start()
    wait_until(lambda: "relay started" in relay.output(), timeout_s=60, what="relay start")
    stopper = threading.Thread(target=relay.stop)
    stopper.start()
    stopper.join(30)
    assert relay.process is not None and relay.process.returncode == 0, relay.output()[-2000:]
    assert "relay stopped" in relay.output()
