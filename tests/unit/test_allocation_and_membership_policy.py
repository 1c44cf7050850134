"""The policies that moved from the services into the domain, decided without any I/O: who
enters a lottery round and in what order, when a round may be announced, who is offered a
declined unit, how a household splits or takes a member in, a rule set's versions, and the
allowance that starts with a registered residence."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from uuid import UUID, uuid4

import pytest

from application.shipped import shipped_rule_set
from domain import allocation
from domain import eligibility as el
from domain.base import Actor, CommandContext, ValidationFailed, acting_as
from domain.engine import RuleEngine
from domain.housing import AllocationRound, Commitment, HousingStateError, Settlement
from domain.registration import join_household, register_household, split_household
from domain.registry import InvalidState, NewMember, RegisterHousehold
from domain.reintegration import Reintegration, start_allowance
from domain.relocation import Relocation
from domain.rules import parse_document, sample_facts
from infra.cel_language import CelLanguage
from tests.lottery import fresh, now, reveal_in

TODAY = date(2026, 11, 30)
AGHALI = "ZAN-002"


@pytest.fixture(autouse=True)
def supervisor() -> Iterator[CommandContext]:
    with acting_as(CommandContext(Actor("sup", "supervisor"), "c", "k")) as context:
        yield context


def approved() -> tuple[el.RuleSet, RuleEngine]:
    document = parse_document(shipped_rule_set())
    engine = RuleEngine(document, CelLanguage())
    validation = engine.validate()
    rule_set = el.draft(document, validation, [])
    el.approve(rule_set.code, [rule_set], 1, "Decision No. 14", date(2025, 1, 1), validation, TODAY)
    return rule_set, engine


def decision(rule_set: el.RuleSet, engine: RuleEngine, **facts: object) -> el.EligibilityDecision:
    return el.decide(
        household_id=uuid4(),
        sequence=1,
        supersedes=None,
        origin_settlement_code=str(facts.pop("origin", AGHALI)),
        rule_set=rule_set,
        engine=engine,
        facts={**sample_facts(), **facts},
        reason="test",
    )


def open_settlement(units: list[int]) -> Settlement:
    settlement = Settlement(code=AGHALI, name="Ağalı")
    for i, rooms in enumerate(units):
        settlement.register_unit(f"{i + 1:03d}", f"Ağalı, ev {i + 1}", rooms, "house", None)
    settlement.certify_clearance("ANAMA", TODAY, "ANAMA-17", TODAY)
    settlement.open_for_return(TODAY)
    return settlement


def test_only_eligible_families_of_the_settlement_enter_in_priority_order() -> None:
    rule_set, engine = approved()
    eligible = [decision(rule_set, engine) for _ in range(3)]
    elsewhere = decision(rule_set, engine, origin="LAC-002")
    refused = decision(rule_set, engine, private_housing_after_displacement=True)
    assert refused.effective_result != "eligible"
    entrants = allocation.entrants([*eligible, elsewhere, refused], AGHALI)
    assert {e.household_id for e in entrants} == {d.household_id for d in eligible}
    order = [(e.priority_rank, -e.score, str(e.household_id)) for e in entrants]
    assert order == sorted(order)


def test_a_round_is_announced_only_when_nothing_can_change_under_it() -> None:
    rule_set, engine = approved()
    decisions = [decision(rule_set, engine) for _ in range(3)]
    draw = fresh()
    closed = Settlement(code=AGHALI, name="Ağalı")
    with pytest.raises(HousingStateError, match="not open"):
        allocation.announce(closed, [], {}, decisions, rule_set, draw.commitments, None, now())
    settlement = open_settlement([3, 4])
    malformed = [Commitment("Public Council", "sha256:nothex"), *draw.commitments[1:]]
    with pytest.raises(ValidationFailed):
        allocation.announce(settlement, [], {}, decisions, rule_set, malformed, None, now())
    with pytest.raises(HousingStateError, match="no eligible household"):
        allocation.announce(settlement, [], {}, [], rule_set, draw.commitments, None, now())
    first = allocation.announce(
        settlement, [], {}, decisions, rule_set, draw.commitments, None, now()
    )
    assert first.round_number == 1 and len(first.units) == 2 and len(first.entrants) == 3
    again = fresh()
    with pytest.raises(HousingStateError, match="not drawn"):
        allocation.announce(
            settlement, [first], {}, decisions, rule_set, again.commitments, None, now()
        )
    reveal_in(first, draw)
    first.draw("", "Public Council", now())
    cases = {c.household_id: c for c in allocation.offer_drawn(first, settlement, {}, TODAY)}
    with pytest.raises(HousingStateError, match="still open"):
        allocation.announce(
            settlement, [first], cases, decisions, rule_set, again.commitments, None, now()
        )


def test_a_declined_unit_goes_to_the_next_family_of_its_room_category_not_yet_offered() -> None:
    rule_set, engine = approved()
    decisions = [decision(rule_set, engine) for _ in range(4)]
    settlement = open_settlement([3])
    draw = fresh()
    announced: AllocationRound = allocation.announce(
        settlement, [], {}, decisions, rule_set, draw.commitments, None, now()
    )
    reveal_in(announced, draw)
    announced.draw("", "Public Council", now())
    (offered,) = allocation.offer_drawn(announced, settlement, {}, TODAY)
    (assignment,) = announced.assignments
    offered.decline_offer("location", None)
    waiting = allocation.reserve_households(announced, assignment.unit_id)
    cases: dict[UUID, Relocation] = {offered.household_id: offered}
    successor = allocation.next_on_reserve(announced, settlement, assignment.unit_id, cases, TODAY)
    assert successor is not None and successor.household_id == waiting[0]
    cases[successor.household_id] = successor
    successor.decline_offer("size", None)
    following = allocation.next_on_reserve(announced, settlement, assignment.unit_id, cases, TODAY)
    assert following is not None and following.household_id == waiting[1]


def test_a_split_names_its_head_among_those_leaving_and_moves_each_of_them() -> None:
    members = [
        NewMember("HEAD001", "Rauf", "Əliyev", None, date(1970, 1, 1), "male", "head"),
        NewMember("SONN001", "Orxan", "Əliyev", None, date(2000, 1, 1), "male", "child"),
        NewMember("DAUG001", "Nigar", "Əliyeva", None, date(2002, 1, 1), "female", "child"),
    ]
    household, persons = register_household(RegisterHousehold(members, AGHALI, "Bakı"), TODAY)
    by_id = {p.id: p for p in persons}
    son, daughter = persons[1].id, persons[2].id
    with pytest.raises(ValidationFailed) as refused:
        split_household(household, by_id, son, {daughter: "sibling"}, "Bakı", "married")
    assert refused.value.field == "head_person_id"
    with pytest.raises(InvalidState):
        split_household(household, by_id, son, {son: "head", uuid4(): "sibling"}, "Bakı", "x")
    new = split_household(household, by_id, son, {son: "head", daughter: "sibling"}, "Bakı", "x")
    assert {m.person_id for m in new.members} == {son, daughter}
    assert by_id[daughter].household_id == new.id and household.member(son) is None


def test_a_registered_person_joins_only_after_leaving_their_household() -> None:
    members = [NewMember("HEAD001", "Rauf", "Əliyev", None, date(1970, 1, 1), "male", "head")]
    home, (head,) = register_household(RegisterHousehold(members, AGHALI, "Bakı"), TODAY)
    other, _ = register_household(
        RegisterHousehold(
            [NewMember("WIFE001", "Aysel", "Əliyeva", None, date(1975, 1, 1), "female", "head")],
            AGHALI,
            "Bakı",
        ),
        TODAY,
    )
    again = NewMember("HEAD001", "Rauf", "Əliyev", None, date(1970, 1, 1), "male", "spouse")
    with pytest.raises(InvalidState, match="remove them there first"):
        join_household(other, again, "marriage", head, home, TODAY)
    newborn = NewMember("BABY001", "Ülvi", "Əliyev", None, date(2026, 11, 1), "male", "child")
    person = join_household(other, newborn, "birth", None, None, TODAY)
    assert person.household_id == other.id and other.member(person.id) is not None


def test_a_version_is_drafted_in_turn_and_approving_it_supersedes_the_one_before() -> None:
    rule_set, engine = approved()
    document = parse_document(shipped_rule_set())
    with pytest.raises(el.EligibilityStateError, match="the next is 2"):
        el.draft(document, engine.validate(), [rule_set])
    v2_document = parse_document({**shipped_rule_set(), "version": 2})
    v2 = el.draft(v2_document, engine.validate(), [rule_set])
    changed = el.approve(
        rule_set.code, [rule_set, v2], 2, "Decision No. 15", TODAY, engine.validate(), TODAY
    )
    assert changed == [v2, rule_set]
    assert rule_set.status == "superseded" and v2.status == "approved"
    with pytest.raises(el.EligibilityStateError, match="already approved"):
        el.approve(rule_set.code, [rule_set, v2], 1, "again", TODAY, engine.validate(), TODAY)


def test_the_allowance_starts_once_at_the_rate_of_the_housing_before() -> None:
    follow_up = Reintegration(household_id=uuid4(), settlement_code=AGHALI)
    start_allowance(follow_up, "others_flat", None)  # the settlement has not opened
    assert follow_up.allowance is None
    start_allowance(follow_up, "dormitory", TODAY)
    assert follow_up.allowance == {"amount": 33, "terminates_on": date(2029, 11, 30)}
    start_allowance(follow_up, "others_flat", TODAY)
    assert follow_up.allowance["amount"] == 33
