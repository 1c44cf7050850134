"""Commands over HTTP, end-to-end latency, and the memory of each process, beside their ceiling.

    python -m bench.http_bench --size quick   # 20 s of load per phase
    python -m bench.http_bench --size full    # 60 s of load per phase

Starts its own Kafka broker (127.0.0.1:29092 or BENCH_KAFKA_PORT) and a fresh database, then the
three production processes: `reintegration api`, `reintegration relay` and `reintegration
project`. N concurrent clients (threads, each with its own connection) register households and
answer their pre-return surveys: commands/s and latency p50/p99. Two ceilings in the same run,
while the relay and the projector still run: the event store alone (N threads saving one
event each through the library's Application on the production recorder: group commit, chain,
table lock; into a table of its own, which the relay does not follow), and a bare psycopg loop
per client committing one row per transaction. With ``--profile`` the API runs under cProfile
(``bench/profile_api.py``, every thread, written to .data/bench/http-api-profile.txt); the CPU
time the API process and the whole machine spend per command is reported either way.
End-to-end latency is measured under a steady background load: a probe registers a household and polls its read model until it appears
(through the relay, Kafka and the projector). Peak resident memory (VmHWM) of each process is
read from /proc at the end. Writes bench/results/http-<size>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import secrets
import string
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bench.pipeline_bench import (
    KAFKA_PORT,
    fresh_database,
    kafka,
    memory_mib,
    percentile,
    server_url,
    wait_ready,
)
from domain.surveys import shipped_pre_return_questionnaire
from infra.identity import token_hash

ROOT = Path(__file__).resolve().parent.parent
SIZES = {"quick": 20, "full": 60}
CLIENTS = 16
TOKEN = "bench-operator-token"
SUPERVISOR = "bench-supervisor-token"
ALPHABET = string.ascii_uppercase + string.digits


def household_body(rng: random.Random) -> dict[str, Any]:
    size = rng.choice([1, 2, 3, 4, 5])
    return {
        "origin_settlement_code": rng.choice(["ZAN-002", "LAC-002", "SUS-001", "AGD-002"]),
        "current_address": "Bakı, yataqxana 4",
        "members": [
            {
                "fin": "".join(rng.choice(ALPHABET) for _ in range(7)),
                "first_name": "Aysel",
                "last_name": "Məmmədova",
                "birth_date": f"{1950 + rng.randrange(60)}-0{1 + rng.randrange(9)}-1{rng.randrange(9)}",
                "sex": "female",
                "relationship": "head" if i == 0 else "child",
            }
            for i in range(size)
        ],
    }


def threads_for(
    loop: Callable[[int], None], clients: int, seconds: float, stop: threading.Event
) -> float:
    """Run ``loop(n)`` in ``clients`` threads for ``seconds``, then stop them: the seconds
    taken, joins included."""
    threads = [threading.Thread(target=loop, args=(n,)) for n in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    return time.perf_counter() - started


class Load:
    """Clients issuing commands until stopped: register, start a survey, answer it."""

    def __init__(self, base_url: str, clients: int, seed: int, keyed: bool = False) -> None:
        self.base_url = base_url
        self.keyed = keyed
        self.clients = clients
        self.seed = seed
        self.latencies: list[float] = []
        self.errors = 0
        self.stop = threading.Event()
        self.lock = threading.Lock()

    def _client(self, n: int) -> None:
        rng = random.Random(self.seed * 1000 + n)
        mine: list[float] = []
        errors = 0
        with httpx.Client(
            base_url=self.base_url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
        ) as client:

            def command(method: str, path: str, body: Any = None) -> Any:
                nonlocal errors
                started = time.perf_counter()
                key = {"Idempotency-Key": str(uuid.uuid4())} if self.keyed else {}
                response = client.request(method, path, json=body, headers=key)
                mine.append((time.perf_counter() - started) * 1000)
                if response.status_code >= 400:
                    errors += 1
                    return None
                return response.json()

            while not self.stop.is_set():
                created = command("POST", "/api/v1/households", household_body(rng))
                if not created:
                    continue
                started = command(
                    "POST",
                    f"/api/v1/households/{created['household_id']}/surveys",
                    {"questionnaire_code": "pre-return", "questionnaire_version": 1},
                )
                if not started:
                    continue
                for question, value in (("intention", "now"), ("obstacles", ["none"])):
                    if self.stop.is_set():
                        break
                    command(
                        "POST",
                        f"/api/v1/surveys/{started['response_id']}/answers",
                        {"question_id": question, "value": value},
                    )
        with self.lock:
            self.latencies += mine
            self.errors += errors

    def run(self, seconds: float) -> dict[str, Any]:
        elapsed = threads_for(self._client, self.clients, seconds, self.stop)
        return {
            "clients": self.clients,
            "seconds": round(elapsed, 1),
            "commands": len(self.latencies),
            "errors": self.errors,
            "commands_per_second": round(len(self.latencies) / elapsed),
            "p50_ms": round(percentile(self.latencies, 50), 2),
            "p99_ms": round(percentile(self.latencies, 99), 2),
        }


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far (its threads included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy so far (every core, every process)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return (sum(values[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def psycopg_ceiling(database_url: str, clients: int, seconds: float) -> dict[str, Any]:
    """The same concurrency committing one row per transaction, with nothing else."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench_ceiling (id uuid PRIMARY KEY, body jsonb)")
    counts = [0] * clients
    stop = threading.Event()

    def loop(n: int) -> None:
        with psycopg.connect(database_url) as conn:
            while not stop.is_set():
                with conn.transaction():
                    conn.execute(
                        "INSERT INTO bench_ceiling VALUES (gen_random_uuid(), %s)",
                        (json.dumps({"n": n}),),
                    )
                counts[n] += 1

    elapsed = threads_for(loop, clients, seconds, stop)
    return {"rows_per_second": round(sum(counts) / elapsed)}


def store_ceiling(database_url: str, clients: int, seconds: float) -> dict[str, Any]:
    """The event store alone: ``clients`` threads, each saving new one-event aggregates through
    the library's Application on the production recorder (whatever it does per save: table
    lock, chain, NOTIFY, and on this branch the group commit), into a table of its own."""
    from eventsourcing.domain import Aggregate

    from application.store import ReintegrationApplication
    from infra.postgres import eventsourcing_env

    class Tick(Aggregate):
        pass

    class Ceiling(ReintegrationApplication):
        name = "bench_store_ceiling"  # its own events table, which the relay does not follow

    app = Ceiling(env=eventsourcing_env(database_url, clients))
    counts = [0] * clients
    latencies: list[list[float]] = [[] for _ in range(clients)]
    stop = threading.Event()

    def loop(n: int) -> None:
        while not stop.is_set():
            started = time.perf_counter()
            app.save(Tick())
            latencies[n].append((time.perf_counter() - started) * 1000)
            counts[n] += 1

    elapsed = threads_for(loop, clients, seconds, stop)
    app.close()
    every = [ms for mine in latencies for ms in mine]
    return {
        "saves_per_second": round(sum(counts) / elapsed),
        "p99_ms": round(percentile(every, 99), 2),
    }


def end_to_end(base_url: str, probes: int) -> dict[str, Any]:
    """Command accepted to visible in the read model, while a background load runs."""
    rng = random.Random(7)
    samples = []
    with httpx.Client(
        base_url=base_url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
    ) as client:
        for _ in range(probes):
            response = client.post("/api/v1/households", json=household_body(rng))
            accepted = time.perf_counter()
            household_id = response.json()["household_id"]
            while client.get(f"/api/v1/households/{household_id}").status_code != 200:
                time.sleep(0.002)
            samples.append((time.perf_counter() - accepted) * 1000)
            time.sleep(0.05)
    return {
        "probes": probes,
        "p50_ms": round(percentile(samples, 50), 1),
        "p99_ms": round(percentile(samples, 99), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=SIZES, default="quick")
    parser.add_argument("--api-workers", type=int, default=1, help="processes of the API")
    parser.add_argument(
        "--profile", action="store_true", help="the API under cProfile (bench/profile_api.py)"
    )
    parser.add_argument(
        "--idempotency-keys",
        action="store_true",
        help="every command with an Idempotency-Key (figures in http-SIZE-keyed.json)",
    )
    args = parser.parse_args()
    seconds = SIZES[args.size]

    kafka("start")
    server = server_url()
    database_url = fresh_database(server)
    port = 28000 + secrets.randbelow(1000)
    base_url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{KAFKA_PORT}",
        "KAFKA_TOPIC_PREFIX": f"bench{secrets.token_hex(3)}",
        "API_TOKEN_HASHES": f"{token_hash(TOKEN)}=bench:operator,"
        f"{token_hash(SUPERVISOR)}=bench-supervisor:supervisor",
        "HTTP_RATE_LIMIT": "1000000/minute",  # the benchmark is one caller going flat out
        "HTTP_PORT": str(port),
        "LOG_LEVEL": "warning",
        "REINTEGRATION_ENV": "production",
    }
    program = str(ROOT / ".venv/bin/reintegration")
    logs = ROOT / ".data/bench"
    logs.mkdir(parents=True, exist_ok=True)
    processes: dict[str, subprocess.Popen[bytes]] = {}
    figures: dict[str, Any] = {}
    try:
        for name in ("api", "relay", "project"):
            extra = ["--workers", str(args.api_workers)] if name == "api" else []
            command = [program, name, *extra]
            if name == "api" and args.profile:
                profile = str(logs / "http-api-profile.txt")
                python = str(ROOT / ".venv/bin/python")
                command = [python, "-m", "bench.profile_api", profile, *extra]
            processes[name] = subprocess.Popen(
                command,
                env=env,
                stdout=(logs / f"http-{name}.log").open("wb"),
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )
        wait_ready(base_url)
        published = httpx.post(
            f"{base_url}/api/v1/questionnaires",
            json=shipped_pre_return_questionnaire(),
            headers={"Authorization": f"Bearer {SUPERVISOR}"},
        )
        assert published.status_code == 201, published.text
        api_cpu, machine_cpu = cpu_seconds(processes["api"].pid), machine_busy_seconds()
        commands = Load(base_url, CLIENTS, 1, keyed=args.idempotency_keys).run(seconds)
        per_command = 1000 / max(commands["commands"], 1)
        commands["api_cpu_ms_per_command"] = round(
            (cpu_seconds(processes["api"].pid) - api_cpu) * per_command, 2
        )
        commands["machine_cpu_ms_per_command"] = round(
            (machine_busy_seconds() - machine_cpu) * per_command, 2
        )
        print(f"commands: {commands}", flush=True)
        store = store_ceiling(database_url, CLIENTS, seconds)
        print(f"event store alone: {store}", flush=True)
        ceiling = psycopg_ceiling(database_url, CLIENTS, seconds)
        print(f"ceiling: {ceiling}", flush=True)
        background = Load(base_url, 4, 2)
        runner = threading.Thread(target=background.run, args=(seconds,))
        runner.start()
        latency = end_to_end(base_url, probes=min(200, seconds * 5))
        runner.join()
        print(f"end to end: {latency}", flush=True)
        memory = {name: memory_mib(p.pid)["VmHWM"] for name, p in processes.items()}
        if args.api_workers > 1:  # the supervisor's children serve; report the largest
            children = Path(f"/proc/{processes['api'].pid}/task/{processes['api'].pid}/children")
            pids = [int(p) for p in children.read_text().split()] if children.exists() else []
            memory["api"] = max([memory_mib(p)["VmHWM"] for p in pids] or [memory["api"]])
        with psycopg.connect(database_url) as conn:
            row = conn.execute("SELECT max(notification_id) FROM reintegration_events").fetchone()
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
        ).stdout.strip()
        figures = {
            "benchmark": "commands over HTTP, end-to-end latency, process memory",
            "size": args.size,
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "commit": commit,
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
            "api_workers": args.api_workers,
            "profiled": args.profile,
            "idempotency_keys": args.idempotency_keys,
            "commands": commands,
            "event_store_alone": {
                **store,
                "what": f"{CLIENTS} threads saving one event each through the library, "
                "relay and projector running",
            },
            "ratio_to_event_store_alone": round(
                commands["commands_per_second"] / store["saves_per_second"], 4
            ),
            "ceiling": "bare psycopg loop, one row per transaction, same number of clients",
            "ceiling_rows_per_second": ceiling["rows_per_second"],
            "ratio_to_ceiling": round(
                commands["commands_per_second"] / ceiling["rows_per_second"], 4
            ),
            "end_to_end_under_load": {**latency, "background_clients": 4},
            "events_in_store": int(row[0] or 0) if row else 0,
            "peak_rss_mib": memory,
            "targets": {
                "commands_per_second": 1000,
                "p99_ms": 50,
                "end_to_end_p99_ms": 500,
                "rss_mib": 1024,
            },
        }
    finally:
        for p in processes.values():
            p.terminate()
        for p in processes.values():
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
        kafka("stop")
        with psycopg.connect(server, autocommit=True) as conn:
            dbname = psycopg.conninfo.conninfo_to_dict(database_url)["dbname"]
            conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
    keyed = "-keyed" if args.idempotency_keys else ""
    out = ROOT / "bench" / "results" / f"http-{args.size}{keyed}.json"
    out.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
