from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from infra.identity import token_hash
from tests.support import Service, free_port, wait_for_http

TOKENS = {
    "operator": "op-token-1",
    "supervisor": "sup-token-1",
    "auditor": "aud-token-1",
    "integration": "int-token-1",
}
API_TOKENS = ",".join(f"{token}={role}-user:{role}" for role, token in TOKENS.items())
"""Plaintext tokens: accepted in development only."""
API_TOKEN_HASHES = ",".join(
    f"{token_hash(token)}={role}-user:{role}" for role, token in TOKENS.items()
)
"""The same tokens as production takes them: by their hashes."""

# Every service a test starts inherits these: tests poll and retry far faster than people,
# from one address. The throttles themselves are tested in tests/unit/test_identity.py.
os.environ.setdefault("HTTP_RATE_LIMIT", "100000/minute")
os.environ.setdefault("HTTP_AUTH_FAILURES_PER_MINUTE", "100000")


@dataclass
class RunningService:
    base_url: str
    service: Service
    database_url: str | None
    topic_prefix: str | None

    def client(self, role: str | None = "operator") -> httpx.Client:
        headers = {"Authorization": f"Bearer {TOKENS[role]}"} if role else {}
        if role == "auditor":  # an auditor's reads of personal data say why
            headers["X-Access-Reason"] = "end-to-end test"
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=30)


def start_service(tmp_path: Path, env: dict[str, str]) -> Iterator[RunningService]:
    port = free_port()
    base = {
        "API_TOKEN_HASHES": API_TOKEN_HASHES,
        "HTTP_DOCS": "public",
        "HTTP_PORT": str(port),
        "LOG_FORMAT": "json",
        "REINTEGRATION_ENV": "production",
        "KAFKA_PARTITIONS": "3",
    }
    service = Service(["serve"], {**base, **env}, tmp_path / "service.log").start()
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(base_url, service)
        yield RunningService(
            base_url, service, env.get("DATABASE_URL"), env.get("KAFKA_TOPIC_PREFIX")
        )
    finally:
        service.stop()


@pytest.fixture
def service_with_kafka(
    tmp_path: Path, database_url: str, kafka_bootstrap: str, topic_prefix: str
) -> Iterator[RunningService]:
    yield from start_service(
        tmp_path,
        {
            "DATABASE_URL": database_url,
            "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "KAFKA_TOPIC_PREFIX": topic_prefix,
        },
    )
