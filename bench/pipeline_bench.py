"""Relay, projection rebuild, chain verification, query and audit figures, each beside its ceiling.

    python -m bench.pipeline_bench --size quick   # 5,000 households (about 50,000 events)
    python -m bench.pipeline_bench --size full    # 175,000 households (about 1.7 million events)

Starts its own Kafka broker (127.0.0.1:29092, .data/bench/kafka) and embedded PostgreSQL
(.data/bench/postgres, or DATABASE_URL), fills a fresh database with the synthetic registry of
bench/import_bench.py, and writes bench/results/pipeline-<size>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import secrets
import subprocess
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from bench.import_bench import SIZES, generate
from domain.base import Actor
from infra import contract, tamper_evidence
from infra.bootstrap import Container
from infra.config import Settings
from infra.legacy_import import LegacyImport

ROOT = Path(__file__).resolve().parent.parent
KAFKA_PORT = "29092"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def timed(samples: int, action: Any) -> dict[str, float]:
    durations = []
    for _ in range(samples):
        started = time.perf_counter()
        action()
        durations.append((time.perf_counter() - started) * 1000)
    return {
        "p50_ms": round(percentile(durations, 50), 3),
        "p99_ms": round(percentile(durations, 99), 3),
    }


def kafka(command: str) -> None:
    env = {
        **os.environ,
        "KAFKA_PORT": KAFKA_PORT,
        "KAFKA_DATA_DIR": str(ROOT / ".data/bench/kafka"),
    }
    subprocess.run([str(ROOT / "infra/kafka/kafka.sh"), command], check=True, env=env)


def fresh_database() -> str:
    from infra.postgres import start_embedded

    server = os.environ.get("DATABASE_URL") or start_embedded(ROOT / ".data/bench/postgres")
    name = f"bench_{secrets.token_hex(4)}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    params = psycopg.conninfo.conninfo_to_dict(server)
    params["dbname"] = name
    return psycopg.conninfo.make_conninfo("", **params)


def read_all(bootstrap: str, topics: list[str]) -> int:
    """Ceiling: a consumer reading every committed message, without processing."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"ceiling-{secrets.token_hex(4)}",
            "enable.partition.eof": True,
            "enable.auto.commit": False,
            "fetch.max.bytes": 52428800,
        }
    )
    assignment = []
    for topic in topics:
        for p in consumer.list_topics(topic, timeout=10).topics[topic].partitions:
            assignment.append(TopicPartition(topic, p, 0))
    consumer.assign(assignment)
    remaining, count = len(assignment), 0
    while remaining:
        for message in consumer.consume(10000, timeout=5):
            error = message.error()
            if error is None:
                count += 1
            elif error.code() == KafkaError._PARTITION_EOF:
                remaining -= 1
    consumer.close()
    return count


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", choices=SIZES, default="quick")
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    from infra.logging import configure_logging

    configure_logging("console", "warning")
    figures: dict[str, Any] = {
        "benchmark": "pipeline",
        "size": args.size,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
        ).stdout.strip(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
    }
    kafka("start")
    try:
        database_url = fresh_database()
        bootstrap = f"127.0.0.1:{KAFKA_PORT}"
        settings = Settings(
            database_url=database_url,
            kafka_bootstrap_servers=bootstrap,
            kafka_topic_prefix=f"bench{secrets.token_hex(3)}",
            kafka_partitions=6,
            data_dir=ROOT / ".data/bench",
        )
        container = Container(settings)
        container.ensure_topics()
        container.prepare_read_models()
        app = container.application
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "registry.csv"
            generate(path, SIZES[args.size], args.seed)
            LegacyImport(app, Actor("bench", "operator"), 500).run(path)
        events = app.recorder.max_notification_id() or 0
        with psycopg.connect(database_url) as conn:
            row = conn.execute(
                "SELECT count(*), avg(octet_length(state)) FROM reintegration_events"
            ).fetchone()
        figures["events"] = int(row[0]) if row else 0

        # 1. Relay, store to Kafka.
        stop = threading.Event()
        relay = container.relay()
        started = time.perf_counter()
        worker = threading.Thread(target=relay.run, args=(stop,))
        worker.start()
        while relay.published_position < events:
            time.sleep(0.05)
        relay_s = time.perf_counter() - started
        stop.set()
        worker.join()
        encoded = []
        for n in app.recorder.select_notifications(1, 1_000_000_000):
            event = app.mapper.to_domain_event(n)
            encoded.append((str(event.partition_key).encode(), contract.encode(event)[1]))
        producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "enable.idempotence": True,
                "linger.ms": 5,
                "compression.type": "lz4",
            }
        )
        topic = f"{settings.kafka_topic_prefix}.ceiling"
        from confluent_kafka.admin import AdminClient, NewTopic

        admin = AdminClient({"bootstrap.servers": bootstrap})
        admin.create_topics([NewTopic(topic, 6, 1)])[topic].result()
        started = time.perf_counter()
        for key, value in encoded:
            while True:
                try:
                    producer.produce(topic, key=key, value=value)
                    break
                except BufferError:
                    producer.poll(0.01)
        producer.flush(120)
        ceiling_s = time.perf_counter() - started
        figures["relay"] = {
            "events_per_second": round(figures["events"] / relay_s),
            "ceiling": "confluent-kafka producer sending the same pre-encoded messages",
            "ceiling_events_per_second": round(len(encoded) / ceiling_s),
            "ratio_to_ceiling": round(ceiling_s / relay_s, 3),
            "target_events_per_second": 30_000,
        }
        del encoded

        # 2. Projection rebuild from offset zero.
        projector = container.projector(
            "households", schema="bench_rebuild", group_id=f"bench-{secrets.token_hex(3)}"
        )
        started = time.perf_counter()
        projector.run(threading.Event(), until_caught_up=True)
        rebuild_s = time.perf_counter() - started
        started = time.perf_counter()
        read = read_all(bootstrap, container.topics.event_topics)
        read_s = time.perf_counter() - started
        with psycopg.connect(database_url) as conn:
            started = time.perf_counter()
            rows = 0
            for table in ("rm_households", "rm_household_members", "rm_persons"):
                conn.execute(f"CREATE TEMP TABLE copy_{table} (LIKE bench_rebuild.{table})")
                with conn.cursor().copy(f"COPY bench_rebuild.{table} TO STDOUT") as out:
                    data = b"".join(bytes(chunk) for chunk in out)
                with conn.cursor().copy(f"COPY copy_{table} FROM STDIN") as into:
                    into.write(data)
                rows += int(conn.execute(f"SELECT count(*) FROM copy_{table}").fetchone()[0])  # type: ignore[index]
            copy_s = time.perf_counter() - started
        figures["rebuild"] = {
            "events_per_second": round(figures["events"] / rebuild_s),
            "ceiling_consumer": "confluent-kafka consumer reading the topic without processing",
            "ceiling_consumer_events_per_second": round(read / read_s),
            "ratio_to_consumer_ceiling": round(read_s / rebuild_s, 3),
            "ceiling_copy": "COPY of the resulting read-model rows",
            "ceiling_copy_rows_per_second": round(rows / copy_s),
            "target_events_per_second": 30_000,
        }

        # 3. Chain verification over the whole log.
        started = time.perf_counter()
        report = container.verify_log("bench")
        verify_s = time.perf_counter() - started
        assert report.ok, report.to_text()
        figures["chain_verification"] = {
            "events_per_second": round(figures["events"] / verify_s),
            "with_kafka_comparison": True,
            "target_events_per_second": 100_000,
        }
        started = time.perf_counter()
        tamper_evidence.verify(
            database_url,
            container.events_table,
            container.chain_table,
            container.public_key() or b"",
            [],
            None,
            None,
            "bench",
        )
        figures["chain_verification"]["events_per_second_store_only"] = round(
            figures["events"] / (time.perf_counter() - started)
        )

        # 4. Queries on the read model: the one the rebuild above produced.
        from projections import households

        with psycopg.connect(database_url, row_factory=psycopg.rows.dict_row) as conn:
            conn.execute("SET search_path TO bench_rebuild, public")
            ids = [
                r["household_id"]
                for r in conn.execute("SELECT household_id FROM rm_households").fetchall()
            ]
            prefixes = ["məm", "əli", "hüs", "ism", "quli", "cəf", "rəh", "abb"]
            with conn.cursor() as cur:
                figures["queries"] = {
                    "household_by_id": timed(
                        500, lambda: households.get_household(cur, rng.choice(ids))
                    ),
                    "persons_by_name_prefix": timed(
                        300,
                        lambda: households.find_persons(
                            cur, name_prefix=rng.choice(prefixes), limit=50
                        ),
                    ),
                    "households_by_origin_and_housing": timed(
                        300,
                        lambda: households.find_households(
                            cur,
                            origin_settlement="ZAN-002",
                            housing_condition="dormitory",
                            limit=50,
                        ),
                    ),
                    "target_p99_ms": 20,
                }

        # 5. Audit: one case's history and as-of state from the event store.
        moment = datetime.now(UTC)
        figures["audit"] = {
            "case_history": timed(100, lambda: container.case_history(rng.choice(ids))),
            "case_as_of": timed(100, lambda: container.case_as_of(rng.choice(ids), moment)),
        }
        figures["peak_rss_mib_of_this_process"] = round(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        )
        container.close()
    finally:
        kafka("stop")
    out = ROOT / "bench" / "results" / f"pipeline-{args.size}.json"
    out.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
