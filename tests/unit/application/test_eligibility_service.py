"""Eligibility in memory: rule sets from draft to superseded, determinations that record what
they read, reassessment, overrides and appeals."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from application.demo import document_household
from application.services import Services
from application.shipped import shipped_rule_set
from domain.base import Actor, CommandContext, ValidationFailed, acting_as
from domain.eligibility import EligibilityStateError, NotPermitted
from domain.rules import content_hash
from tests.unit.application.conftest import (
    AGHALI,
    OPERATOR,
    RULE_SET,
    SUPERVISOR,
    approved_rule_set,
    eligible_family,
    family,
)


def test_a_rule_set_goes_from_draft_to_approved_and_is_superseded_by_the_next(
    services: Services,
) -> None:
    approved_rule_set(services)
    v2 = {**shipped_rule_set(), "version": 2}
    with acting_as(OPERATOR):
        with pytest.raises(EligibilityStateError, match="the next is 2"):
            services.eligibility.draft(shipped_rule_set())
        services.eligibility.draft(v2)
        services.eligibility.revise({**v2, "title_en": "Housing, version 2"}, "a clearer title")
        with pytest.raises(NotPermitted):
            services.eligibility.approve(RULE_SET, 2, "Decision No. 15", None)
    starts = date.today() + timedelta(days=10)
    with acting_as(SUPERVISOR):
        approved = services.eligibility.approve(RULE_SET, 2, "Decision No. 15", starts)
    assert approved.status == "approved" and approved.approved_by == "sup-rauf"
    v1 = services.eligibility.get_rule_set(RULE_SET, 1)
    assert v1.status == "superseded" and v1.superseded_by == 2
    assert services.eligibility.in_force().rule_set_version == 1  # until v2 takes effect
    assert services.eligibility.in_force(on=starts).rule_set_version == 2


def test_a_rule_set_whose_expression_does_not_compile_is_refused(services: Services) -> None:
    broken = shipped_rule_set()
    broken["eligibility_criteria"][0]["expression"] = "household_size >"
    with acting_as(OPERATOR), pytest.raises(ValidationFailed):
        services.eligibility.draft(broken)
    assert services.eligibility.versions(RULE_SET) == []


def test_a_determination_records_its_inputs_and_is_not_repeated_on_the_same_facts(
    services: Services,
) -> None:
    approved_rule_set(services)
    household_id = eligible_family(services, size=4)
    decision = services.eligibility.current_decision(household_id)
    assert decision is not None and decision.rule_set_version == 1
    assert decision.facts_hash == content_hash(decision.facts_snapshot)
    assert decision.facts_snapshot["household_size"] == 4
    with acting_as(OPERATOR):
        assert services.eligibility.determine(household_id).status == "unchanged"
        services.registry.record_housing_condition(household_id, "own_or_rented", "bought a flat")
        again = services.eligibility.determine(household_id)
    assert again.status == "decided" and again.decision is not None
    assert again.decision.sequence == 2 and again.decision.supersedes_decision_id == decision.id


def test_a_settlement_is_determined_from_the_log_with_every_household_counted(
    services: Services,
) -> None:
    approved_rule_set(services)
    with acting_as(OPERATOR):
        ids = [services.registry.register_household(family(3)) for _ in range(3)]
        for household_id in ids[:2]:
            document_household(services, household_id)
        services.registry.register_household(family(2, origin="LAC-002"))
        households = services.eligibility.households_in(AGHALI)
        summary = services.eligibility.determine_many(households)
    assert sorted(households, key=str) == sorted(ids, key=str)
    assert summary.decided == 3 and summary.results == {
        "eligible": 2,
        "ineligible": 1,
    }  # one has no IDP status


def test_a_reassessment_decides_again_only_the_households_decided_under_the_rule_set(
    services: Services,
) -> None:
    approved_rule_set(services)
    decided = [eligible_family(services), eligible_family(services)]
    with acting_as(OPERATOR):
        never_decided = services.registry.register_household(family(2))
        services.eligibility.draft({**shipped_rule_set(), "version": 2})
    with acting_as(SUPERVISOR):
        services.eligibility.approve(RULE_SET, 2, "Decision No. 15", date.today())
    rule_set, candidates = services.eligibility.reassessment_candidates()
    assert rule_set.rule_set_version == 2
    assert sorted(candidates, key=str) == sorted(decided, key=str)  # never_decided is not one
    with acting_as(OPERATOR):
        first = services.eligibility.determine_many(candidates[:1], reassess=True)
        # Interrupted after one; run again over everything: none is decided twice, and a
        # household never decided is not decided by a reassessment.
        again = services.eligibility.determine_many([*candidates, never_decided], reassess=True)
    assert (first.decided, again.decided, again.unchanged) == (1, 1, 2)
    assert services.eligibility.reassessment_candidates()[1] == []
    for household_id in decided:
        current = services.eligibility.current_decision(household_id)
        assert current is not None and current.rule_set_version == 2
    assert services.eligibility.current_decision(never_decided) is None


def test_an_override_and_an_appeal_are_recorded_by_whom_the_rules_allow(
    services: Services,
) -> None:
    approved_rule_set(services)
    household_id = eligible_family(services)
    decision = services.eligibility.current_decision(household_id)
    assert decision is not None
    justification = "The family was found to own a flat in Baku since 2019."
    with acting_as(OPERATOR), pytest.raises(NotPermitted):
        services.eligibility.override(decision.id, "ineligible", None, None, justification)
    with acting_as(SUPERVISOR):
        services.eligibility.override(decision.id, "ineligible", None, None, justification)
    with acting_as(OPERATOR):
        appeal_id = services.eligibility.lodge_appeal(
            decision.id, "The flat belongs to a cousin, as the deed shows."
        )
    with acting_as(SUPERVISOR), pytest.raises(NotPermitted):  # who overrode may not judge
        services.eligibility.decide_appeal(
            decision.id, appeal_id, "upheld", "The deed is in the cousin's name.", "eligible", None
        )
    other = CommandContext(Actor("sup-nigar", "supervisor"), "fast-tests", "fast-tests")
    with acting_as(other):
        decided = services.eligibility.decide_appeal(
            decision.id,
            appeal_id,
            "upheld",
            "The deed is in the cousin's name.",
            "eligible",
            "collective_centre",
        )
    assert decided.effective_result == "eligible" and decided.result == "eligible"
    assert services.eligibility.get_decision(decision.id).overridden_by == "sup-rauf"


def test_a_superseded_decision_cannot_be_acted_on(services: Services) -> None:
    approved_rule_set(services)
    household_id = eligible_family(services)
    first = services.eligibility.current_decision(household_id)
    assert first is not None
    with acting_as(OPERATOR):
        services.registry.record_housing_condition(household_id, "own_or_rented", None)
        services.eligibility.determine(household_id)
        with pytest.raises(EligibilityStateError, match="superseded"):
            services.eligibility.lodge_appeal(first.id, "The family disagrees with the result.")
