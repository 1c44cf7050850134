"""The registry's use cases in memory: each loads, lets the domain decide, and saves."""

from __future__ import annotations

from datetime import date
from uuid import uuid4

import pytest

from application.ports import ConcurrentUpdate
from application.services import Services
from domain.base import CommandContext, NotFound, ValidationFailed
from domain.registry import Household, InvalidState, PersonAlreadyRegistered, RegisterHousehold
from tests.unit.application.conftest import family, member


def test_a_registered_household_and_its_members_are_read_back_from_the_store(
    services: Services, operator: CommandContext
) -> None:
    command = family(3)
    household_id = services.registry.register_household(command)
    household = services.registry.get_household(household_id)
    assert [m.fin for m in household.members] == [m.fin for m in command.members]
    head = services.registry.get_person(command.members[0].fin)
    assert head.household_id == household_id
    (registered,) = services.store.case_events([household_id])
    assert registered.event.actor_id == "op-aysel"  # who did it, on the event itself


def test_a_fin_registered_before_is_refused_naming_the_member(
    services: Services, operator: CommandContext
) -> None:
    first = family(2)
    services.registry.register_household(first)
    again = RegisterHousehold([member("head"), first.members[1]], "LAC-002", "Bərdə, yataqxana 2")
    with pytest.raises(PersonAlreadyRegistered) as refused:
        services.registry.register_household(again)
    assert refused.value.field == "members[1].fin"
    assert len(services.store.households()) == 1  # nothing of the second household was stored


def test_a_person_who_left_a_household_may_join_another(
    services: Services, operator: CommandContext
) -> None:
    first = family(3)
    home = services.registry.register_household(first)
    daughter = services.registry.get_person(first.members[2].fin)
    services.registry.remove_member(home, daughter.id, "marriage_out", None)
    spouse_home = services.registry.register_household(family(1, "LAC-002"))
    again = first.members[2]
    joined = services.registry.add_member(
        spouse_home,
        type(again)(**{**again.__dict__, "relationship": "spouse"}),
        "marriage",
    )
    assert joined == daughter.id
    assert services.registry.get_person(again.fin).household_id == spouse_home
    with pytest.raises(InvalidState):  # still a member of the new household: not twice
        services.registry.add_member(spouse_home, again, "marriage")


def test_a_split_moves_the_members_to_a_new_household_in_one_save(
    services: Services, operator: CommandContext
) -> None:
    command = family(4)
    home = services.registry.register_household(command)
    spouse, son, daughter = (services.registry.get_person(m.fin).id for m in command.members[1:])
    with pytest.raises(ValidationFailed):  # the new head must be one of those leaving
        services.registry.split_household(home, spouse, {son: "head"}, "Bakı", "married")
    new_home = services.registry.split_household(
        home, son, {son: "head", daughter: "sibling"}, "Sumqayıt, 9-cu mkr", "married"
    )
    assert {m.person_id for m in services.registry.get_household(new_home).members} == {
        son,
        daughter,
    }
    assert len(services.registry.get_household(home).members) == 2
    assert services.registry.get_person(command.members[3].fin).household_id == new_home


def test_person_commands_keep_the_history_and_refuse_what_the_state_forbids(
    services: Services, operator: CommandContext
) -> None:
    command = family(2)
    services.registry.register_household(command)
    fin = command.members[0].fin
    services.registry.correct_person(fin, "first_name", "Aysəl", "spelling", "ID card")
    granted = services.registry.grant_idp_status(fin, "Law 669-IQ", date(1994, 5, 1), "IDP-7")
    assert granted.idp_status == "active" and granted.first_name == "Aysəl"
    person, code = services.registry.issue_status_reference(fin)
    issued = services.store.case_events([person.id])[-1].event
    assert len(code) == 19 and issued.verification_code == code and issued.status == "active"
    services.registry.end_idp_status(fin, "returned", date.today(), "settled")
    with pytest.raises(InvalidState):
        services.registry.end_idp_status(fin, "returned", date.today(), "again")
    services.registry.record_death(fin, date.today(), None)
    with pytest.raises(InvalidState):
        services.registry.record_death(fin, date.today(), None)


def test_an_unknown_fin_or_household_is_not_found(
    services: Services, operator: CommandContext
) -> None:
    with pytest.raises(NotFound):
        services.registry.get_person("ZZZZ999")
    with pytest.raises(NotFound):
        services.registry.record_housing_condition(uuid4(), "dormitory", None)


def test_two_writers_of_one_case_keep_the_first_and_refuse_the_second(
    services: Services, operator: CommandContext
) -> None:
    home = services.registry.register_household(family(2))
    mine: Household = services.store.get(home, "household")
    theirs: Household = services.store.get(home, "household")
    mine.record_housing_condition("dormitory", None)
    theirs.record_housing_condition("others_flat", None)
    services.store.save(mine)
    with pytest.raises(ConcurrentUpdate):
        services.store.save(theirs)
    assert services.registry.get_household(home).housing_condition == "dormitory"
