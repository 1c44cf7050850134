"""The registry from the command line: commands act as the operator; bad input is one line and exits non-zero."""

from __future__ import annotations

import json
import os
import subprocess

from tests.integration.conftest import Stack, register_households
from tests.support import ROOT


def run(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DATABASE_URL": stack.settings.database_url or "",
        "KAFKA_BOOTSTRAP_SERVERS": "",
        "USER": "nigar",
    }
    return subprocess.run(
        [str(ROOT / ".venv/bin/reintegration"), *args], env=env, capture_output=True, text=True
    )


def test_person_commands_record_the_operator_and_refuse_bad_input_in_one_line(stack: Stack) -> None:
    register_households(stack.container, 1)
    first = stack.container.application.recorder.select_notifications(2, 1)[0]
    fin = stack.container.application.mapper.to_domain_event(first).fin

    granted = run(
        stack, "persons", "grant-status", fin, "--basis", "Law 669-IQ", "--effective", "2021-05-01"
    )
    assert granted.returncode == 0, granted.stderr
    again = run(
        stack, "persons", "grant-status", fin, "--basis", "Law 669-IQ", "--effective", "2021-05-01"
    )
    assert again.returncode == 1 and again.stderr.strip() == "error: IDP status is already active"
    bad_date = run(
        stack,
        "persons",
        "end-status",
        fin,
        "--basis",
        "b",
        "--effective",
        "May 1st",
        "--reason",
        "r",
    )
    assert bad_date.returncode == 2 and len(bad_date.stderr.strip().splitlines()) == 1
    corrected = run(stack, "persons", "correct", fin, "first_name", "Leyla", "--reason", "typo")
    assert corrected.returncode == 0, corrected.stderr
    unknown = run(stack, "persons", "correct", "ZZZZZZ9", "first_name", "X", "--reason", "typo")
    assert unknown.returncode == 1 and "not found" in unknown.stderr

    person = stack.container.application.get_person(fin)
    assert person.first_name == "Leyla" and person.idp_status == "active"
    reference = run(stack, "persons", "status-reference", fin)
    assert reference.returncode == 0, reference.stderr
    assert json.loads(reference.stdout)["status"] == "active"
    history = stack.container.case_history(person.household_id)["events"]
    assert [e["actor_id"] for e in history if e["aggregate_id"] == str(person.id)][1:] == [
        "nigar",
        "nigar",
        "nigar",
    ]
