"""Rebuilding a projection into new tables while the old ones serve, then swapping atomically."""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path
from typing import Any

import psycopg

from projections.queries import households
from tests.integration.conftest import Stack, register_households
from tests.integration.test_dead_letters import publish_everything
from tests.integration.test_projection import snapshot
from tests.support import ROOT, Service, wait_until


def rows_in(database_url: str, schema: str) -> int:
    with psycopg.connect(database_url) as conn:
        if conn.execute("SELECT to_regclass(%s)", (f"{schema}.rm_households",)).fetchone() == (
            None,
        ):
            return 0
        row = conn.execute(f'SELECT count(*) FROM "{schema}".rm_households').fetchone()
        return int(row[0]) if row else 0


def generation(database_url: str, schema: str) -> Any:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(f'SELECT generation FROM "{schema}".projection_meta').fetchone()
        return row[0] if row else None


def test_rebuild_serves_from_the_old_tables_resumes_after_interruption_and_swaps_atomically(
    stack: Stack, tmp_path: Path
) -> None:
    container = stack.container
    database_url = stack.settings.database_url or ""
    register_households(container, 300)
    publish_everything(stack)

    # The live projector keeps running throughout, as it would in production.
    live_stop = threading.Event()
    live = container.projections.projector("households")
    live_thread = threading.Thread(target=live.run, args=(live_stop,))
    live_thread.start()
    try:
        wait_until(lambda: rows_in(database_url, "projection_households") == 300, timeout_s=60)
        old_generation = generation(database_url, "projection_households")
        with psycopg.connect(database_url) as conn:
            probe = conn.execute(
                "SELECT household_id FROM projection_households.rm_households LIMIT 1"
            ).fetchone()
        assert probe is not None

        # Queries keep being answered from the read pool (search_path) during the rebuild.
        misses: list[str] = []
        reading = threading.Event()

        def query_continuously() -> None:
            while not reading.is_set():
                with container.read_pool.connection() as conn, conn.cursor() as cur:
                    if households.get_household(cur, probe[0]) is None:
                        misses.append("household missing during rebuild")

        reader = threading.Thread(target=query_continuously)
        reader.start()

        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "KAFKA_BOOTSTRAP_SERVERS": stack.settings.kafka_bootstrap_servers or "",
            "KAFKA_TOPIC_PREFIX": stack.settings.kafka_topic_prefix,
            "PROJECTION_BATCH_SIZE": "10",
        }
        # First attempt: interrupted half-way.
        first = Service(
            ["projections", "rebuild", "households"], env, tmp_path / "rebuild-1.log"
        ).start()
        wait_until(
            lambda: rows_in(database_url, "projection_households__rebuild") >= 60,
            timeout_s=60,
            interval_s=0.01,
            what="the rebuild to make progress",
        )
        first.kill()
        halfway = rows_in(database_url, "projection_households__rebuild")
        assert 0 < halfway < 300

        # Second attempt resumes from where the first stopped, and swaps.
        second = subprocess.run(
            [str(ROOT / ".venv/bin/reintegration"), "projections", "rebuild", "households"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert second.returncode == 0, second.stderr[-3000:]
        assert "rebuilt and swapped in" in second.stderr
        reading.set()
        reader.join(30)
        assert misses == []

        with psycopg.connect(database_url) as conn:
            schemas = {r[0] for r in conn.execute("SELECT nspname FROM pg_namespace").fetchall()}
        assert "projection_households__rebuild" not in schemas
        assert "projection_households__retired" not in schemas
        assert generation(database_url, "projection_households") != old_generation
        assert rows_in(database_url, "projection_households") == 300

        # The live projector notices the swap and carries on into the new tables.
        register_households(container, 20)
        publish_everything(stack)
        wait_until(
            lambda: (
                rows_in(database_url, "projection_households") == 320
                # and every message applied (a household's persons may arrive on other partitions)
                and container.projections.status("households").total_lag == 0
            ),
            timeout_s=60,
        )
    finally:
        live_stop.set()
        live_thread.join(30)

    fresh = container.projections.projector("households", schema="fresh", group_id="fresh-check")
    fresh.run(threading.Event(), until_caught_up=True)
    assert snapshot(database_url, "projection_households") == snapshot(database_url, "fresh")

    status = subprocess.run(
        [str(ROOT / ".venv/bin/reintegration"), "projections", "status"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert status.returncode == 0, status.stderr
    assert "households" in status.stdout
    state = container.projections.status("households")
    assert len(state.partitions) == 6  # 3 partitions of the case events, 3 of reference data
    assert state.total_lag == 0


def test_status_in_embedded_mode_shows_the_position_in_the_event_store(stack: Stack) -> None:
    from dataclasses import replace

    from infra.bootstrap import Container

    embedded = Container(replace(stack.settings, kafka_bootstrap_servers=None))
    try:
        register_households(embedded, 12)
        last = embedded.application.recorder.max_notification_id() or 0
        embedded.projections.projector("households").run(threading.Event(), until_caught_up=True)
        state = embedded.projections.status("households")
        (part,) = state.partitions
        assert (part.source, part.position, part.end, part.lag) == (
            "$event-store",
            last + 1,
            last + 1,
            0,
        )
        assert embedded.projections.rebuild("households", threading.Event())
        assert rows_in(stack.settings.database_url or "", "projection_households") == 12
    finally:
        embedded.close()
