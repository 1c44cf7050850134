"""Every `reintegration audit ...` command answers in one envelope (what was checked, by whom,
when, against which evidence, the outcome, the differences), as JSON with --json and as text
otherwise, and exits non-zero on a mismatch; the case report reads as people write."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from infra import tamper_evidence
from tests.support import ROOT, create_database

SEED = base64.b64encode(os.urandom(32)).decode()
PUBLIC = base64.b64encode(
    tamper_evidence.public_key_bytes(tamper_evidence.signing_key(SEED))
).decode()


def run(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """A command as the auditor runs it, with the published key (and the signing key, for the
    checkpoint)."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "KAFKA_BOOTSTRAP_SERVERS": "",
        "AUDIT_SIGNING_KEY": SEED,
        "AUDIT_PUBLIC_KEYS": PUBLIC,
    }
    return subprocess.run(
        [str(ROOT / ".venv/bin/reintegration"), *args], env=env, capture_output=True, text=True
    )


ENVELOPE = {
    "kind",
    "subject",
    "generated_by",
    "generated_at",
    "evidence",
    "outcome",
    "summary",
    "findings",
    "details",
}


@pytest.fixture(scope="module")
def demo(server_url: str) -> dict[str, Any]:
    database_url = create_database(server_url)
    done = run(database_url, "demo", "great-return", "--families", "50")
    assert done.returncode == 0, done.stderr[-2000:]
    signed = run(database_url, "audit", "checkpoint")
    assert signed.returncode == 0, signed.stderr
    with psycopg.connect(database_url) as conn:
        household, decision = conn.execute(
            "SELECT originator_id, (SELECT originator_id FROM reintegration_events d "
            "WHERE d.topic LIKE %s LIMIT 1) FROM reintegration_events "
            "WHERE topic LIKE %s LIMIT 1",
            ("%EligibilityDecision.Determined", "%Household.Registered"),
        ).fetchone() or (None, None)
    return {"url": database_url, "household": str(household), "decision": str(decision)}


COMMANDS = {
    "verify": ["audit", "verify"],
    "projections": ["audit", "projections"],
    "lottery": ["audit", "lottery", "ZAN-002", "1"],
    "decision": ["audit", "decision", "{decision}"],
    "decisions": ["audit", "decisions", "--settlement", "ZAN-002"],
    "case": ["audit", "case", "{household}"],
    "case as of": ["audit", "case", "{household}", "--as-of", "2099-01-01T00:00:00Z"],
}


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_audit_command_answers_in_the_same_envelope(demo: dict[str, Any], name: str) -> None:
    args = [a.format(**demo) for a in COMMANDS[name]]
    as_json = run(demo["url"], *args, "--json")
    assert as_json.returncode == 0, as_json.stdout[-1500:] + as_json.stderr[-1500:]
    envelope = json.loads(as_json.stdout)
    assert set(envelope) == ENVELOPE
    assert (envelope["outcome"] == "ok" and envelope["findings"] == []) or all(
        f.get("severity") == "info" for f in envelope["findings"]
    )
    assert envelope["evidence"] and envelope["generated_by"] == "auditor"
    as_text = run(demo["url"], *args)
    assert as_text.returncode == 0
    assert as_text.stdout.startswith(f"{envelope['kind']}: ")
    assert "outcome: OK" in as_text.stdout and "evidence:" in as_text.stdout
    assert not re.search(r": (True|False|None)$", as_text.stdout, re.M)  # yes, no, a dash


def test_the_case_report_reads_as_people_write_in_both_languages(
    demo: dict[str, Any], tmp_path: Path
) -> None:
    month = datetime.now(UTC).month - 1  # the demo's events are dated today: its month, named
    english = "January February March April May June July August September October November "
    azerbaijani = "yanvar fevral mart aprel may iyun iyul avqust sentyabr oktyabr noyabr dekabr"
    for lang, words in (
        ("en", ("Eligible", (english + "December").split()[month], "yes")),
        ("az", ("Uyğundur", azerbaijani.split()[month], "bəli")),
    ):
        page = tmp_path / f"case-{lang}.html"
        done = run(
            demo["url"], "audit", "case", demo["household"], "--output", str(page), "--lang", lang
        )
        assert done.returncode == 0, done.stderr
        html = page.read_text(encoding="utf-8")
        text = re.sub(r"<[^>]+>", " ", re.sub(r"<style.*?</style>", "", html, flags=re.S))
        assert f'<html lang="{lang}">' in html and "@media print" in html
        for word in words:
            assert word in text, (lang, word)
        for python_value in ("None", "True", "False", "{'", "[{"):
            assert python_value not in text, (lang, python_value)
        assert "Eligibility determined" in text  # event names as words
        assert re.search(r"<ol class=\"explanation\">\s*<li>", html)  # criterion by criterion


def test_a_mismatch_exits_non_zero_in_the_envelope(demo: dict[str, Any]) -> None:
    """A recorded decision whose facts were edited in the database no longer re-runs to what
    it recorded: the envelope says so, and the command exits 1. (Last: it breaks the log.)"""
    with psycopg.connect(demo["url"]) as conn:
        conn.execute(
            "UPDATE reintegration_events SET state = convert_to(replace(convert_from(state, "
            "'UTF8'), '\\\"head_age\\\":', '\\\"head_age\\\":1'), 'UTF8') WHERE originator_id = %s",
            (demo["decision"],),
        )
    done = run(demo["url"], "audit", "decision", demo["decision"], "--json")
    assert done.returncode == 1
    envelope = json.loads(done.stdout)
    assert envelope["outcome"] == "failed" and envelope["findings"]
    assert any("facts" in f["problem"] for f in envelope["findings"])
