"""The national log, then relay, projection rebuild, chain verification, query, audit and
memory figures on it, each beside its ceiling.

    python -m bench.pipeline_bench --size quick   # 5,000 households (about 300,000 events)
    python -m bench.pipeline_bench --size full    # 175,000 households (about ten million events)

Starts its own Kafka broker (127.0.0.1:29092 or BENCH_KAFKA_PORT, .data/bench/kafka) and embedded PostgreSQL
(.data/bench/postgres, or DATABASE_URL), fills a fresh database with the national log of
bench/national.py, runs `reintegration relay`, `reintegration project` and `reintegration api`
on it as their own processes, and writes bench/results/pipeline-<size>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import secrets
import signal
import subprocess
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from bench.national import SIZES, National
from infra import contract, tamper_evidence
from infra.bootstrap import PROJECTIONS, Container
from infra.config import Settings
from infra.identity import token_hash
from infra.kafka import wait_for_leaders
from infra.relay import read_position

ROOT = Path(__file__).resolve().parent.parent
CEILING_SAMPLE = 1_000_000


def wait_ready(base_url: str) -> None:
    """Until the API at ``base_url`` answers its health check (a minute at most)."""
    import httpx

    for _ in range(300):
        try:
            if httpx.get(f"{base_url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the API did not start")


def api_at_size(
    env: dict[str, str], ids: list[Any], prefixes: list[str], rng: random.Random
) -> dict[str, Any]:
    """`reintegration api` on the benchmark's database: households, name searches, case
    histories and as-of states served, then its resident memory."""
    import httpx

    port = 28000 + secrets.randbelow(1000)
    token = "bench-auditor"
    api = Watched(
        "api",
        {
            **env,
            "HTTP_PORT": str(port),
            "API_TOKEN_HASHES": f"{token_hash(token)}=bench-auditor:auditor",
            "HTTP_RATE_LIMIT": "1000000/minute",
        },
    )
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {token}", "X-Access-Reason": "benchmark"}
    with httpx.Client(base_url=base, headers=headers) as client:
        wait_ready(base)
        requests = 0
        for _ in range(250):
            household = rng.choice(ids)
            for path in (
                f"/api/v1/households/{household}",
                f"/api/v1/persons?name_prefix={rng.choice(prefixes)}",
                f"/api/v1/audit/households/{household}/history",
                f"/api/v1/audit/households/{household}",
            ):
                response = client.get(path, timeout=30)
                assert response.status_code == 200, (path, response.text)
                requests += 1
    api.until(lambda: True, progress=lambda: 1.0)
    return {"requests": requests, **api.stop()}


def say(what: str, done: int, total: int) -> None:
    print(f"{datetime.now():%H:%M:%S} {what}: {done:,}/{total:,}", flush=True)


KAFKA_PORT = os.environ.get("BENCH_KAFKA_PORT", "29092")  # two benchmarks side by side
REBUILT = "projection_households"


def memory_mib(pid: int) -> dict[str, float]:
    """Resident memory now and at its peak (VmRSS, VmHWM) of a process."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            found[line[:5]] = round(int(line.split()[1]) / 1024, 1)
    return found


class Watched:
    """A `reintegration` command in its own process, its memory sampled while it works."""

    def __init__(self, command: str, env: dict[str, str], *args: str) -> None:
        logs = ROOT / ".data/bench"
        logs.mkdir(parents=True, exist_ok=True)
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            [str(ROOT / ".venv/bin/reintegration"), command, *args],
            env=env,
            stdout=(logs / f"pipeline-{command}.log").open("wb"),
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        self.rss_at: dict[str, float] = {}

    def until(self, done: Any, progress: Any) -> float:
        """Seconds from the start of the process until ``done()``; records resident memory
        when a quarter, half and three quarters of the work is done (flat: no growth with
        the length of the log)."""
        marks = [0.25, 0.5, 0.75]
        while not done():
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.process.args} exited with {self.process.returncode}")
            if marks and progress() >= marks[0]:
                self.rss_at[f"{round(marks.pop(0) * 100)}%"] = memory_mib(self.process.pid)["VmRSS"]
            time.sleep(0.2)
        elapsed = time.perf_counter() - self.started
        self.rss_at["100%"] = memory_mib(self.process.pid)["VmRSS"]
        return elapsed

    def stop(self) -> dict[str, Any]:
        peak = memory_mib(self.process.pid)["VmHWM"]
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(60)
        return {"peak_rss_mib": peak, "rss_mib_as_the_work_progressed": self.rss_at}


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


def server_url() -> str:
    from infra.postgres import start_embedded

    return os.environ.get("DATABASE_URL") or start_embedded(ROOT / ".data/bench/postgres")


def fresh_database(server: str) -> str:
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
    parser.add_argument(
        "--keep", action="store_true", help="keep the database afterwards (it is dropped)"
    )
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
        server = server_url()
        database_url = fresh_database(server)
        bootstrap = f"127.0.0.1:{KAFKA_PORT}"
        settings = Settings(
            database_url=database_url,
            kafka_bootstrap_servers=bootstrap,
            kafka_topic_prefix=f"bench{secrets.token_hex(3)}",
            kafka_partitions=6,
            data_dir=ROOT / ".data/bench",
        )
        # 0. The national log, written through the domain and the services (embedded mode:
        # the lotteries read the households view, kept up from the event store).
        generator = Container(replace(settings, kafka_bootstrap_servers=None))
        started = time.perf_counter()
        figures["log"] = National(generator, SIZES[args.size], args.seed, say).run()
        figures["log"]["generate_seconds"] = round(time.perf_counter() - started, 1)
        generator.close()
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("ANALYZE")  # as after any bulk load
            for name in PROJECTIONS:  # the views start empty: the rebuild below fills them
                conn.execute(f"DROP SCHEMA IF EXISTS projection_{name} CASCADE")
            figures["log"]["events_by_type"] = {
                topic.rsplit(":", 1)[-1]: count
                for topic, count in conn.execute(
                    "SELECT topic, count(*) FROM reintegration_events GROUP BY 1 ORDER BY 2 DESC"
                )
            }
        container = Container(settings)
        container.ensure_topics()
        container.projections.prepare()
        app = container.application
        events = app.recorder.max_notification_id() or 0
        figures["events"] = sum(figures["log"]["events_by_type"].values())
        say(f"{figures['events']:,} events in the log", 1, 1)

        # 1. Relay, store to Kafka: `reintegration relay` in its own process, as in production.
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "KAFKA_TOPIC_PREFIX": settings.kafka_topic_prefix,
            "KAFKA_PARTITIONS": "6",
            "LOG_LEVEL": "warning",
            "REINTEGRATION_ENV": "production",
        }
        relay_run = Watched("relay", env)
        relay_s = relay_run.until(
            lambda: read_position(bootstrap, container.topics.relay_position) >= events,
            progress=lambda: read_position(bootstrap, container.topics.relay_position) / events,
        )
        relay_memory = relay_run.stop()
        say(f"relay: {figures['events'] / relay_s:,.0f} events/s", 1, 1)
        figures["relay"] = {
            "events_per_second": round(figures["events"] / relay_s),
            "seconds": round(relay_s, 1),
            **relay_memory,
        }
        encoded = []  # a sample of the log (the first million events) is enough for a rate
        for n in app.recorder.select_notifications(1, CEILING_SAMPLE):
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
        wait_for_leaders(admin, [topic])  # a fresh topic's partitions elect their leaders
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
        figures["relay"].update(
            {
                "ceiling": "confluent-kafka producer sending the same pre-encoded messages",
                "ceiling_events_per_second": round(len(encoded) / ceiling_s),
                "ratio_to_ceiling": round(
                    (figures["events"] / relay_s) / (len(encoded) / ceiling_s), 3
                ),
                "target_events_per_second": 30_000,
            }
        )
        del encoded

        # 2. Projection rebuild from offset zero: `reintegration project households` in its own
        # process, into the fresh database's empty read model.
        def projected(*names: str) -> float:
            done = end = 0
            caught_up = True
            for name in names:
                state = container.projections.status(name)
                done += sum(p.position for p in state.partitions)
                end += sum(p.end or 0 for p in state.partitions)
                caught_up &= all(p.lag == 0 for p in state.partitions)
            return 1.0 if caught_up and end else (done / end if end else 0.0)

        project_run = Watched("project", env, "households")
        rebuild_s = project_run.until(
            lambda: projected("households") >= 1.0, progress=lambda: projected("households")
        )
        project_memory = project_run.stop()
        say(f"rebuild: {figures['events'] / rebuild_s:,.0f} events/s", 1, 1)
        started = time.perf_counter()
        read = read_all(bootstrap, container.topics.event_topics)
        read_s = time.perf_counter() - started
        with psycopg.connect(database_url) as conn:
            started = time.perf_counter()
            rows = 0
            for table in ("rm_households", "rm_household_members", "rm_persons"):
                conn.execute(f"CREATE TEMP TABLE copy_{table} (LIKE {REBUILT}.{table})")
                with conn.cursor().copy(f"COPY {REBUILT}.{table} TO STDOUT") as out:
                    data = b"".join(bytes(chunk) for chunk in out)
                with conn.cursor().copy(f"COPY copy_{table} FROM STDIN") as into:
                    into.write(data)
                rows += int(conn.execute(f"SELECT count(*) FROM copy_{table}").fetchone()[0])  # type: ignore[index]
            copy_s = time.perf_counter() - started
        figures["rebuild"] = {
            "events_per_second": round(figures["events"] / rebuild_s),
            "seconds": round(rebuild_s, 1),
            **project_memory,
            "ceiling_consumer": "confluent-kafka consumer reading the topic without processing",
            "ceiling_consumer_events_per_second": round(read / read_s),
            "ratio_to_consumer_ceiling": round(read_s / rebuild_s, 3),
            "ceiling_copy": "COPY of the resulting read-model rows",
            "ceiling_copy_rows_per_second": round(rows / copy_s),
            "target_events_per_second": 30_000,
        }
        # The other views (eligibility, housing) from offset zero too, both in one process as
        # `reintegration project` runs them: the queries below read them.
        others = [n for n in PROJECTIONS if n != "households"]
        all_run = Watched("project", env)
        others_s = all_run.until(
            lambda: projected(*others) >= 1.0, progress=lambda: projected(*others)
        )
        figures["rebuild"]["eligibility_and_housing_together"] = {
            "events_per_second_each": round(figures["events"] / others_s),
            "seconds": round(others_s, 1),
            **all_run.stop(),
        }

        # 3. Chain verification over the whole log.
        started = time.perf_counter()
        report = container.audit_trail.verify("bench", require_keys=False)  # no checkpoints
        verify_s = time.perf_counter() - started
        assert report.ok, report.to_text()
        figures["chain_verification"] = {
            "events_per_second": round(figures["events"] / verify_s),
            "with_kafka_comparison": True,
            "ceiling": "the rebuild's bare consumer (every message read once, as here)",
            "ceiling_events_per_second": round(read / read_s),
            "ratio_to_ceiling": round(read_s / verify_s, 3),
            "target_events_per_second": 100_000,
        }
        started = time.perf_counter()
        tamper_evidence.verify(
            database_url,
            container.audit_trail.events_table,
            container.audit_trail.chain_table,
            [],
            [],
            None,
            None,
            "bench",
        )
        figures["chain_verification"]["events_per_second_store_only"] = round(
            figures["events"] / (time.perf_counter() - started)
        )

        # 4. Queries on the read model: the one the rebuild above produced.
        from projections.queries import households, housing

        with psycopg.connect(database_url, row_factory=psycopg.rows.dict_row) as conn:
            conn.execute(f"SET search_path TO {REBUILT}, public")
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
                }
                conn.execute("SET search_path TO projection_housing, public")
                codes = [r["settlement_code"] for r in housing.pipeline(cur, None)]
                figures["queries"]["settlement_pipeline_counts"] = timed(
                    300, lambda: housing.pipeline(cur, rng.choice(codes))
                )
                figures["queries"]["all_settlements_pipeline_counts"] = timed(
                    100, lambda: housing.pipeline(cur, None)
                )
                figures["queries"]["target_p99_ms"] = 20

        # 5. Audit: one case's history and as-of state from the event store.
        moment = datetime.now(UTC)
        figures["audit"] = {
            "case_history": timed(100, lambda: container.services.audit.history(rng.choice(ids))),
            "case_as_of": timed(
                100, lambda: container.services.audit.as_of(rng.choice(ids), moment)
            ),
        }

        # 6. The API at full size: its memory after serving reads of every kind on this log.
        figures["api"] = api_at_size(env, ids, prefixes, rng)

        figures["peak_rss_mib_of_this_process"] = round(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        )
        container.close()
    finally:
        kafka("stop")
        if not args.keep and "database_url" in locals():
            with psycopg.connect(server, autocommit=True) as conn:
                name = psycopg.conninfo.conninfo_to_dict(database_url)["dbname"]
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    out = ROOT / "bench" / "results" / f"pipeline-{args.size}.json"
    out.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
