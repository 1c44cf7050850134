"""Registering a household, as the domain decides it (no I/O)."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.base import Actor, CommandContext, MissingCommandContext, ValidationFailed, acting_as
from domain.registration import register_household
from domain.registry import (
    Household,
    NewMember,
    Person,
    RegisterHousehold,
    person_id_for,
)

TODAY = date(2026, 11, 29)
CONTEXT = CommandContext(Actor("op-7", "operator"), "corr-1", "cmd-1")


def member(fin: str, relationship: str = "head", **changes: object) -> NewMember:
    values: dict[str, object] = {
        "fin": fin,
        "first_name": "Aysel",
        "last_name": "Məmmədova",
        "patronymic": None,
        "birth_date": date(1984, 3, 12),
        "sex": "female",
        "relationship": relationship,
    }
    values.update(changes)
    return NewMember(**values)  # type: ignore[arg-type]


def registration(*members: NewMember, origin: str = "ZAN-002") -> RegisterHousehold:
    return RegisterHousehold(list(members), origin, "Bakı, yataqxana 4")


def test_registering_a_household_creates_it_and_one_person_per_member() -> None:
    with acting_as(CONTEXT):
        household, persons = register_household(
            registration(member("AAAAAA1"), member("bbbbbb2", "child", first_name=" Elçin ")), TODAY
        )
    (registered,) = household.collect_events()
    assert isinstance(registered, Household.Registered)
    assert registered.head_person_id == person_id_for("AAAAAA1")
    assert [(m.fin, m.relationship) for m in registered.members] == [
        ("AAAAAA1", "head"),
        ("BBBBBB2", "child"),
    ]
    assert registered.origin_settlement_code == "ZAN-002"
    person_events = [p.collect_events()[0] for p in persons]
    assert all(isinstance(e, Person.Registered) for e in person_events)
    assert person_events[1].first_name == "Elçin"
    assert {e.case_id for e in person_events} == {household.id}


def test_every_event_records_actor_correlation_and_causation() -> None:
    with acting_as(CONTEXT):
        household, persons = register_household(registration(member("AAAAAA1")), TODAY)
    for event in [*household.collect_events(), *persons[0].collect_events()]:
        assert (event.actor_id, event.actor_role) == ("op-7", "operator")
        assert (event.correlation_id, event.causation_id) == ("corr-1", "cmd-1")
        assert event.event_id is not None
        assert event.timestamp.tzinfo is not None


def test_no_event_can_be_recorded_without_an_actor() -> None:
    with pytest.raises(MissingCommandContext):
        register_household(registration(member("AAAAAA1")), TODAY)


def test_the_person_id_is_the_same_for_the_same_fin_whatever_its_case() -> None:
    assert person_id_for("ab12cd3") == person_id_for(" AB12CD3 ")
    assert person_id_for("AB12CD3") != person_id_for("AB12CD4")


@pytest.mark.parametrize(
    ("command", "field"),
    [
        (registration(member("12AB")), "members[0].fin"),
        (registration(member("AAAAAA1", first_name=" ")), "members[0].first_name"),
        (registration(member("AAAAAA1", birth_date=date(2026, 11, 30))), "members[0].birth_date"),
        (registration(member("AAAAAA1"), member("AAAAAA2", "cousin")), "members[1].relationship"),
        (registration(member("AAAAAA1", "spouse")), "members"),
        (registration(member("AAAAAA1"), member("aaaaaa1", "child")), "members[1].fin"),
        (registration(member("AAAAAA1"), member("AAAAAA2")), "members[1].relationship"),
        (registration(member("AAAAAA1", sex="x")), "members[0].sex"),
        (registration(member("AAAAAA1"), origin="NOPE-1"), "origin_settlement_code"),
        (RegisterHousehold([], "ZAN-002", "x"), "members"),
    ],
)
def test_invalid_registration_is_rejected_naming_the_field(
    command: RegisterHousehold, field: str
) -> None:
    with acting_as(CONTEXT), pytest.raises(ValidationFailed) as raised:
        register_household(command, TODAY)
    assert field in [e.field for e in raised.value.errors]


def test_every_broken_rule_is_reported_at_once() -> None:
    with acting_as(CONTEXT), pytest.raises(ValidationFailed) as raised:
        register_household(
            RegisterHousehold([member("x", first_name="", relationship="boss")], "ZZZ", " "), TODAY
        )
    assert {e.field for e in raised.value.errors} == {
        "members[0].fin",
        "members[0].first_name",
        "members[0].relationship",
        "members",
        "origin_settlement_code",
        "current_address",
    }


@given(st.text(max_size=12) | st.sampled_from(["abcdeß", "ABCDEﬀ", "ǅ234567", "１２３４５６７"]))
def test_a_fin_is_accepted_only_when_it_is_seven_latin_letters_or_digits(fin: str) -> None:
    command = registration(member(fin))
    candidate = fin.strip()
    valid = len(candidate) == 7 and candidate.isascii() and candidate.isalnum()
    with acting_as(CONTEXT):
        if valid:
            register_household(command, TODAY)
        else:
            with pytest.raises(ValidationFailed) as raised:
                register_household(command, TODAY)
            assert raised.value.field == "members[0].fin"
