"""The Great Return over HTTP: a settlement opened after clearance, a public lottery, an
offer accepted, consent, a convoy, arrival to completion, and the views and audit re-run."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

from tests.e2e.conftest import RunningService
from tests.e2e.test_eligibility_over_http import approve_shipped_rule_set, documented_household
from tests.e2e.test_surveys_over_http import publish
from tests.lottery import fresh
from tests.support import ROOT, wait_until

TODAY = date.today().isoformat()


def test_a_family_is_housed_by_lottery_and_moves_home(
    service_with_kafka: RunningService, tmp_path: Path
) -> None:
    publish(service_with_kafka)
    approve_shipped_rule_set(service_with_kafka)
    operator = service_with_kafka.client("operator")
    supervisor = service_with_kafka.client("supervisor")
    family = documented_household(operator)
    assert operator.post(f"/api/v1/households/{family}/eligibility").json()["result"] == "eligible"

    assert operator.post("/api/v1/settlements", json={"code": "ZAN-002"}).status_code == 201
    unknown = operator.post("/api/v1/settlements", json={"code": "ZZZ-999"})
    assert unknown.status_code == 422 and unknown.json()["field"] == "code"
    units = operator.post(
        "/api/v1/settlements/ZAN-002/units",
        json={
            "units": [{"reference": "001", "address": "Ağalı, ev 1", "rooms": 3, "kind": "house"}]
        },
    )
    assert units.status_code == 201, units.text
    not_cleared = supervisor.post("/api/v1/settlements/ZAN-002/opening", json={"opened_on": TODAY})
    assert not_cleared.status_code == 409 and not_cleared.json()["field"] == "clearance"
    cleared = operator.post(
        "/api/v1/settlements/ZAN-002/clearance",
        json={"agency": "ANAMA", "certified_on": TODAY, "certificate_reference": "ANAMA-17"},
    )
    assert cleared.status_code == 200, cleared.text
    assert (
        operator.post("/api/v1/settlements/ZAN-002/opening", json={"opened_on": TODAY}).status_code
        == 403
    )
    assert (
        supervisor.post(
            "/api/v1/settlements/ZAN-002/opening", json={"opened_on": TODAY}
        ).status_code
        == 200
    )

    participants = fresh()

    def announced() -> dict[str, Any] | None:
        # the entrants come from the households view: wait until it has the family
        got = supervisor.post(
            "/api/v1/settlements/ZAN-002/rounds",
            json={"participants": participants.announce_json()},
        )
        return got.json() if got.status_code == 201 else None

    round_ = wait_until(announced, timeout_s=30, what="the round's announcement")
    assert round_["entrants"] == 1 and round_["units"] == 1
    number = round_["round_number"]
    for reveal in participants.reveal_json():
        revealed = supervisor.post(
            f"/api/v1/settlements/ZAN-002/rounds/{number}/reveals", json=reveal
        )
        assert revealed.status_code == 200, revealed.text
    assert revealed.json()["waiting_for"] == []
    drawn = supervisor.post(
        f"/api/v1/settlements/ZAN-002/rounds/{number}/draw",
        json={"witnesses": "Public Council observers"},
    )
    assert drawn.status_code == 200, drawn.text
    assert drawn.json()["assignments"][0]["household_id"] == family
    published = supervisor.get(
        f"/api/v1/settlements/ZAN-002/rounds/{round_['round_number']}/result"
    )
    assert published.status_code == 200, published.text
    (tmp_path / "round.json").write_text(published.text, encoding="utf-8")
    rerun = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "rerun_lottery.py"), str(tmp_path / "round.json")],
        capture_output=True,
        text=True,
    )
    assert rerun.returncode == 0, rerun.stderr
    assert "matches" in rerun.stdout

    base = f"/api/v1/households/{family}"
    assert operator.post(f"{base}/offer/acceptance").json()["stage"] == "allocated"
    no_consent = operator.post(
        "/api/v1/convoys",
        json={
            "settlement_code": "ZAN-002",
            "departs_on": TODAY,
            "vehicles": 1,
            "household_ids": [family],
        },
    )
    assert no_consent.status_code == 409 and no_consent.json()["field"] == "consent"
    consent = operator.post(
        f"{base}/consent",
        json={
            "informed_of": ["house", "date"],
            "document_reference": "C-1",
            "recorded_by": "aysel",
        },
    )
    assert consent.json()["stage"] == "consented"
    convoy = operator.post(
        "/api/v1/convoys",
        json={
            "settlement_code": "ZAN-002",
            "departs_on": TODAY,
            "vehicles": 1,
            "household_ids": [family],
        },
    ).json()
    early = operator.post(f"{base}/keys", json={"handed_over_on": TODAY})
    assert early.status_code == 409 and "must be arrived" in early.json()["detail"]
    assert (
        operator.post(
            f"/api/v1/convoys/{convoy['convoy_id']}/departure", json={"departed_on": TODAY}
        ).status_code
        == 200
    )
    assert (
        operator.post(
            f"{base}/arrival", json={"arrived_on": TODAY, "members_arrived": 3}
        ).status_code
        == 200
    )
    assert operator.post(f"{base}/keys", json={"handed_over_on": TODAY}).status_code == 200
    residence = operator.post(
        f"{base}/residence", json={"registered_on": TODAY, "registration_reference": "R-1"}
    )
    assert residence.json()["stage"] == "residence_registered"
    for utility in ("electricity", "gas", "water"):
        done = operator.post(f"{base}/utilities", json={"utility": utility, "connected_on": TODAY})
        assert done.status_code == 200, done.text
    assert (
        operator.post(f"{base}/relocation/completion", json={"completed_on": TODAY}).json()["stage"]
        == "completed"
    )
    assessed = operator.post(
        f"{base}/reintegration/assessments",
        json={
            "framework": "iasc",
            "criterion": "documentation",
            "met": True,
            "evidence": "IDs",
            "assessor": "aysel",
            "assessed_on": TODAY,
        },
    )
    assert assessed.status_code == 200 and "documentation" not in assessed.json()["unmet_criteria"]

    def completed() -> list[dict[str, Any]] | None:
        rows = operator.get("/api/v1/relocation/pipeline?settlement_code=ZAN-002").json()
        return (
            rows
            if rows == [{"settlement_code": "ZAN-002", "stage": "completed", "households": 1}]
            else None
        )

    wait_until(completed, timeout_s=30, what="the pipeline view")
    occupied = operator.get("/api/v1/settlements/ZAN-002/units?status=occupied").json()
    assert [u["household_id"] for u in occupied] == [family]
    returnee = operator.get("/api/v1/reintegration/returnees?settlement_code=ZAN-002").json()[0]
    expected_end = (date.today().replace(year=date.today().year + 3)).isoformat()
    assert returnee["allowance_azn"] == 33 and returnee["allowance_terminates_on"] == expected_end
    timeline = [e["event"] for e in operator.get(f"{base}/timeline").json()]
    assert timeline[0] == "HouseholdRegistered" and timeline[-1] == "DurableSolutionAssessed"
    assert "KeysHandedOver" in timeline and "EligibilityDetermined" in timeline

    with service_with_kafka.client("auditor") as auditor:
        rerun = auditor.get(
            f"/api/v1/audit/settlements/ZAN-002/rounds/{round_['round_number']}/rerun"
        )
        assert rerun.status_code == 200 and rerun.json()["matches"] is True
