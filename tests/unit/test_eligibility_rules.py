"""The rule engine on its own: rule sets as data, expressions in CEL over known facts, and
determinations that depend on nothing but the facts they are given."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from application.shipped import shipped_rule_set
from domain.base import ValidationFailed
from domain.engine import RuleEngine
from domain.explanation import explain
from domain.rules import (
    FACTS,
    canonical_json,
    parse_document,
    sample_facts,
)
from infra.cel_language import CelLanguage

CEL = CelLanguage()


def engine(data: dict[str, Any] | None = None) -> RuleEngine:
    return RuleEngine(parse_document(data or shipped_rule_set()), CEL)


def test_the_shipped_rule_set_compiles_and_every_example_passes() -> None:
    validation = engine().validate()
    assert validation.errors == () and validation.example_failures == ()
    assert len(engine().document.examples) >= 10


def test_room_entitlement_follows_resolution_65() -> None:
    document = engine().document
    assert [document.rooms_for(n) for n in range(1, 10)] == [1, 2, 2, 3, 3, 4, 4, 4, 4]


def test_a_room_table_with_a_gap_is_refused_naming_the_row() -> None:
    data = shipped_rule_set()
    data["room_entitlement"][1]["min_size"] = 3
    with pytest.raises(ValidationFailed) as refused:
        parse_document(data)
    assert refused.value.field == "room_entitlement[1].min_size"


def test_an_expression_that_does_not_parse_is_refused_with_its_place() -> None:
    data = shipped_rule_set()
    data["exclusion_criteria"][1]["expression"] = "private_housing_after_displacement &&"
    errors = engine(data).validate().errors
    assert errors[0].field == "exclusion_criteria[1].expression"
    assert errors[0].reason.startswith("does not compile")


def test_names_bound_by_a_macro_are_not_taken_for_facts() -> None:
    data = shipped_rule_set()
    data["eligibility_criteria"].append(
        {
            "id": "has_adult",
            "description_az": "Ailədə yetkin var.",
            "description_en": "The household has an adult.",
            "expression": "members.exists(m, m.age >= 18)",
        }
    )
    assert engine(data).validate().errors == ()


def test_a_misspelt_field_inside_a_fact_shows_on_the_sample_household() -> None:
    data = shipped_rule_set()
    data["eligibility_criteria"][0]["expression"] = "members.exists(m, m.agee >= 18)"
    errors = engine(data).validate().errors
    assert errors and "fails on the sample household" in errors[0].reason


def test_a_criterion_must_give_true_or_false() -> None:
    data = shipped_rule_set()
    data["eligibility_criteria"][0]["expression"] = "household_size + 1"
    errors = engine(data).validate().errors
    assert errors and errors[0].reason == "gives 5, not true or false"


def test_an_example_that_expects_the_wrong_group_is_reported_by_name() -> None:
    data = shipped_rule_set()
    data["examples"][0]["expect"]["priority_group"] = "others_flat"
    failures = engine(data).validate().example_failures
    assert failures == (
        "the sample household, in a dormitory, is eligible in the first group: "
        "priority_group 'collective_centre', expected 'others_flat'",
    )


def test_an_exclusion_outweighs_an_unknown_fact() -> None:
    facts = {**sample_facts(), "sham_marriage_or_divorce": True, "intention_to_return": None}
    assert engine().determine(facts).result == "ineligible"


def test_the_explanation_names_each_criterion_its_facts_and_the_outcome_in_both_languages() -> None:
    e = engine()
    facts = {**sample_facts(), "living_at_registered_address": False}
    got = e.determine(facts)
    english = explain(e.document, list(got.outcomes), got.result, None, got.rooms_entitled, "en")
    azerbaijani = explain(
        e.document, list(got.outcomes), got.result, None, got.rooms_entitled, "az"
    )
    assert any(
        "not_living_at_registered_address" in line
        and "living_at_registered_address = false" in line
        and line.endswith("applies.")
        for line in english
    )
    assert english[-1].startswith("Not eligible")
    assert azerbaijani[-1].startswith("Uyğun deyil")
    assert any("tətbiq olunur" in line for line in azerbaijani)


facts_strategy = st.fixed_dictionaries(
    {
        "household_size": st.integers(1, 12),
        "head_idp_status": st.sampled_from(["none", "active", "ended"]),
        "idp_members_active": st.integers(0, 12),
        "origin_in_return_area": st.booleans(),
        "housing_condition": st.sampled_from(
            [None, "dormitory", "sanatorium", "others_flat", "own_or_rented"]
        ),
        "intention_to_return": st.sampled_from(
            [None, "now", "within_12_months", "within_5_years", "undecided", "no"]
        ),
        "living_at_registered_address": st.sampled_from([None, True, False]),
        "private_housing_after_displacement": st.sampled_from([None, True, False]),
        "sham_marriage_or_divorce": st.sampled_from([None, True, False]),
        "martyr_family": st.booleans(),
        "war_participant": st.booleans(),
    }
)


def _facts(drawn: dict[str, Any]) -> dict[str, Any]:
    condition = drawn["housing_condition"]
    return {
        **sample_facts(),
        **drawn,
        "in_collective_centre": None
        if condition is None
        else condition in ("dormitory", "sanatorium"),
        "in_others_flat": None if condition is None else condition == "others_flat",
        "survey_completed": drawn["intention_to_return"] is not None,
    }


@settings(max_examples=150, deadline=None)
@given(facts_strategy)
def test_a_decision_re_runs_identically_from_its_recorded_json(drawn: dict[str, Any]) -> None:
    e = engine()
    facts = _facts(drawn)
    recorded = e.determine(facts)
    replayed = engine(copy.deepcopy(shipped_rule_set())).determine(
        json.loads(canonical_json(facts))
    )
    assert replayed == recorded


@settings(max_examples=150, deadline=None)
@given(facts_strategy)
def test_eligible_means_every_condition_met_no_exclusion_and_a_group(drawn: dict[str, Any]) -> None:
    got = engine().determine(_facts(drawn))
    kinds = {(o.kind, o.outcome) for o in got.outcomes}
    if got.result == "eligible":
        assert ("eligibility", "not_met") not in kinds and ("exclusion", "met") not in kinds
        assert ("eligibility", "unknown") not in kinds and ("exclusion", "unknown") not in kinds
        assert got.priority_group is not None and got.rooms_entitled is not None
    else:
        assert got.priority_group is None
    if ("exclusion", "met") in kinds or ("eligibility", "not_met") in kinds:
        assert got.result == "ineligible"


def test_every_fact_of_the_schema_is_documented_in_both_languages() -> None:
    for fact in FACTS.values():
        assert fact.description_en.strip() and fact.description_az.strip(), fact.name


def test_an_expression_that_fails_in_any_way_on_the_sample_is_refused_not_a_crash() -> None:
    data = shipped_rule_set()
    data["score"] = "[1][5]"  # the CEL package raises IndexError
    assert engine(data).validate().errors[0].field == "score"


@pytest.mark.parametrize("score", ["1.0/0.0", "0.0/0.0", "-1.0/0.0"])
def test_a_score_that_is_not_a_finite_number_is_refused_when_drafted(score: str) -> None:
    data = shipped_rule_set()
    data["score"] = score
    (error,) = engine(data).validate().errors
    assert error.field == "score" and "finite" in error.reason


def test_a_tie_breaker_value_no_reader_could_hold_is_refused_when_drafted() -> None:
    data = shipped_rule_set()
    data["tie_breakers"][0]["expression"] = '"a\\u0000b"'
    (error,) = engine(data).validate().errors
    assert error.field == "tie_breakers[0].expression"


def test_a_household_whose_score_cannot_be_computed_needs_review_instead_of_an_order() -> None:
    data = shipped_rule_set()
    data["score"] = "household_size > 8 ? 1.0 / 0.0 : 1.0"  # fine on the sample household
    rule = engine(data)
    assert rule.errors == []
    got = rule.determine({**sample_facts(), "household_size": 9, "member_ages": [40] * 9})
    assert got.result == "needs_review" and got.score is None and got.tie_breakers == ()
    assert got.outcomes[-1].criterion_id == "score"


def test_room_table_and_version_take_no_booleans_for_numbers() -> None:
    data = shipped_rule_set()
    data["room_entitlement"][0]["rooms"] = True
    with pytest.raises(ValidationFailed) as refused:
        parse_document(data)
    assert refused.value.field == "room_entitlement[0].rooms"


def test_document_text_is_checked_throughout_and_a_bad_key_is_not_repeated() -> None:
    data = shipped_rule_set()
    data["title_en"] = "x" * 5000
    data["examples"][0]["facts"]["\ud800"] = 1
    with pytest.raises(ValidationFailed) as refused:
        parse_document(data)
    fields = {e.field for e in refused.value.errors}
    assert "title_en" in fields
    assert any(f.startswith("examples[0].facts.<key") for f in fields), fields
    assert "\ud800" not in str(refused.value)
