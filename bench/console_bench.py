"""The web console at the national size: every page's render time, beside the API read it
stands on.

    python -m bench.console_bench --size quick    # 5,000 households, a minute or two
    python -m bench.console_bench --size full     # the national log (175,000 households)
    python -m bench.console_bench --database URL  # a database an earlier run kept (--keep)

Fills a fresh database with the national log of bench/national.py (its views kept up as it is
written, embedded mode), starts `reintegration api` on it in development mode (so that the
console's development sign-in works; nothing else differs), signs in as an operator, an
auditor and a supervisor, then requests each console page ``SAMPLES`` times with varying cases
and settlements, one request at a time: p50 and p99 in milliseconds, the target being 200 ms at
p99. Beside each page, the API read it stands on, over the same HTTP connection: the rest is
the console's own work (templates, translations, the in-process call). Writes
bench/results/console-<size>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import secrets
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bench.national import SIZES, National
from bench.pipeline_bench import Watched, fresh_database, percentile, say, server_url, wait_ready
from infra.bootstrap import Container
from infra.config import Settings
from tests.support_console import signed_in

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = {"quick": 100, "full": 200}
TARGET_P99_MS = 200
ACCOUNTS = {
    "operator": "bench-console-operator",
    "auditor": "bench-console-auditor",
    "supervisor": "bench-console-supervisor",
}


def timed(samples: int, client: httpx.Client, path: Callable[[], str]) -> dict[str, float]:
    durations = []
    for _ in range(samples):
        target = path()
        started = time.perf_counter()
        answer = client.get(target)
        durations.append((time.perf_counter() - started) * 1000)
        assert answer.status_code == 200, (answer.request.url, answer.status_code)
    return {
        "p50_ms": round(percentile(durations, 50), 1),
        "p99_ms": round(percentile(durations, 99), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=SIZES, default="quick")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--database", help="a database an earlier run kept")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    figures: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "size": args.size,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "target_p99_ms": TARGET_P99_MS,
    }
    server = server_url()
    database_url = args.database or fresh_database(server)
    try:
        if not args.database:
            settings = Settings(database_url=database_url, data_dir=ROOT / ".data/bench")
            generator = Container(replace(settings, kafka_bootstrap_servers=None))
            started = time.perf_counter()
            figures["log"] = National(generator, SIZES[args.size], args.seed, say).run()
            figures["log"]["generate_seconds"] = round(time.perf_counter() - started, 1)
            generator.projections.catch_up()
            generator.close()
            with psycopg.connect(database_url, autocommit=True) as conn:
                conn.execute("ANALYZE")
        figures["pages"] = measure(database_url, rng, SAMPLES[args.size])
    finally:
        if not args.keep and not args.database:
            with psycopg.connect(server, autocommit=True) as conn:
                name = psycopg.conninfo.conninfo_to_dict(database_url)["dbname"]
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        elif args.keep:
            print(f"kept: {database_url}")
    out = ROOT / "bench" / "results" / f"console-{args.size}.json"
    out.write_text(json.dumps(figures, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(figures, indent=2, ensure_ascii=False))


def measure(database_url: str, rng: random.Random, samples: int) -> dict[str, Any]:
    with psycopg.connect(database_url) as conn:
        households = [
            str(r[0])
            for r in conn.execute(
                "SELECT household_id FROM projection_households.rm_households"
            ).fetchall()
        ]
        opened = [
            r[0]
            for r in conn.execute(
                "SELECT DISTINCT settlement_code FROM projection_housing.rm_allocation_rounds"
            ).fetchall()
        ]
        returning = [
            str(r[0])
            for r in conn.execute(
                "SELECT household_id FROM projection_housing.rm_relocations LIMIT 2000"
            ).fetchall()
        ]
        convoys = [
            str(r[0])
            for r in conn.execute("SELECT convoy_id FROM projection_housing.rm_convoys").fetchall()
        ]
    port = 28000 + secrets.randbelow(1000)
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "KAFKA_BOOTSTRAP_SERVERS": "",
        "REINTEGRATION_ENV": "development",
        "API_TOKENS": ",".join(f"{role}-token={user}:{role}" for role, user in ACCOUNTS.items()),
        "HTTP_PORT": str(port),
        "HTTP_RATE_LIMIT": "1000000/minute",
        "LOG_LEVEL": "warning",
    }
    api = Watched("api", env)
    base = f"http://127.0.0.1:{port}"
    wait_ready(base)
    prefixes = ["məm", "əli", "hüs", "ism", "quli", "cəf", "rəh", "abb"]
    why = "reason=benchmark"
    today = datetime.now(UTC).date().isoformat()
    pick = rng.choice
    pages: dict[str, tuple[str, Callable[[], str], Callable[[], str] | None]] = {
        # name: (role, console path, the API read it stands on)
        "search persons by name prefix": (
            "operator",
            lambda: f"/console/search?kind=persons&name={pick(prefixes)}",
            lambda: f"/api/v1/persons?name_prefix={pick(prefixes)}&limit=25&total=true",
        ),
        "search households of a settlement": (
            "operator",
            lambda: f"/console/search?kind=households&settlement={pick(opened)}&page=3",
            lambda: (
                f"/api/v1/households?origin_settlement={pick(opened)}&limit=25&offset=50&total=true"
            ),
        ),
        "case": (
            "operator",
            lambda: f"/console/households/{pick(households)}",
            lambda: f"/api/v1/households/{pick(households)}",
        ),
        "case of a returnee": (
            "operator",
            lambda: f"/console/households/{pick(returning)}",
            lambda: f"/api/v1/households/{pick(returning)}/relocation",
        ),
        "case for an auditor": (
            "auditor",
            lambda: f"/console/households/{pick(households)}?{why}",
            lambda: f"/api/v1/audit/households/{pick(households)}/history?{why}",
        ),
        "case as of a date": (
            "auditor",
            lambda: f"/console/households/{pick(households)}/as-of?date={today}&{why}",
            lambda: f"/api/v1/audit/households/{pick(households)}?as_of={today}T23:59:59Z&{why}",
        ),
        "settlements": ("operator", lambda: "/console/settlements", None),
        "settlement": (
            "operator",
            lambda: f"/console/settlements/{pick(opened)}",
            lambda: f"/api/v1/relocation/pipeline?settlement={pick(opened)}",
        ),
        "lottery round": (
            "auditor",
            lambda: f"/console/settlements/{pick(opened)}/rounds/1",
            lambda: f"/api/v1/settlements/{pick(opened)}/rounds/1/result",
        ),
        "convoy manifest": (
            "operator",
            lambda: f"/console/documents/convoys/{pick(convoys)}",
            None,
        ),
        "audit overview": ("auditor", lambda: "/console/audit", None),
        "read log": ("auditor", lambda: "/console/audit/access-log", None),
        "tasks": ("operator", lambda: "/console/tasks", None),
    }
    results: dict[str, Any] = {}
    clients = {role: signed_in(base, f"{role}-token") for role in ACCOUNTS}
    bearer = {
        role: httpx.Client(
            base_url=base,
            timeout=60,
            headers={"Authorization": f"Bearer {role}-token", "X-Access-Reason": "benchmark"},
        )
        for role in ACCOUNTS
    }
    try:
        for name, (role, console_path, api_path) in pages.items():
            client = clients[role]
            if client.get(console_path()).status_code != 200:
                results[name] = {"skipped": "not served"}
                continue
            for _ in range(5):  # warm: templates compiled, pools filled
                client.get(console_path())
            entry: dict[str, Any] = {"console": timed(samples, client, console_path)}
            if api_path is not None:
                entry["api_read"] = timed(samples, bearer[role], api_path)
            entry["within_target"] = entry["console"]["p99_ms"] <= TARGET_P99_MS
            results[name] = entry
            say(f"{name}: p99 {entry['console']['p99_ms']} ms", 1, 1)
    finally:
        for client in [*clients.values(), *bearer.values()]:
            client.close()
        memory = api.stop()
    return {"samples_per_page": samples, "by_page": results, "api_process": memory}


if __name__ == "__main__":
    main()
