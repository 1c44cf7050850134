"""Eligibility over HTTP: a rule set drafted and approved, a household determined and its
decision explained, roles enforced, an auditor's re-run, overrides and appeals."""

from __future__ import annotations

from typing import Any

from application.shipped import shipped_rule_set
from tests.e2e.conftest import RunningService
from tests.e2e.test_registry_over_http import register
from tests.e2e.test_surveys_over_http import publish, survey
from tests.support import random_fin, wait_until


def approve_shipped_rule_set(service: RunningService) -> None:
    with service.client("operator") as operator:
        drafted = operator.post("/api/v1/rule-sets", json=shipped_rule_set())
        assert drafted.status_code == 201, drafted.text
        assert drafted.json()["examples_pass"] is True
        refused = operator.post(
            "/api/v1/rule-sets/great-return-housing/versions/1/approval",
            json={"act_reference": "Committee decision No. 14"},
        )
        assert refused.status_code == 403
    with service.client("supervisor") as supervisor:
        approved = supervisor.post(
            "/api/v1/rule-sets/great-return-housing/versions/1/approval",
            json={"act_reference": "Committee decision No. 14", "effective_from": "2025-01-01"},
        )
        assert approved.status_code == 200, approved.text
        assert approved.json()["status"] == "approved"


def documented_household(client: Any, intention: str = "now") -> str:
    fins = [random_fin(), random_fin(), random_fin()]
    household_id = register(client, *fins, origin_settlement_code="ZAN-002")
    for fin in fins:
        granted = client.post(
            f"/api/v1/persons/{fin}/idp-status/grant",
            json={"basis": "Law 669-IQ", "effective_date": "1994-05-01"},
        )
        assert granted.status_code == 200, granted.text
    base = f"/api/v1/households/{household_id}"
    assert (
        client.post(f"{base}/housing-condition", json={"condition": "dormitory"}).status_code == 200
    )
    verified = client.post(
        f"{base}/circumstances",
        json={
            "living_at_registered_address": True,
            "private_housing_after_displacement": False,
            "sham_marriage_or_divorce": False,
            "verified_on": "2026-01-10",
            "document_reference": "Act 2026/117",
        },
    )
    assert verified.status_code == 200, verified.text
    answers: list[tuple[str, Any]] = [("intention", intention)]
    if intention in ("undecided", "no"):
        answers.append(("reasons_not_to_return", ["security"]))
    answers += [
        ("obstacles", ["none"]),
        ("employment_needed", "no"),
        ("health_needs", "no"),
        ("school_children", 0),
    ]
    response_id = survey(client, household_id, answers)
    assert client.post(f"/api/v1/surveys/{response_id}/completion").status_code == 200
    return household_id


def test_a_household_is_determined_and_its_decision_explained_and_re_run_by_an_auditor(
    service_with_kafka: RunningService,
) -> None:
    publish(service_with_kafka)
    approve_shipped_rule_set(service_with_kafka)
    with service_with_kafka.client("operator") as operator:
        household_id = documented_household(operator)
        determined = operator.post(f"/api/v1/households/{household_id}/eligibility")
        assert determined.status_code == 200, determined.text
        decision = determined.json()
        assert (decision["status"], decision["result"], decision["priority_group"]) == (
            "decided",
            "eligible",
            "collective_centre",
        )
        assert decision["rooms_entitled"] == 2  # three persons

        def explained() -> dict[str, Any] | None:
            got = operator.get(f"/api/v1/households/{household_id}/eligibility?lang=az")
            return got.json() if got.status_code == 200 else None

        shown = wait_until(explained, timeout_s=30, what="the decision in the read model")
        assert shown["decision_id"] == decision["decision_id"]
        assert shown["explanation"][-1].startswith("Uyğundur")
        assert any("origin_in_return_area = true" in line for line in shown["explanation"])

        counts = operator.get("/api/v1/eligibility/statistics?settlement_code=ZAN-002").json()
        assert {
            "settlement_code": "ZAN-002",
            "result": "eligible",
            "priority_group": "collective_centre",
            "households": 1,
        } in counts

        override = operator.post(
            f"/api/v1/eligibility/decisions/{decision['decision_id']}/override",
            json={"result": "ineligible", "justification": "An operator may not do this at all."},
        )
        assert override.status_code == 403

    with service_with_kafka.client("auditor") as auditor:
        rerun = auditor.get(f"/api/v1/audit/decisions/{decision['decision_id']}/rerun")
        assert rerun.status_code == 200 and rerun.json()["matches"] is True
        assert auditor.post(f"/api/v1/households/{household_id}/eligibility").status_code == 403


def test_a_bad_rule_set_is_refused_with_the_field_and_the_reason(
    service_with_kafka: RunningService,
) -> None:
    broken = shipped_rule_set()
    broken["priority_groups"][0]["expression"] = "in_collective_centre == "
    with service_with_kafka.client("operator") as operator:
        refused = operator.post("/api/v1/rule-sets", json=broken)
    assert refused.status_code == 422
    problem = refused.json()
    assert refused.headers["content-type"] == "application/problem+json"
    assert problem["field"] == "priority_groups[0].expression"
    assert problem["reason"].startswith("does not compile")


def test_an_appeal_is_decided_by_another_supervisor(service_with_kafka: RunningService) -> None:
    publish(service_with_kafka)
    approve_shipped_rule_set(service_with_kafka)
    with service_with_kafka.client("operator") as operator:
        household_id = documented_household(operator, intention="undecided")
        decision = operator.post(f"/api/v1/households/{household_id}/eligibility").json()
        assert decision["result"] == "ineligible"
        lodged = operator.post(
            f"/api/v1/eligibility/decisions/{decision['decision_id']}/appeals",
            json={"grounds": "The family has decided to return and confirms it in writing."},
        )
        assert lodged.status_code == 201, lodged.text
    with service_with_kafka.client("supervisor") as supervisor:
        decided = supervisor.post(
            f"/api/v1/eligibility/decisions/{decision['decision_id']}/appeals/"
            f"{lodged.json()['appeal_id']}/decision",
            json={
                "outcome": "upheld",
                "reasons": "The written confirmation of intention is on file.",
                "result": "eligible",
                "priority_group": "collective_centre",
            },
        )
        assert decided.status_code == 200, decided.text
        assert decided.json()["result"] == "eligible"
