"""Registry commands as the domain decides them: given a case, when a command, then events or a refusal."""

from __future__ import annotations

from datetime import date
from uuid import uuid4

import pytest

from domain.base import Actor, CommandContext, ValidationFailed, acting_as
from domain.registration import register_household
from domain.registry import (
    Household,
    InvalidState,
    NewMember,
    Person,
    RegisterHousehold,
    person_id_for,
)

TODAY = date(2026, 11, 29)


@pytest.fixture(autouse=True)
def operator() -> object:
    with acting_as(CommandContext(Actor("op", "operator"), "c", "k")) as context:
        yield context


def family() -> tuple[Household, list[Person]]:
    members = [
        NewMember("HEAD001", "Rauf", "Əliyev", None, date(1970, 1, 1), "male", "head"),
        NewMember("WIFE001", "Aysel", "Əliyeva", None, date(1975, 1, 1), "female", "spouse"),
        NewMember("SONN001", "Orxan", "Əliyev", None, date(2000, 1, 1), "male", "child"),
    ]
    household, persons = register_household(RegisterHousehold(members, "ZAN-002", "Bakı"), TODAY)
    household.collect_events()
    for p in persons:
        p.collect_events()
    return household, persons


def last_event(aggregate: object) -> object:
    return aggregate.collect_events()[-1]  # type: ignore[attr-defined]


def test_a_newborn_joins_the_household() -> None:
    household, _ = family()
    household.add_member(person_id_for("BABY001"), "BABY001", "child", "birth")
    event = last_event(household)
    assert isinstance(event, Household.MemberAdded) and event.reason == "birth"
    assert len(household.members) == 4


@pytest.mark.parametrize(
    ("relationship", "reason", "field"),
    [
        ("head", "birth", "relationship"),
        ("child", "stork", "reason"),
        ("cousin", "birth", "relationship"),
    ],
)
def test_joining_is_refused_for_a_bad_relationship_or_reason(
    relationship: str, reason: str, field: str
) -> None:
    household, _ = family()
    with pytest.raises(ValidationFailed) as raised:
        household.add_member(uuid4(), "NEWB001", relationship, reason)
    assert raised.value.field == field


def test_a_member_cannot_join_twice() -> None:
    household, _ = family()
    with pytest.raises(InvalidState):
        household.add_member(person_id_for("WIFE001"), "WIFE001", "spouse", "marriage")


def test_the_head_cannot_leave_until_the_head_changes() -> None:
    household, _ = family()
    head, wife = person_id_for("HEAD001"), person_id_for("WIFE001")
    with pytest.raises(InvalidState):
        household.remove_member(head, "moved_out", None)
    household.change_head(wife, "spouse", "the husband works abroad")
    household.remove_member(head, "moved_out", "abroad")
    assert household.head_person_id == wife
    assert {m.relationship for m in household.members} == {"head", "child"}


def test_splitting_off_leaves_the_head_and_records_the_new_household() -> None:
    household, _ = family()
    new_id = uuid4()
    household.split_off(new_id, [person_id_for("SONN001")], "the son married")
    event = last_event(household)
    assert isinstance(event, Household.MembersSplitOff) and event.new_household_id == new_id
    with pytest.raises(InvalidState):
        household.split_off(uuid4(), [person_id_for("HEAD001")], "x")
    with pytest.raises(ValidationFailed):
        household.split_off(uuid4(), [], "x")


def test_housing_condition_and_vulnerabilities() -> None:
    household, _ = family()
    household.record_housing_condition("dormitory", "room 12")
    with pytest.raises(InvalidState):
        household.record_housing_condition("dormitory", None)
    with pytest.raises(ValidationFailed):
        household.record_housing_condition("tent", None)
    household.record_vulnerability("war_participant", person_id_for("HEAD001"), None)
    with pytest.raises(InvalidState):
        household.record_vulnerability("war_participant", person_id_for("HEAD001"), None)
    with pytest.raises(InvalidState):
        household.record_vulnerability("disability", uuid4(), None)
    household.clear_vulnerability("war_participant", person_id_for("HEAD001"), "recorded in error")
    assert household.vulnerabilities == []
    with pytest.raises(ValidationFailed):
        household.clear_vulnerability("war_participant", None, "")


def test_a_correction_keeps_the_old_value_and_needs_a_reason() -> None:
    _, (head, *_) = family()
    head.correct("last_name", "Hüseynov", "typo", "ID card", TODAY)
    event = last_event(head)
    assert isinstance(event, Person.DetailCorrected)
    assert (event.old_value, event.new_value, event.household_id) == (
        "Əliyev",
        "Hüseynov",
        head.household_id,
    )
    head.correct("birth_date", "1971-02-03", "wrong year", None, TODAY)
    assert head.birth_date == date(1971, 2, 3)
    for field, value, reason in [
        ("last_name", "X", " "),
        ("fin", "X", "r"),
        ("birth_date", "2030-01-01", "r"),
        ("sex", "other", "r"),
    ]:
        with pytest.raises(ValidationFailed):
            head.correct(field, value, reason, None, TODAY)
    with pytest.raises(InvalidState):
        head.correct("first_name", "Rauf", "same", None, TODAY)


def test_idp_status_is_granted_once_and_ended_only_when_active() -> None:
    _, (head, *_) = family()
    with pytest.raises(InvalidState):
        head.end_idp_status("b", date(2020, 1, 1), "r", TODAY)
    head.grant_idp_status("Law 669-IQ", date(2020, 1, 1), "IDP-1", TODAY)
    with pytest.raises(InvalidState):
        head.grant_idp_status("Law 669-IQ", date(2020, 1, 1), "IDP-1", TODAY)
    with pytest.raises(ValidationFailed):
        head.end_idp_status("b", date(2019, 1, 1), "r", TODAY)
    head.end_idp_status("Resolution 65", date(2025, 1, 1), "returned", TODAY)
    assert head.idp_status == "ended"


def test_a_death_is_recorded_once_and_nothing_is_granted_afterwards() -> None:
    _, (head, *_) = family()
    with pytest.raises(ValidationFailed):
        head.record_death(date(1960, 1, 1), None, TODAY)
    head.record_death(date(2026, 2, 1), "certificate 17", TODAY)
    with pytest.raises(InvalidState):
        head.record_death(date(2026, 2, 1), None, TODAY)
    with pytest.raises(InvalidState):
        head.grant_idp_status("b", date(2026, 1, 1), None, TODAY)
