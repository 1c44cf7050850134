"""Eligibility end to end on the write side and the read model: rule sets through their
lifecycle, determinations that record what they used, re-runs, overrides and appeals."""

from __future__ import annotations

import copy
from datetime import date, timedelta
from uuid import UUID

import pytest

from application.demo import document_household
from application.shipped import shipped_rule_set
from domain.base import Actor, CommandContext, ValidationFailed, acting_as
from domain.eligibility import EligibilityStateError, NotPermitted
from domain.registry import NewMember, RegisterHousehold
from domain.rules import content_hash
from infra.bootstrap import Container
from projections.queries import eligibility as views
from tests.support import random_fin

OPERATOR = CommandContext(Actor("op-aysel", "operator"), "corr", "cause")
SUPERVISOR = CommandContext(Actor("sup-rauf", "supervisor"), "corr", "cause")
SECOND_SUPERVISOR = CommandContext(Actor("sup-leyla", "supervisor"), "corr", "cause")


def register(container: Container, size: int = 4, origin: str = "ZAN-002") -> UUID:
    members = [
        NewMember(
            fin=random_fin(),
            first_name="Aysel" if i == 0 else f"Uşaq{i}",
            last_name="Məmmədova",
            patronymic=None,
            birth_date=date(1980, 3, 12) if i == 0 else date(2005 + i, 1, 1),
            sex="female",
            relationship="head" if i == 0 else "child",
        )
        for i in range(size)
    ]
    with acting_as(OPERATOR):
        return container.services.registry.register_household(
            RegisterHousehold(members, origin, "Bakı, yataqxana 4")
        )


def approved_v1(container: Container) -> None:
    with acting_as(OPERATOR):
        container.services.eligibility.draft(shipped_rule_set())
    with acting_as(SUPERVISOR):
        container.services.eligibility.approve(
            "great-return-housing", 1, "Committee decision No. 14", date(2025, 1, 1)
        )


def test_a_documented_family_in_a_dormitory_is_eligible_and_the_decision_records_its_inputs(
    container: Container,
) -> None:
    approved_v1(container)
    household_id = register(container, size=4)
    with acting_as(OPERATOR):
        document_household(container.services, household_id)
        outcome = container.services.eligibility.determine(household_id)

    decision = outcome.decision
    assert outcome.status == "decided" and decision is not None
    assert (decision.result, decision.priority_group, decision.rooms_entitled) == (
        "eligible",
        "collective_centre",
        3,
    )
    assert decision.rule_set_code == "great-return-housing" and decision.rule_set_version == 1
    assert decision.facts_hash == content_hash(decision.facts_snapshot)
    assert decision.facts_snapshot["household_size"] == 4
    assert decision.facts_snapshot["intention_to_return"] == "now"
    assert "cel (common-expression-language" in decision.engine_version
    stored = container.services.eligibility.get_decision(decision.id)
    assert stored.determined_by == "op-aysel"
    assert {o.criterion_id: o.outcome for o in stored.outcomes}["origin"] == "met"


def test_determining_again_with_nothing_changed_records_nothing(container: Container) -> None:
    approved_v1(container)
    household_id = register(container)
    with acting_as(OPERATOR):
        document_household(container.services, household_id)
        first = container.services.eligibility.determine(household_id)
        again = container.services.eligibility.determine(household_id)
    assert first.status == "decided" and again.status == "unchanged"
    current = container.services.eligibility.current_decision(household_id)
    assert current is not None and current.sequence == 1


def test_missing_verification_and_survey_leave_the_case_needing_review(
    container: Container,
) -> None:
    approved_v1(container)
    household_id = register(container)
    with acting_as(OPERATOR):
        document_household(
            container.services, household_id, living_at_registered_address=None, intention=None
        )
        decision = container.services.eligibility.determine(household_id).decision
    assert decision is not None and decision.result == "needs_review"
    unknown = {o.criterion_id: o.detail for o in decision.outcomes if o.outcome == "unknown"}
    assert unknown["intention"] == "not recorded: intention_to_return"
    assert "living_at_registered_address" in (unknown["not_living_at_registered_address"] or "")


def test_a_recorded_decision_re_runs_to_the_identical_result(container: Container) -> None:
    approved_v1(container)
    household_id = register(container, size=7)
    with acting_as(OPERATOR):
        document_household(container.services, household_id, housing_condition="others_flat")
        decision = container.services.eligibility.determine(household_id).decision
    assert decision is not None

    rerun = container.services.audit.rerun_decision(decision.id)
    assert rerun.matches and rerun.differences == []
    assert rerun.facts_hash_ok and rerun.rule_set_hash_ok
    assert rerun.recorded_engine == rerun.current_engine


def test_a_draft_whose_examples_fail_cannot_be_approved(container: Container) -> None:
    document = shipped_rule_set()
    document["room_entitlement"][2]["rooms"] = 5  # 4-5 persons: breaks the examples
    with acting_as(OPERATOR):
        rule_set, validation = container.services.eligibility.draft(document)
    assert rule_set.status == "draft" and validation.example_failures
    with acting_as(SUPERVISOR), pytest.raises(EligibilityStateError, match="examples fail"):
        container.services.eligibility.approve("great-return-housing", 1, "Decision 14", None)


def test_a_draft_with_an_unknown_fact_is_refused_naming_the_expression(
    container: Container,
) -> None:
    document = shipped_rule_set()
    document["eligibility_criteria"][0]["expression"] = "origin_in_retrun_area"
    with acting_as(OPERATOR), pytest.raises(ValidationFailed) as refused:
        container.services.eligibility.draft(document)
    assert refused.value.field == "eligibility_criteria[0].expression"
    assert "unknown facts: origin_in_retrun_area" in refused.value.reason


def test_only_a_supervisor_approves_and_an_approved_version_never_changes(
    container: Container,
) -> None:
    with acting_as(OPERATOR):
        container.services.eligibility.draft(shipped_rule_set())
        with pytest.raises(NotPermitted):
            container.services.eligibility.approve("great-return-housing", 1, "Decision 14", None)
    with acting_as(SUPERVISOR):
        container.services.eligibility.approve("great-return-housing", 1, "Decision 14", None)
    changed = shipped_rule_set()
    changed["title_en"] = "Changed after approval"
    with acting_as(OPERATOR), pytest.raises(EligibilityStateError, match="approved"):
        container.services.eligibility.revise(changed, "a change after approval")


def test_reassessment_under_a_new_version_supersedes_each_decision_once(
    container: Container,
) -> None:
    approved_v1(container)
    households = [register(container, size=n) for n in (1, 4, 6)]
    with acting_as(OPERATOR):
        for household_id in households:
            document_household(container.services, household_id)
        container.services.eligibility.determine_many(households)

    v2 = copy.deepcopy(shipped_rule_set())
    v2["version"] = 2
    v2["room_entitlement"] = [
        {"min_size": 1, "max_size": 4, "rooms": 3},  # Aghali offers 3 to 5 rooms
        {"min_size": 5, "max_size": 6, "rooms": 4},
        {"min_size": 7, "max_size": None, "rooms": 5},
    ]
    v2["examples"] = [e for e in v2["examples"] if "rooms" not in e["expect"]]
    with acting_as(OPERATOR):
        container.services.eligibility.draft(v2)
    with acting_as(SUPERVISOR):
        container.services.eligibility.approve(
            "great-return-housing", 2, "Committee decision No. 20", date.today() - timedelta(days=1)
        )
    container.projections.catch_up()

    with acting_as(OPERATOR):
        in_force, candidates = container.services.eligibility.reassessment_candidates()
        assert in_force.rule_set_version == 2 and sorted(candidates) == sorted(households)
        first = container.services.eligibility.determine_many(candidates[:2], reassess=True)
        # Interrupted after two; run again over everything: the two are not decided twice.
        again = container.services.eligibility.determine_many(candidates, reassess=True)
    assert (first.decided, again.decided, again.unchanged) == (2, 1, 2)
    for household_id in households:
        current = container.services.eligibility.current_decision(household_id)
        assert current is not None and current.sequence == 2 and current.rule_set_version == 2
        assert current.supersedes_decision_id is not None
        assert current.rooms_entitled in (3, 4)
    v1 = container.services.eligibility.get_rule_set("great-return-housing", 1)
    assert v1.status == "superseded" and v1.superseded_by == 2


def test_override_and_appeal_are_recorded_beside_the_decision_and_show_in_the_read_model(
    container: Container,
) -> None:
    approved_v1(container)
    household_id = register(container)
    with acting_as(OPERATOR):
        document_household(container.services, household_id, intention="undecided")
        decision = container.services.eligibility.determine(household_id).decision
    assert decision is not None and decision.result == "ineligible"

    with acting_as(OPERATOR), pytest.raises(NotPermitted):
        container.services.eligibility.override(
            decision.id, "eligible", "collective_centre", 3, "The family confirmed return today."
        )
    with acting_as(SUPERVISOR), pytest.raises(ValidationFailed) as short:
        container.services.eligibility.override(
            decision.id, "eligible", "collective_centre", 3, "ok"
        )
    assert short.value.field == "justification"
    with acting_as(OPERATOR):
        appeal_id = container.services.eligibility.lodge_appeal(
            decision.id, "The family decided to return and signed the intention form yesterday."
        )
    with acting_as(SUPERVISOR):
        container.services.eligibility.override(
            decision.id,
            "eligible",
            "collective_centre",
            3,
            "The head of household confirmed in person that the family intends to return now.",
        )
        with pytest.raises(NotPermitted, match="did not make the decision"):
            container.services.eligibility.decide_appeal(
                decision.id,
                appeal_id,
                "upheld",
                "The family's intention is confirmed.",
                "eligible",
                "collective_centre",
            )
    with acting_as(SECOND_SUPERVISOR):
        container.services.eligibility.decide_appeal(
            decision.id,
            appeal_id,
            "upheld",
            "The signed intention form shows the family intends to return now.",
            "eligible",
            "collective_centre",
        )

    container.projections.catch_up()
    with container.read_pool.connection() as conn, conn.cursor() as cur:
        row = views.current_decision(cur, household_id)
        counts = views.statistics(cur, "ZAN-002")
    assert row is not None
    assert (row["result"], row["effective_result"]) == ("ineligible", "eligible")
    assert row["overridden_by"] == "sup-rauf" and "in person" in row["override_justification"]
    assert (
        row["appeals"][0]["outcome"] == "upheld" and row["appeals"][0]["decided_by"] == "sup-leyla"
    )
    assert {
        "settlement_code": "ZAN-002",
        "result": "eligible",
        "priority_group": "collective_centre",
        "households": 1,
    } in counts
    original = container.services.eligibility.get_decision(decision.id)
    assert original.result == "ineligible"  # the determination itself is never edited


def test_the_case_history_holds_the_decision_and_the_state_as_of_a_date_shows_it(
    container: Container,
) -> None:
    from datetime import UTC, datetime

    approved_v1(container)
    household_id = register(container)
    with acting_as(OPERATOR):
        document_household(container.services, household_id)
    before = datetime.now(UTC)
    with acting_as(OPERATOR):
        decision = container.services.eligibility.determine(household_id).decision
    assert decision is not None

    events = [e["event_type"] for e in container.services.audit.history(household_id)["events"]]
    assert "reintegration.eligibility.EligibilityDetermined" in events
    assert "reintegration.surveys.SurveyCompleted" in events
    assert "reintegration.registry.HouseholdCircumstancesVerified" in events
    assert container.services.audit.as_of(household_id, before)["eligibility_decision"] is None
    now = container.services.audit.as_of(household_id, datetime.now(UTC))["eligibility_decision"]
    assert now["decision_id"] == str(decision.id) and now["result"] == "eligible"
