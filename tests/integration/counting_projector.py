"""A projection that is NOT idempotent on purpose: one row per event it applies, no key.

Run as ``python -m tests.integration.counting_projector`` so a test can SIGKILL it: if the
runner ever applied an event twice or skipped one, the row count would show it.
"""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

from psycopg import Cursor

from projections.runner import KafkaProjector, Projection

DDL = "CREATE TABLE IF NOT EXISTS seen_events (event_id uuid NOT NULL, event_type text NOT NULL)"


def seen(event_type: str) -> Any:
    def apply(cur: Cursor[Any], record: dict[str, Any]) -> None:
        cur.execute(
            "INSERT INTO seen_events (event_id, event_type) VALUES (%s, %s)",
            (record["event_id"], event_type),
        )

    return apply


COUNTING = Projection(
    "counting",
    DDL,
    {
        "reintegration.registry.HouseholdRegistered": seen("HouseholdRegistered"),
        "reintegration.registry.PersonRegistered": seen("PersonRegistered"),
    },
)

if __name__ == "__main__":
    prefix = os.environ["KAFKA_TOPIC_PREFIX"]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    KafkaProjector(
        COUNTING,
        database_url=os.environ["DATABASE_URL"],
        bootstrap_servers=os.environ["KAFKA_BOOTSTRAP_SERVERS"],
        topics=[f"{prefix}.cases"],
        group_id=f"{prefix}.counting",
        batch_size=20,
        group_instance_id="counting-under-test",
    ).run(stop)
