"""Helpers the tests share: real services, fresh databases, random topics, bounded waits."""

from __future__ import annotations

import importlib.util
import os
import secrets
import socket
import string
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import httpx
import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")
FIN_ALPHABET = string.ascii_uppercase + string.digits


def random_fin() -> str:
    return "".join(secrets.choice(FIN_ALPHABET) for _ in range(7))


def require_env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(
            f"{name} is not set: run the suite with `make test`, or `make up` and export what it prints"
        )
    return value


def create_database(server_url: str, name: str | None = None) -> str:
    """A new empty database on the test server; returns its URL."""
    name = name or f"t_{secrets.token_hex(6)}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return database_url(server_url, name)


def database_url(server_url: str, name: str) -> str:
    """The URL of database ``name`` on the server of ``server_url``."""
    params = conninfo_to_dict(server_url)
    params["dbname"] = name
    return make_conninfo(**params)


def wait_until(
    check: Callable[[], T | None], timeout_s: float = 30.0, interval_s: float = 0.05, what: str = ""
) -> T:
    """Poll ``check`` until it returns something truthy; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what or check}")
        time.sleep(interval_s)


_HANDED_OUT: set[int] = set()


def free_ports(count: int) -> int:
    """The first of ``count`` consecutive ports free on loopback now, for a server a test
    starts. They are taken outside the kernel's ephemeral range: a port inside it (what binding
    port 0 gives) can become an outgoing connection's source port between this probe and the
    server's bind, and it did (a broker could not bind its controller port). No port is handed
    out twice by one test process, nor by two of pytest-xdist's workers."""
    try:
        first, last = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        first, last = 32768, 60999
    # Below the range when there is room there (the usual 32768), else above it.
    low, high = (10_000, first - count) if first >= 20_000 else (last + 1, 65_536 - count)
    # On pytest-xdist's workers (make test), each worker takes its own slice of that room.
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1 and worker.isdigit():
        width = (high - low) // workers
        low, high = low + int(worker) * width, low + (int(worker) + 1) * width
    if high - low < 1_000:
        raise RuntimeError(f"no room for test servers outside the ephemeral ports {first}-{last}")
    for _ in range(200):
        start = low + secrets.randbelow(high - low)
        run = range(start, start + count)
        if not _HANDED_OUT.intersection(run) and all(_bindable(port) for port in run):
            _HANDED_OUT.update(run)
            return start
    raise RuntimeError(f"no run of {count} free ports between {low} and {high + count}")


def free_port() -> int:
    return free_ports(1)


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def household_body(*fins: str, origin: str = "ZAN-002") -> dict[str, Any]:
    relationships = ["head", "spouse", "child", "child", "parent", "sibling"]
    return {
        "origin_settlement_code": origin,
        "current_address": "Bakı, Xətai rayonu, yataqxana 4, otaq 12",
        "members": [
            {
                "fin": fin,
                "first_name": ["Aysel", "Rauf", "Nigar", "Elçin", "Səbinə", "Ülvi"][i % 6],
                "last_name": "Məmmədova" if i % 2 == 0 else "Məmmədov",
                "patronymic": "Rauf qızı" if i == 0 else None,
                "birth_date": f"{1960 + 7 * i}-0{1 + i % 9}-1{i % 9}",
                "sex": "female" if i % 2 == 0 else "male",
                "relationship": relationships[i % len(relationships)],
            }
            for i, fin in enumerate(fins)
        ],
    }


class Service:
    """`reintegration <command>` running as a real process with its own environment."""

    def __init__(
        self,
        command: list[str],
        env: dict[str, str],
        log_path: Path,
        program: list[str] | None = None,
    ) -> None:
        self.program = program or [str(ROOT / ".venv/bin/reintegration")]
        self.command = command
        self.env = env
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Service:
        full_env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("API_TOKENS", "API_TOKEN_HASHES", "REINTEGRATION_TOKEN")
        }
        full_env.update(self.env)
        self.log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [*self.program, *self.command],
            env=full_env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        return self

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.log.close()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


def wait_for_http(base_url: str, service: Service, timeout_s: float = 60.0) -> None:
    def healthy() -> bool:
        assert service.process is not None
        if service.process.poll() is not None:
            raise AssertionError(f"service exited early:\n{service.output()[-3000:]}")
        try:
            return httpx.get(f"{base_url}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(healthy, timeout_s, 0.2, what=f"{base_url}/healthz")


PYTHON = sys.executable


STANDALONE_VERIFIER = ROOT / "tools" / "verify_transparency.py"


def standalone_verifier() -> ModuleType:
    """tools/verify_transparency.py loaded as a module (it is a script outside the package)."""
    if "verify_transparency" in sys.modules:
        return sys.modules["verify_transparency"]
    spec = importlib.util.spec_from_file_location("verify_transparency", STANDALONE_VERIFIER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["verify_transparency"] = module
    spec.loader.exec_module(module)
    return module
