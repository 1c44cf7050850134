"""Eligibility from the command line: draft and approve the shipped rule set, determine a
settlement with a progress bar, explain a decision, re-run it as an auditor."""

from __future__ import annotations

import json
import os
import subprocess

from application.demo import document_household
from domain.base import acting_as
from infra.bootstrap import Container
from tests.integration.test_eligibility import OPERATOR, approved_v1, register
from tests.support import ROOT


def run(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "KAFKA_BOOTSTRAP_SERVERS": "",
        "USER": "nigar",
    }
    return subprocess.run(
        [str(ROOT / ".venv/bin/reintegration"), *args], env=env, capture_output=True, text=True
    )


def test_a_settlement_is_determined_explained_and_re_run_from_the_command_line(
    container: Container, database_url: str
) -> None:
    households = [register(container, size=n, origin="LAC-002") for n in (2, 5)]
    with acting_as(OPERATOR):
        document_household(container.services, households[0])
        document_household(container.services, households[1], intention="no")

    checked = run(database_url, "rule-sets", "check")
    assert checked.returncode == 0 and "examples pass" in checked.stderr
    assert run(database_url, "rule-sets", "draft").returncode == 0
    refused = run(database_url, "eligibility", "determine", "--settlement", "LAC-002")
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        f"error: rule set in force great-return-housing on {_today()} not found"
    )
    approved = run(
        database_url,
        "rule-sets",
        "approve",
        "great-return-housing",
        "1",
        "--act",
        "Committee decision No. 14",
        "--effective-from",
        "2025-01-01",
        "--by",
        "rauf",
    )
    assert approved.returncode == 0, approved.stderr

    determined = run(database_url, "eligibility", "determine", "--settlement", "LAC-002")
    assert determined.returncode == 0, determined.stderr
    summary = json.loads(determined.stdout)
    assert summary["decided"] == 2 and summary["results"] == {"eligible": 1, "ineligible": 1}

    again = run(database_url, "eligibility", "determine", str(households[0]))
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["status"] == "unchanged"  # same version, same facts

    shown = run(database_url, "eligibility", "show", str(households[1]), "--lang", "en")
    assert shown.returncode == 0, shown.stderr
    assert 'intention_to_return = "no"' in shown.stdout and "Not eligible" in shown.stdout

    decision = container.services.eligibility.current_decision(households[0])
    assert decision is not None and decision.determined_by == "nigar"
    rerun = run(database_url, "audit", "decision", str(decision.id), "--json")
    assert rerun.returncode == 0
    assert json.loads(rerun.stdout)["summary"]["identical result"] is True
    every = run(database_url, "audit", "decisions", "--all", "--json")
    assert every.returncode == 0, every.stderr
    assert json.loads(every.stdout)["summary"]["matches"] == 2

    bad = run(
        database_url,
        "eligibility",
        "override",
        str(decision.id),
        "--result",
        "maybe",
        "--justification",
        "no",
    )
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    assert "result: one of eligible, ineligible, needs_review" in bad.stderr


def test_a_settlement_determined_by_worker_processes_records_each_decision_as_the_caller(
    container: Container, database_url: str
) -> None:
    households = [register(container, size=n, origin="LAC-002") for n in (2, 3, 5)]
    with acting_as(OPERATOR):
        for household_id in households:
            document_household(container.services, household_id)
    approved_v1(container)
    determined = run(
        database_url, "eligibility", "determine", "--settlement", "LAC-002", "--workers", "2"
    )
    assert determined.returncode == 0, determined.stderr
    assert json.loads(determined.stdout)["decided"] == 3
    for household_id in households:
        decision = container.services.eligibility.current_decision(household_id)
        assert decision is not None and decision.determined_by == "nigar"


def _today() -> str:
    from datetime import date

    return date.today().isoformat()
