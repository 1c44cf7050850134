"""The households projection: exactly once into Postgres, from Kafka or from the event store."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from projections.runner import EventStoreProjector, KafkaProjector
from tests.integration.conftest import Stack, register_households
from tests.support import Service, wait_until

TABLES = {
    "rm_households": "household_id",
    "rm_household_members": "household_id, person_id",
    "rm_persons": "person_id",
}


def snapshot(database_url: str, schema: str) -> dict[str, list[tuple[Any, ...]]]:
    with psycopg.connect(database_url) as conn:
        return {
            table: conn.execute(
                sql.SQL("SELECT * FROM {}.{} ORDER BY " + order).format(
                    sql.Identifier(schema), sql.Identifier(table)
                )
            ).fetchall()
            for table, order in TABLES.items()
        }


def applied(database_url: str, schema: str) -> int:
    """Events the projection has applied: one row per household and per person."""
    with psycopg.connect(database_url) as conn:
        exists = conn.execute("SELECT to_regclass(%s)", (f"{schema}.rm_persons",)).fetchone()
        if exists is None or exists[0] is None:
            return 0
        row = conn.execute(
            sql.SQL(
                "SELECT (SELECT count(*) FROM {s}.rm_households) + (SELECT count(*) FROM {s}.rm_persons)"
            ).format(s=sql.Identifier(schema))
        ).fetchone()
        return int(row[0]) if row else 0


def publish_everything(stack: Stack) -> int:
    stop = threading.Event()
    relay = stack.container.relay()
    thread = threading.Thread(target=relay.run, args=(stop,))
    thread.start()
    try:
        last = stack.container.application.recorder.max_notification_id()
        wait_until(lambda: relay.published_position == last, timeout_s=60, what="the relay")
    finally:
        stop.set()
        thread.join(30)
    return int(last or 0)


def run_until(projector: Any, done: Any) -> None:
    stop = threading.Event()
    thread = threading.Thread(target=projector.run, args=(stop,))
    thread.start()
    try:
        wait_until(done, timeout_s=120, what="the projection to catch up")
    finally:
        stop.set()
        thread.join(30)


def test_projector_killed_and_restarted_equals_a_fresh_rebuild(
    stack: Stack, tmp_path: Path
) -> None:
    events = register_households(stack.container, 400)
    publish_everything(stack)
    database_url = stack.settings.database_url or ""
    schema = "projection_households"
    env = {
        "DATABASE_URL": database_url,
        "KAFKA_BOOTSTRAP_SERVERS": stack.settings.kafka_bootstrap_servers or "",
        "KAFKA_TOPIC_PREFIX": stack.settings.kafka_topic_prefix,
        "PROJECTION_BATCH_SIZE": "25",
        "KAFKA_GROUP_INSTANCE_ID": "projector-under-test",
        "LOG_FORMAT": "json",
    }
    progress = [0]
    for round_ in range(3):
        projector = Service(
            ["project", "households"], env, tmp_path / f"projector-{round_}.log"
        ).start()
        wait_until(
            lambda: applied(database_url, schema) > progress[0] + 100,
            timeout_s=60,
            interval_s=0.01,
            what="the projector to apply a few batches",
        )
        projector.kill()
        progress[0] = applied(database_url, schema)
        assert progress[0] < events, "the projector finished before it could be killed"

    projector = Service(["project", "households"], env, tmp_path / "projector-final.log").start()
    try:
        wait_until(
            lambda: applied(database_url, schema) == events, timeout_s=120, what="the projector"
        )
    finally:
        projector.stop()

    fresh = KafkaProjector(
        stack.container.projections.projector("households").projection,
        database_url=database_url,
        bootstrap_servers=stack.settings.kafka_bootstrap_servers or "",
        topics=stack.container.topics.event_topics,
        group_id=f"{stack.settings.kafka_topic_prefix}.fresh",
        schema="fresh_households",
    )
    run_until(fresh, lambda: applied(database_url, "fresh_households") == events)

    live = snapshot(database_url, schema)
    assert live == snapshot(database_url, "fresh_households")
    assert len(live["rm_households"]) == 400
    assert len(live["rm_persons"]) == events - 400


def test_projection_runner_killed_and_restarted_neither_skips_nor_repeats_an_event(
    stack: Stack, tmp_path: Path
) -> None:
    events = register_households(stack.container, 300)
    publish_everything(stack)
    database_url = stack.settings.database_url or ""
    env = {
        "DATABASE_URL": database_url,
        "KAFKA_BOOTSTRAP_SERVERS": stack.settings.kafka_bootstrap_servers or "",
        "KAFKA_TOPIC_PREFIX": stack.settings.kafka_topic_prefix,
    }

    def rows() -> tuple[int, int]:
        with psycopg.connect(database_url) as conn:
            if conn.execute("SELECT to_regclass('projection_counting.seen_events')").fetchone() == (
                None,
            ):
                return 0, 0
            found = conn.execute(
                "SELECT count(*), count(DISTINCT event_id) FROM projection_counting.seen_events"
            ).fetchone()
            assert found is not None
            return int(found[0]), int(found[1])

    program = [sys.executable, "-m", "tests.integration.counting_projector"]
    for round_ in range(4):
        before = rows()[0]
        runner = Service([], env, tmp_path / f"counting-{round_}.log", program=program).start()
        wait_until(
            lambda before=before: rows()[0] > before + 50,
            timeout_s=60,
            interval_s=0.005,
            what="progress",
        )
        runner.kill()
        total, distinct = rows()
        assert total == distinct, "an event was applied twice"
        assert total < events, "the runner finished before it could be killed"

    runner = Service([], env, tmp_path / "counting-final.log", program=program).start()
    try:
        wait_until(lambda: rows()[0] >= events, timeout_s=120, what="the runner to finish")
        time.sleep(1)  # anything applied twice would show up now
    finally:
        runner.stop()
    assert rows() == (events, events)


def test_projection_from_the_event_store_equals_the_projection_from_kafka(stack: Stack) -> None:
    register_households(stack.container, 60)
    last = publish_everything(stack)
    database_url = stack.settings.database_url or ""
    from_kafka = stack.container.projections.projector("households", schema="from_kafka")
    assert isinstance(from_kafka, KafkaProjector)
    run_until(from_kafka, lambda: applied(database_url, "from_kafka") == last)

    app = stack.container.application
    from_store = EventStoreProjector(
        from_kafka.projection,
        database_url=database_url,
        select_notifications=lambda start, limit: app.recorder.select_notifications(start, limit),
        encode_notification=stack.container.projections.encode_notification,
        max_notification_id=app.recorder.max_notification_id,
        channel=app.recorder.channel_name,  # type: ignore[attr-defined]
        schema="from_store",
    )
    run_until(from_store, lambda: applied(database_url, "from_store") == last)
    with psycopg.connect(database_url) as conn:
        position = conn.execute("SELECT next_offset FROM from_store.projection_offsets").fetchone()
    assert position == (last + 1,)

    assert snapshot(database_url, "from_kafka") == snapshot(database_url, "from_store")
