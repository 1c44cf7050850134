"""Every process rides out the loss of PostgreSQL or Kafka by itself, and clients are told the
truth meanwhile. Real processes (`api`, `relay`, `project`), a broker and a PostgreSQL server of
this module's own (so that they can be stopped), a steady load of commands over HTTP.

Each test asserts, from the stores: every acknowledged command's events are in the event store,
in Kafka exactly once (by event id) and in the read model; the read model equals a rebuild;
recovery within the targets. The recovery times measured are written to
``.data/test/recovery-times.json`` (bench/README.md quotes them)."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.e2e.conftest import API_TOKEN_HASHES, TOKENS
from tests.integration.kafka_reading import read_topic
from tests.support import (
    PYTHON,
    ROOT,
    Service,
    create_database,
    free_port,
    free_ports,
    household_body,
    random_fin,
    require_env,
    wait_for_http,
    wait_until,
)

TIMES = ROOT / ".data" / "test" / "recovery-times.json"


def record_time(what: str, seconds: float) -> None:
    TIMES.parent.mkdir(parents=True, exist_ok=True)
    times = json.loads(TIMES.read_text()) if TIMES.exists() else {}
    times[what] = round(seconds, 2)
    TIMES.write_text(json.dumps(times, indent=2, sort_keys=True))


class Broker:
    """A Kafka broker of the test's own, started and stopped with the project's script."""

    def __init__(self, data: Path) -> None:
        self.port = free_port()
        self.env = {
            **os.environ,
            "KAFKA_PORT": str(self.port),
            "KAFKA_CONTROLLER_PORT": str(free_port()),
            "KAFKA_DATA_DIR": str(data),
            "KAFKA_HEAP": "512m",
        }
        self.bootstrap = f"127.0.0.1:{self.port}"

    def run(self, command: str) -> None:
        subprocess.run(
            [str(ROOT / "infra/kafka/kafka.sh"), command],
            env=self.env,
            check=True,
            capture_output=True,
        )


class Postgres:
    """An embedded PostgreSQL of the test's own, stopped and started again on the same data."""

    def __init__(self, data: Path) -> None:
        self.data = data

    def run(self, command: str) -> str:
        done = subprocess.run(
            [PYTHON, "-W", "ignore", "-m", "infra.postgres", command, str(self.data)],
            check=True,
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        return done.stdout.strip()


@pytest.fixture(scope="module")
def own_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Postgres, str]]:
    server = Postgres(tmp_path_factory.mktemp("pg") / "data")
    url = server.run("start")
    try:
        yield server, url
    finally:
        server.run("stop")


@pytest.fixture(scope="module")
def own_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    broker = Broker(tmp_path_factory.mktemp("kafka"))
    broker.run("start")
    try:
        yield broker
    finally:
        broker.run("stop")


@dataclass
class Load:
    """Clients registering households, one request after another each, until stopped."""

    base_url: str
    clients: int = 2
    acknowledged: list[str] = field(default_factory=list)
    answers: list[tuple[float, float, int, str]] = field(default_factory=list)  # sent, took
    stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> Load:
        self.threads = [
            threading.Thread(target=self._client, daemon=True) for _ in range(self.clients)
        ]
        for thread in self.threads:
            thread.start()
        return self

    def _client(self) -> None:
        headers = {"Authorization": f"Bearer {TOKENS['operator']}"}
        with httpx.Client(base_url=self.base_url, headers=headers, timeout=30) as client:
            while not self.stop.is_set():
                sent = time.monotonic()
                try:
                    answer = client.post("/api/v1/households", json=household_body(random_fin()))
                except httpx.HTTPError:
                    self.answers.append((sent, time.monotonic() - sent, 0, ""))
                    time.sleep(0.2)
                    continue
                took = time.monotonic() - sent
                kind = answer.headers.get("content-type", "")
                self.answers.append((sent, took, answer.status_code, kind))
                if answer.status_code == 201:
                    self.acknowledged.append(answer.json()["household_id"])
                elif answer.status_code == 503:
                    time.sleep(0.2)
                time.sleep(0.02)

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(40)


def start(command: list[str], env: dict[str, str], log: Path) -> Service:
    return Service(command, env, log).start()


def stack_env(database_url: str, bootstrap: str, prefix: str) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "KAFKA_TOPIC_PREFIX": prefix,
        "KAFKA_PARTITIONS": "3",
        "API_TOKEN_HASHES": API_TOKEN_HASHES,
        "LOG_FORMAT": "json",
        "REINTEGRATION_ENV": "production",
    }


def ready(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def projected(database_url: str, ids: list[str]) -> int:
    """How many of the households the read model holds."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM projection_households.rm_households "
            "WHERE household_id = ANY(%s::uuid[])",
            (ids,),
        ).fetchone()
    return int(row[0]) if row else 0


def until_projected(database_url: str, ids: list[str], what: str, timeout_s: float = 30) -> None:
    """Wait until the read model holds every one of the households (a copy of the list: the
    load may still be adding to it)."""
    target = list(ids)
    wait_until(
        lambda: projected(database_url, target) == len(target) or None, timeout_s, 0.1, what=what
    )


def until_working(database_url: str, load: Load, households: int, timeout_s: float) -> None:
    """Wait until the whole pipeline (API, relay, projector) has carried some of the load."""
    wait_until(
        lambda: projected(database_url, load.acknowledged) >= households or None,
        timeout_s,
        0.1,
        what="work",
    )


def assert_nothing_lost_or_repeated(
    database_url: str, bootstrap: str, prefix: str, acknowledged: list[str], tmp: Path, env: Any
) -> None:
    """Every acknowledged household registered once in the store, its events in Kafka exactly
    once, in the read model; the read model equals a rebuild."""
    with psycopg.connect(database_url) as conn:
        stored = conn.execute(
            "SELECT originator_id::text, notification_id FROM reintegration_events"
        ).fetchall()
    stored_ids = {row[0] for row in stored}
    assert set(acknowledged) <= stored_ids, "an acknowledged command's events are not in the store"
    assert len(acknowledged) == len(set(acknowledged))
    topics = [t for t in _topics(bootstrap) if t.startswith(prefix + ".") and _is_event_topic(t)]
    carried = [
        int(m.headers["notification-id"])
        for topic in topics
        for m in read_topic(bootstrap, topic)
        if "notification-id" in m.headers
    ]
    assert len(carried) == len(set(carried)), "an event reached Kafka twice"
    assert set(carried) == {row[1] for row in stored}, "the store and Kafka disagree"
    until_projected(database_url, acknowledged, "every acknowledged household")
    check = subprocess.run(
        [str(ROOT / ".venv/bin/reintegration"), "audit", "projections", "households"],
        env={**os.environ, **env, "REINTEGRATION_TOKEN": TOKENS["auditor"]},
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert check.returncode == 0, check.stdout[-2000:] + check.stderr[-2000:]


def _topics(bootstrap: str) -> list[str]:
    from confluent_kafka.admin import AdminClient

    return list(AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10).topics)


def _is_event_topic(topic: str) -> bool:
    return not topic.endswith(("relay-position", "dead-letters", "audit-checkpoints"))


def lines(service: Service, message: str, dependency: str) -> int:
    found = 0
    for line in service.output().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("event") == message and entry.get("dependency") == dependency:
            found += 1
    return found


def not_json(service: Service) -> list[str]:
    out = []
    for line in service.output().splitlines():
        try:
            json.loads(line)
        except ValueError:
            out.append(line)
    return out


def test_every_process_rides_out_a_postgresql_restart_and_the_api_answers_503_meanwhile(
    own_postgres: tuple[Postgres, str], tmp_path: Path, topic_prefix: str
) -> None:
    server, server_url = own_postgres
    database = create_database(server_url)
    bootstrap = require_env("KAFKA_BOOTSTRAP_SERVERS")
    env = stack_env(database, bootstrap, topic_prefix)
    api_port, relay_port, project_port = free_port(), free_port(), free_port()
    api = start(["api"], {**env, "HTTP_PORT": str(api_port)}, tmp_path / "api.log")
    relay = start(["relay"], {**env, "METRICS_PORT": str(relay_port)}, tmp_path / "relay.log")
    project = start(
        ["project", "households"], {**env, "METRICS_PORT": str(project_port)}, tmp_path / "p.log"
    )
    base = f"http://127.0.0.1:{api_port}"
    try:
        wait_for_http(base, api)
        wait_until(lambda: ready(relay_port) and ready(project_port), 60, 0.2, what="ready")
        load = Load(base).start()
        wait_until(lambda: len(load.acknowledged) >= 20, 30, 0.1, what="a first load")

        server.run("stop")
        stopped = time.monotonic()
        time.sleep(6)
        readyz = httpx.get(f"{base}/readyz", timeout=5)
        assert readyz.status_code == 503
        assert readyz.json()["dependencies"]["postgresql"]["up"] is False
        assert not ready(relay_port) and not ready(project_port)
        for port in (relay_port, project_port):
            gauge = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
            assert 'reintegration_dependency_up{dependency="postgresql"} 0.0' in gauge
        server.run("start")
        started = time.monotonic()
        acknowledged_before = len(load.acknowledged)
        wait_until(
            lambda: len(load.acknowledged) > acknowledged_before, 30, 0.1, what="a command again"
        )
        first_command_s = time.monotonic() - started
        time.sleep(2)
        load.finish()
        until_projected(database, load.acknowledged, "the read model to catch up")
        read_model_s = time.monotonic() - started

        during = [a for a in load.answers if stopped + 1 < a[0] < started - 1]
        assert during, "no request was made during the outage"
        assert all(a[2] == 503 for a in during), {a[2] for a in during}
        assert all("application/problem+json" in a[3] for a in load.answers if a[2] >= 400)
        slowest = max(a[1] for a in load.answers if a[0] + a[1] >= stopped and a[0] < started)
        assert slowest < 5, f"a request during the outage took {slowest:.1f} s"
        for process in (api, relay, project):
            assert process.process is not None and process.process.poll() is None
            assert lines(process, "dependency unavailable", "postgresql") == 1, process.output()[
                -3000:
            ]
            assert lines(process, "dependency available again", "postgresql") == 1
        record_time(
            "postgresql restart: first command accepted after the restart (s)", first_command_s
        )
        record_time("postgresql restart: read model caught up after the restart (s)", read_model_s)
        record_time("postgresql outage: slowest API answer (s)", slowest)
        assert_nothing_lost_or_repeated(
            database, bootstrap, topic_prefix, load.acknowledged, tmp_path, env
        )
    finally:
        for process in (api, relay, project):
            process.stop()


def test_relay_and_projector_resume_within_10_s_of_the_broker_coming_back(
    own_broker: Broker, database_url: str, tmp_path: Path, topic_prefix: str
) -> None:
    env = stack_env(database_url, own_broker.bootstrap, topic_prefix)
    api_port, relay_port, project_port = free_port(), free_port(), free_port()
    api = start(["api"], {**env, "HTTP_PORT": str(api_port)}, tmp_path / "api.log")
    relay = start(["relay"], {**env, "METRICS_PORT": str(relay_port)}, tmp_path / "relay.log")
    project = start(
        ["project", "households"], {**env, "METRICS_PORT": str(project_port)}, tmp_path / "p.log"
    )
    base = f"http://127.0.0.1:{api_port}"
    try:
        wait_for_http(base, api)
        wait_until(lambda: ready(relay_port) and ready(project_port), 60, 0.2, what="ready")
        load = Load(base).start()
        until_working(database_url, load, 20, 60)

        own_broker.run("stop")
        stopped = time.monotonic()
        wait_until(
            lambda: not ready(relay_port) and not ready(project_port), 20, 0.2, what="not ready"
        )
        time.sleep(max(0.0, 15 - (time.monotonic() - stopped)))
        during_outage = len(load.acknowledged)
        own_broker.run("start")
        back = time.monotonic()
        load.finish()
        assert len(load.acknowledged) > during_outage - 1  # commands never needed Kafka
        until_projected(database_url, load.acknowledged, "the read model to catch up")
        resumed_s = time.monotonic() - back
        record_time("broker restart: read model caught up after the broker is back (s)", resumed_s)
        assert resumed_s < 10, f"the read model caught up {resumed_s:.1f} s after the broker"
        wait_until(lambda: ready(relay_port) and ready(project_port), 10, 0.2, what="ready again")
        for process in (relay, project):
            assert process.process is not None and process.process.poll() is None
            assert lines(process, "dependency unavailable", "kafka") >= 1, process.output()[-3000:]
            assert lines(process, "dependency available again", "kafka") >= 1
            assert not_json(process) == [], not_json(process)[:5]
            kafka_lines = [x for x in process.output().splitlines() if '"kafka.client"' in x]
            assert len(kafka_lines) < 200, f"{len(kafka_lines)} lines from the Kafka client"
        assert_nothing_lost_or_repeated(
            database_url, own_broker.bootstrap, topic_prefix, load.acknowledged, tmp_path, env
        )
    finally:
        for process in (api, relay, project):
            process.stop()


def test_two_projector_replicas_share_the_partitions_and_one_killed_is_covered_within_10_s(
    database_url: str, kafka_bootstrap: str, tmp_path: Path, topic_prefix: str
) -> None:
    env = stack_env(database_url, kafka_bootstrap, topic_prefix)
    api_port = free_port()
    api = start(["api"], {**env, "HTTP_PORT": str(api_port)}, tmp_path / "api.log")
    relay = start(["relay"], env, tmp_path / "relay.log")
    replicas = [
        start(["project", "households"], env, tmp_path / f"replica-{i}.log") for i in range(2)
    ]
    base = f"http://127.0.0.1:{api_port}"
    try:
        wait_for_http(base, api)
        load = Load(base).start()
        wait_until(lambda: len(load.acknowledged) >= 30, 60, 0.1, what="a first load")
        until_working(database_url, load, 30, 60)
        replicas[0].kill()
        killed = time.monotonic()
        time.sleep(1)
        until_projected(database_url, load.acknowledged, "the other replica to take over")
        covered_s = time.monotonic() - killed
        load.finish()
        record_time("projector replica killed: read model current again (s)", covered_s)
        assert covered_s < 10, f"the surviving replica took over after {covered_s:.1f} s"
        assert any('"partitions assigned"' in line for line in replicas[1].output().splitlines())
        assert_nothing_lost_or_repeated(
            database_url, kafka_bootstrap, topic_prefix, load.acknowledged, tmp_path, env
        )
    finally:
        for process in (api, relay, *replicas):
            if process.process and process.process.poll() is None:
                process.stop()


def test_a_projector_killed_and_started_again_resumes_within_10_s(
    database_url: str, kafka_bootstrap: str, tmp_path: Path, topic_prefix: str
) -> None:
    env = stack_env(database_url, kafka_bootstrap, topic_prefix)
    api_port = free_port()
    api = start(["api"], {**env, "HTTP_PORT": str(api_port)}, tmp_path / "api.log")
    relay = start(["relay"], env, tmp_path / "relay.log")
    project = start(["project", "households"], env, tmp_path / "p1.log")
    base = f"http://127.0.0.1:{api_port}"
    again = None
    try:
        wait_for_http(base, api)
        load = Load(base).start()
        until_working(database_url, load, 20, 60)
        project.kill()
        again = start(["project", "households"], env, tmp_path / "p2.log")
        restarted = time.monotonic()
        time.sleep(1)
        until_projected(database_url, load.acknowledged, "the restarted projector")
        resumed_s = time.monotonic() - restarted
        load.finish()
        record_time("projector killed and restarted: read model current again (s)", resumed_s)
        assert resumed_s < 10, f"the restarted projector resumed after {resumed_s:.1f} s"
        assert_nothing_lost_or_repeated(
            database_url, kafka_bootstrap, topic_prefix, load.acknowledged, tmp_path, env
        )
    finally:
        for process in (api, relay, again):
            if process is not None:
                process.stop()


class Cluster:
    """Three Kafka nodes of the test's own (infra/kafka/cluster.sh)."""

    def __init__(self, data: Path) -> None:
        base = free_ports(6)
        self.env = {**os.environ, "KAFKA_CLUSTER_PORT": str(base), "KAFKA_CLUSTER_DIR": str(data)}
        self.bootstrap = ",".join(f"127.0.0.1:{base + 2 * n}" for n in range(3))

    def run(self, *command: str) -> None:
        subprocess.run(
            [str(ROOT / "infra/kafka/cluster.sh"), *command],
            env=self.env,
            check=True,
            capture_output=True,
        )


def test_a_three_broker_cluster_loses_a_broker_under_load_and_nothing_is_lost_or_repeated(
    tmp_path_factory: pytest.TempPathFactory, database_url: str, tmp_path: Path, topic_prefix: str
) -> None:
    """Production's shape: topics replicated three times with min.insync.replicas 2, two API
    worker processes, two projector replicas. One broker is killed under load and started
    again."""
    cluster = Cluster(tmp_path_factory.mktemp("cluster"))
    cluster.run("start")
    env = {
        **stack_env(database_url, cluster.bootstrap, topic_prefix),
        "KAFKA_REPLICATION_FACTOR": "3",
        "KAFKA_MIN_INSYNC_REPLICAS": "2",
    }
    api_port = free_port()
    api = start(["api", "--workers", "2"], {**env, "HTTP_PORT": str(api_port)}, tmp_path / "a.log")
    relay = start(["relay"], env, tmp_path / "relay.log")
    replicas = [start(["project", "households"], env, tmp_path / f"p{i}.log") for i in range(2)]
    base = f"http://127.0.0.1:{api_port}"
    try:
        wait_for_http(base, api)
        load = Load(base).start()
        until_working(database_url, load, 20, 90)
        cluster.run("kill", "2")
        time.sleep(10)
        cluster.run("start-node", "2")
        back = time.monotonic()
        time.sleep(2)
        load.finish()
        until_projected(database_url, load.acknowledged, "the read model to catch up")
        caught_up_s = time.monotonic() - back
        record_time(
            "three brokers, one killed: read model current after it is back (s)", caught_up_s
        )
        assert caught_up_s < 10, f"the read model caught up {caught_up_s:.1f} s after the broker"
        for process in (api, relay, *replicas):
            assert process.process is not None and process.process.poll() is None
        assert_nothing_lost_or_repeated(
            database_url, cluster.bootstrap, topic_prefix, load.acknowledged, tmp_path, env
        )
    finally:
        for process in (api, relay, *replicas):
            process.stop()
        cluster.run("stop")
