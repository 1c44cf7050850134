"""No personal data where it does not belong: known people are registered, read, searched,
corrected, refused and looked up from the command line; no log line of the service or of the
command names their FIN, names, address or phone."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import API_TOKEN_HASHES, TOKENS, RunningService, start_service
from tests.support import ROOT, household_body, random_fin, wait_until

FIRST, LAST, PATRONYMIC = "Qumru", "Xanbalayeva", "Səfər qızı"
ADDRESS = "Şuşa küçəsi 77, mənzil 19"
PHONE, PHONE_DIGITS = "+994 50 777 12 34", "507771234"


@pytest.fixture
def service(tmp_path: Path, database_url: str) -> Iterator[RunningService]:
    yield from start_service(
        tmp_path,
        {"DATABASE_URL": database_url, "KAFKA_BOOTSTRAP_SERVERS": "", "LOG_LEVEL": "debug"},
    )


def test_flows_that_log_leave_no_personal_data_in_any_log_line(
    service: RunningService, tmp_path: Path
) -> None:
    fin, spouse = random_fin(), random_fin()
    body = household_body(fin, spouse)
    body["members"][0].update(first_name=FIRST, last_name=LAST, patronymic=PATRONYMIC)
    body.update(current_address=ADDRESS, contact_phone=PHONE)
    with service.client("operator") as client, service.client("auditor") as auditor:
        created = client.post("/api/v1/households", json=body)
        assert created.status_code == 201, created.text
        household = created.json()["household_id"]
        assert client.post("/api/v1/households", json=body).status_code == 409
        bad = {**body, "members": [{**body["members"][0], "birth_date": f"{FIRST} 1999"}]}
        assert client.post("/api/v1/households", json=bad).status_code == 422
        malformed = client.post(
            "/api/v1/households",
            content=f'{{"fin": "{fin}", "name": "{LAST}"',
            headers={"Content-Type": "application/json"},
        )
        assert malformed.status_code in (400, 422)
        wait_until(
            lambda: client.get(f"/api/v1/persons/{fin}").status_code == 200 or None,
            what="the person to be projected",
        )
        assert auditor.get(f"/api/v1/households/{household}").status_code == 200
        assert client.get("/api/v1/persons", params={"name_prefix": LAST}).status_code == 200
        assert client.get("/api/v1/households", params={"fin": fin}).status_code == 200
        corrected = client.post(
            f"/api/v1/persons/{spouse}/corrections",
            json={"field": "first_name", "new_value": FIRST, "reason": f"typo in {LAST}"},
        )
        assert corrected.status_code == 200, corrected.text
        assert client.get(f"/api/v1/persons/{fin[:6]}Z").status_code in (404, 422)
        assert client.get(f"/api/v1/persons/{fin}/access-report").status_code == 200
        anonymous = httpx.get(f"{service.base_url}/api/v1/persons/{fin}")
        assert anonymous.status_code == 401
    env = {
        **{k: v for k, v in os.environ.items() if k != "API_TOKENS"},
        "DATABASE_URL": service.database_url or "",
        "KAFKA_BOOTSTRAP_SERVERS": "",
        "REINTEGRATION_ENV": "production",
        "API_TOKEN_HASHES": API_TOKEN_HASHES,
        "REINTEGRATION_TOKEN": TOKENS["operator"],
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "debug",
    }
    cli = str(ROOT / ".venv/bin/reintegration")
    shown = subprocess.run([cli, "persons", "show", fin], env=env, capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr
    refused = subprocess.run(
        [cli, "persons", "correct", fin, "birth_date", f"{FIRST}!", "--reason", LAST],
        env=env,
        capture_output=True,
        text=True,
    )
    assert refused.returncode != 0

    logs = service.service.output() + shown.stderr
    assert '"event": "request"' in logs or '"event":"request"' in logs  # the service did log
    for needle in (fin, spouse, FIRST, LAST, "Səfər", "Şuşa küçəsi", PHONE_DIGITS):
        assert needle.lower() not in logs.lower(), f"{needle!r} is in a log line"
