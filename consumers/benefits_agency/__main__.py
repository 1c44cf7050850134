"""The benefits agency's consumer: keeps its register of displaced households and persons.

At-least-once: rows are upserted (idempotent), then the Kafka offsets are committed.
Messages of types it does not use are skipped by their event-type header, before decoding.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from importlib.resources import files
from pathlib import Path
from typing import Any

import psycopg
from confluent_kafka import Consumer, KafkaError, KafkaException

from consumers.benefits_agency.contract import Contract, load

log = logging.getLogger("benefits_agency")

HOUSEHOLD = "reintegration.registry.HouseholdRegistered"
PERSON = "reintegration.registry.PersonRegistered"

UPSERT_HOUSEHOLD = """
INSERT INTO benefits_agency.idp_households
    (household_id, origin_settlement_code, head_fin, member_count, registered_at)
VALUES (%s, %s, %s, %s, %s)
ON CONFLICT (household_id) DO UPDATE SET
    origin_settlement_code = excluded.origin_settlement_code,
    head_fin = excluded.head_fin, member_count = excluded.member_count
"""
UPSERT_PERSON = """
INSERT INTO benefits_agency.idp_persons
    (fin, person_id, full_name, birth_date, household_id, registered_at, last_event_id)
VALUES (%s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (fin) DO UPDATE SET
    full_name = excluded.full_name, birth_date = excluded.birth_date,
    household_id = excluded.household_id, last_event_id = excluded.last_event_id
"""


def apply(cur: psycopg.Cursor[Any], event_type: str, e: dict[str, Any]) -> None:
    if event_type == HOUSEHOLD:
        head = next(m for m in e["members"] if m["relationship"] == "head")
        cur.execute(
            UPSERT_HOUSEHOLD,
            (
                e["case_id"],
                e["origin_settlement_code"],
                head["fin"],
                len(e["members"]),
                e["occurred_at"],
            ),
        )
    elif event_type == PERSON:
        name = " ".join(p for p in (e["first_name"], e["patronymic"], e["last_name"]) if p)
        cur.execute(
            UPSERT_PERSON,
            (
                e["fin"],
                e["aggregate_id"],
                name,
                e["birth_date"],
                e["household_id"],
                e["occurred_at"],
                e["event_id"],
            ),
        )


def header(message: Any, name: str) -> str | None:
    for key, value in message.headers() or []:
        if key == name and isinstance(value, bytes):
            return value.decode()
    return None


class BenefitsAgencyConsumer:
    def __init__(
        self, database_url: str, bootstrap_servers: str, schemas_dir: Path, topic: str | None = None
    ):
        self.database_url = database_url
        self.contract: Contract = load(schemas_dir, {"HouseholdRegistered", "PersonRegistered"})
        self.topic = topic or self.contract.topic
        self.bootstrap_servers = bootstrap_servers
        self.skipped = 0

    def run(self, stop: threading.Event, until_caught_up: bool = False) -> None:
        with psycopg.connect(self.database_url) as conn:
            conn.execute(files("consumers.benefits_agency").joinpath("view.sql").read_text())
            conn.commit()
            consumer = Consumer(
                {
                    "bootstrap.servers": self.bootstrap_servers,
                    "group.id": f"benefits-agency.{self.topic}",
                    "enable.auto.commit": False,
                    "auto.offset.reset": "earliest",
                    "isolation.level": "read_committed",
                    "enable.partition.eof": True,
                }
            )
            consumer.subscribe([self.topic])
            at_end: set[int] = set()
            try:
                while not stop.is_set():
                    messages = consumer.consume(200, timeout=0.5)
                    consumed = False
                    with conn.transaction(), conn.cursor() as cur:
                        for message in messages:
                            error = message.error()
                            if error is not None:
                                if error.code() == KafkaError._PARTITION_EOF:
                                    at_end.add(int(message.partition() or 0))
                                    continue
                                raise KafkaException(error)
                            at_end.discard(int(message.partition() or 0))
                            consumed = True
                            event_type = header(message, "event-type")
                            if event_type not in (HOUSEHOLD, PERSON):
                                self.skipped += 1
                                continue
                            decoded = self.contract.decode(message.value() or b"")
                            if decoded is None:
                                raise ValueError(f"no schema for a {event_type!r} message")
                            apply(cur, *decoded)
                    if consumed:  # offsets only after the rows are committed
                        consumer.commit(asynchronous=False)
                    assigned = {tp.partition for tp in consumer.assignment()}
                    if until_caught_up and assigned and assigned <= at_end:
                        break
            finally:
                consumer.close()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    BenefitsAgencyConsumer(
        os.environ["BENEFITS_DATABASE_URL"],
        os.environ["KAFKA_BOOTSTRAP_SERVERS"],
        Path(os.environ.get("CONTRACT_DIR", Path(__file__).resolve().parents[2] / "schemas")),
        os.environ.get("CASES_TOPIC"),
    ).run(stop)
