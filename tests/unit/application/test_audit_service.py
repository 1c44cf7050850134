"""The auditor's use cases in memory: a case's history and its state at a moment come from the
event log; recorded decisions and a drawn lottery re-run to the same result."""

from __future__ import annotations

from datetime import UTC, datetime

from application.audit import compare_outcomes
from application.services import Services
from domain.base import acting_as
from tests.unit.application.conftest import AGHALI, OPERATOR, approved_rule_set, eligible_family
from tests.unit.application.test_relocation_service import drawn


def test_a_case_history_lists_every_event_of_the_case_with_who_did_it(
    services: Services,
) -> None:
    approved_rule_set(services)
    household_id = eligible_family(services, size=2)
    history = services.audit.history(household_id)["events"]
    kinds = [e["event_type"] for e in history]
    assert kinds[0] == "Household.Registered" and kinds.count("Person.Registered") == 2
    assert "SurveyResponse.Completed" in kinds and kinds[-1] == "EligibilityDecision.Determined"
    assert {e["actor_id"] for e in history} == {"op-aysel"}
    assert [e["position"] for e in history] == sorted(e["position"] for e in history)


def test_the_case_as_of_a_moment_leaves_out_what_came_after(services: Services) -> None:
    approved_rule_set(services)
    household_id = eligible_family(services)
    before = datetime.now(UTC)
    with acting_as(OPERATOR):
        services.registry.record_housing_condition(household_id, "own_or_rented", "moved")
        services.eligibility.determine(household_id)
    then = services.audit.as_of(household_id, before)
    now = services.audit.as_of(household_id, datetime.now(UTC))
    assert then["eligibility_decision"]["sequence"] == 1
    assert now["eligibility_decision"]["sequence"] == 2
    assert then["household"]["version"] < now["household"]["version"]


def test_every_recorded_decision_and_the_drawn_lottery_re_run_to_what_was_recorded(
    services: Services,
) -> None:
    drawn(services, 3, [3, 4])
    decisions = services.audit.decisions(AGHALI)
    assert len(decisions) == 3
    reruns = list(services.audit.rerun_decisions(decisions))
    assert all(r.matches and r.facts_hash_ok and r.rule_set_hash_ok for r in reruns)
    check = services.audit.rerun_lottery(AGHALI, 1)
    assert check.matches and check.entrants == 3 and check.units == 2


def test_a_re_run_compares_every_criterion_with_what_was_recorded(services: Services) -> None:
    drawn(services, 1, [3])
    (decision,) = services.audit.decisions(AGHALI)
    rerun = services.audit.rerun_decision(decision)
    assert rerun.criteria and all(c["same"] for c in rerun.criteria)
    assert {c["kind"] for c in rerun.criteria} == {"eligibility", "exclusion", "priority"}
    assert all(c["recorded"] == c["rerun"] for c in rerun.criteria)


def test_a_criterion_that_changed_or_is_missing_on_one_side_is_not_the_same() -> None:
    def outcome(criterion: str, result: str) -> dict[str, object]:
        return {"criterion_id": criterion, "kind": "eligibility", "outcome": result, "values": "{}"}

    compared = compare_outcomes(
        [outcome("origin", "met"), outcome("intention", "met")],
        [outcome("origin", "met"), outcome("intention", "not_met"), outcome("new", "met")],
    )
    assert [(c["criterion_id"], c["recorded"], c["rerun"], c["same"]) for c in compared] == [
        ("origin", "met", "met", True),
        ("intention", "met", "not_met", False),
        ("new", None, "met", False),
    ]
