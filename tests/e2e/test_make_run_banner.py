"""`make run` (development mode) prints tokens and curl commands that work as printed."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.support import ROOT, Service, free_port, wait_for_http, wait_until


def test_development_mode_prints_tokens_and_a_curl_example_that_works(tmp_path: Path) -> None:
    port = free_port()
    service = Service(
        ["serve"],
        {
            "REINTEGRATION_ENV": "development",
            "API_TOKENS": "",
            "DATABASE_URL": "",
            "KAFKA_BOOTSTRAP_SERVERS": "",
            "HTTP_PORT": str(port),
            "REINTEGRATION_DATA_DIR": str(tmp_path / "data"),
        },
        tmp_path / "serve.log",
    ).start()
    try:
        wait_for_http(f"http://127.0.0.1:{port}", service)
        output = service.output()
        for role in ("operator", "supervisor", "auditor", "integration"):
            assert f"  {role}" in output
        curls = [line.strip() for line in output.splitlines() if line.strip().startswith("curl ")]
        assert len(curls) == 3, output

        created = subprocess.run(
            ["bash", "-c", curls[0]], capture_output=True, text=True, check=True
        )
        household_id = json.loads(created.stdout)["household_id"]

        def fetched() -> dict[str, object] | None:
            shown = subprocess.run(
                ["bash", "-c", curls[1].replace("HOUSEHOLD_ID", household_id)],
                capture_output=True,
                text=True,
                check=True,
            )
            body = json.loads(shown.stdout)
            return body if body.get("household_id") == household_id else None

        household = wait_until(fetched, timeout_s=30, what="the printed GET to show the household")
        assert household["registered_by"] == "dev-operator"

        # The Great Return demo, as printed, in a second process on the same embedded database
        # while the service runs; the printed pipeline request then shows its families.
        demo = next(line.strip() for line in output.splitlines() if "demo great-return" in line)
        ran = subprocess.run(
            ["bash", "-c", demo],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env={
                **os.environ,
                "REINTEGRATION_DATA_DIR": str(tmp_path / "data"),
                "DATABASE_URL": "",
                "KAFKA_BOOTSTRAP_SERVERS": "",
            },
        )
        assert ran.returncode == 0, ran.stderr[-2000:]

        def pipeline() -> list[dict[str, object]] | None:
            shown = subprocess.run(
                ["bash", "-c", curls[2]], capture_output=True, text=True, check=True
            )
            rows = json.loads(shown.stdout)
            return rows if any(r["stage"] == "completed" for r in rows) else None

        stages = wait_until(pipeline, timeout_s=60, what="the printed pipeline request")
        assert {r["settlement_code"] for r in stages} == {"ZAN-002"}
    finally:
        service.stop()
