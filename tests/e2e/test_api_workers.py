"""`reintegration api --workers N`: several API processes serve one port; they need identities configured."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import httpx

from tests.e2e.conftest import API_TOKEN_HASHES, TOKENS
from tests.support import ROOT, Service, free_port, household_body, random_fin, wait_for_http


def test_two_api_workers_serve_one_port(tmp_path: Path, database_url: str) -> None:
    port = free_port()
    service = Service(
        ["api", "--workers", "2"],
        {
            "API_TOKEN_HASHES": API_TOKEN_HASHES,
            "DATABASE_URL": database_url,
            "KAFKA_BOOTSTRAP_SERVERS": "",
            "HTTP_PORT": str(port),
            "REINTEGRATION_ENV": "production",
        },
        tmp_path / "api.log",
    ).start()
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for_http(base, service)
        headers = {"Authorization": f"Bearer {TOKENS['operator']}"}
        for _ in range(4):  # spread over both workers by the kernel
            created = httpx.post(
                f"{base}/api/v1/households", json=household_body(random_fin()), headers=headers
            )
            assert created.status_code == 201, created.text
    finally:
        service.stop()


def test_several_workers_without_tokens_are_refused_in_one_line(database_url: str) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("API_TOKENS", "API_TOKEN_HASHES")}
    env.update({"DATABASE_URL": database_url, "KAFKA_BOOTSTRAP_SERVERS": ""})
    refused = subprocess.run(
        [str(ROOT / ".venv/bin/reintegration"), "api", "--workers", "2"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2
    assert refused.stderr.strip() == (
        "error: identities (OIDC_* or API_TOKEN_HASHES) are required with more than one API worker"
    )
