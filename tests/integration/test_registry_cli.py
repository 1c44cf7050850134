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

    person = stack.container.services.registry.get_person(fin)
    assert person.first_name == "Leyla" and person.idp_status == "active"
    reference = run(stack, "persons", "status-reference", fin)
    assert reference.returncode == 0, reference.stderr
    assert json.loads(reference.stdout)["status"] == "active"
    history = stack.container.services.audit.history(person.household_id)["events"]
    assert [e["actor_id"] for e in history if e["aggregate_id"] == str(person.id)][1:] == [
        "nigar",
        "nigar",
        "nigar",
    ]


def test_a_survey_is_answered_from_the_command_line_and_a_married_person_moves(
    stack: Stack,
) -> None:
    register_households(stack.container, 2)
    registry = stack.container.services.registry
    notifications = stack.container.application.recorder.select_notifications(1, 100)
    households = [n.originator_id for n in notifications if "Household" in n.topic]
    assert run(stack, "surveys", "publish").returncode == 0
    started = run(stack, "surveys", "start", str(households[0]))
    assert started.returncode == 0, started.stderr
    response_id = started.stdout.strip()
    assert run(stack, "surveys", "answer", response_id, "intention", "no").returncode == 0
    hidden = run(stack, "surveys", "answer", response_id, "employment_count", "2")
    assert hidden.returncode == 1 and "not asked" in hidden.stderr
    wrong = run(stack, "surveys", "answer", response_id, "obstacles", '["dragons"]')
    assert wrong.returncode == 2 and "value:" in wrong.stderr
    incomplete = run(stack, "surveys", "complete", response_id)
    assert incomplete.returncode == 2 and "answers.obstacles" in incomplete.stderr
    for question, value in [
        ("reasons_not_to_return", '["jobs"]'),
        ("obstacles", '["jobs","housing"]'),
        ("employment_needed", "yes"),
        ("employment_count", "1"),
        ("health_needs", "no"),
        ("school_children", "0"),
    ]:
        answered = run(stack, "surveys", "answer", response_id, question, value)
        assert answered.returncode == 0, answered.stderr
    assert run(stack, "surveys", "complete", response_id).returncode == 0

    # A member of the second household marries into the first: removed there, then added here.
    second = registry.get_household(households[1])
    spouse = next(m for m in second.members if m.relationship != "head")  # the seeder gives it two
    removed = run(
        stack, "households", "remove-member", str(households[1]), spouse.fin, "marriage_out"
    )
    assert removed.returncode == 0, removed.stderr
    person = registry.get_person(spouse.fin)
    joined = run(
        stack,
        "households",
        "add-member",
        str(households[0]),
        spouse.fin,
        "--first-name",
        person.first_name,
        "--last-name",
        person.last_name,
        "--birth-date",
        person.birth_date.isoformat(),
        "--sex",
        person.sex,
        "--relationship",
        "child_in_law",
        "--reason",
        "marriage",
    )
    assert joined.returncode == 0, joined.stderr
    assert registry.get_person(spouse.fin).household_id == households[0]
    assert registry.get_household(households[0]).member(person.id) is not None
