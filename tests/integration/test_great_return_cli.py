"""The Great Return from the command line: the demo takes Aghali through the lottery and the
first convoys; the auditor re-runs the draw; bad input is one line and a non-zero exit."""

from __future__ import annotations

import json

from tests.integration.test_eligibility_cli import run


def test_the_aghali_demo_runs_and_its_lottery_re_runs_identically(database_url: str) -> None:
    demo = run(database_url, "demo", "great-return", "--families", "80")
    assert demo.returncode == 0, demo.stderr[-2000:]
    shown = json.loads(demo.stdout)
    summary = shown["summary"]
    assert summary["declined"] == 6 and summary["expired"] == 2
    assert shown["units_by_status"]["occupied"] == 28  # two convoys: 10 and 18 families
    assert shown["pipeline"]["completed"] == 10

    audit = run(database_url, "audit", "lottery", "ZAN-002", "1", "--json")
    assert audit.returncode == 0, audit.stderr
    assert json.loads(audit.stdout)["outcome"] == "ok"

    pipeline = run(database_url, "relocation", "pipeline", "ZAN-002")
    assert pipeline.returncode == 0 and "completed" in pipeline.stdout

    bad_date = run(
        database_url, "relocation", "keys", shown["convoys"][0]["convoy_id"], "--on", "2026-13-01"
    )
    assert bad_date.returncode == 2 and len(bad_date.stderr.strip().splitlines()) == 1
    not_in_programme = run(database_url, "settlements", "open", "ZAN-003", "--on", "2026-01-01")
    assert not_in_programme.returncode == 1
    assert not_in_programme.stderr.strip().startswith("error: settlement ZAN-003 in the programme")
