"""The lottery, the relocation steps and the reintegration rules, without I/O."""

from __future__ import annotations

from datetime import UTC, date, datetime
from uuid import UUID, uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.base import Actor, CommandContext, acting_as
from domain.housing import Entrant, RoundUnit, category, draw, seed_hash
from domain.reintegration import Reintegration, monthly_allowance, protection_ends
from domain.relocation import Relocation, RelocationStateError

CONTEXT = CommandContext(Actor("op", "operator"), "c", "c")
TODAY = date(2026, 7, 19)


def entrant(rank: int, rooms: int, score: float = 0.0) -> Entrant:
    return Entrant(uuid4(), uuid4(), f"group-{rank}", rank, score, rooms)


def units(*rooms: int) -> list[RoundUnit]:
    return [RoundUnit(uuid4(), r) for r in rooms]


def test_a_household_draws_in_the_smallest_category_that_covers_its_entitlement() -> None:
    assert [category(n, [3, 4, 5]) for n in (1, 2, 3, 4, 5, 6)] == [3, 3, 3, 4, 5, 5]
    assert category(4, [2, 3]) == 3  # none covers it: the largest there is


def test_a_higher_priority_group_is_housed_before_a_lower_one_whatever_the_seed() -> None:
    first = [entrant(1, 3) for _ in range(3)]
    later = [entrant(2, 3, score=9) for _ in range(5)]
    for seed in ("a", "b", "c", "d"):
        assignments, reserve = draw(seed, later + first, units(3, 3, 3, 3))
        housed = {a.household_id for a in assignments}
        assert {e.household_id for e in first} <= housed
        assert [p.position for p in reserve] == [1, 2, 3, 4]


@settings(max_examples=100, deadline=None)
@given(st.text(min_size=1, max_size=20), st.randoms(use_true_random=False))
def test_the_draw_depends_on_the_seed_and_entrants_not_on_their_order(
    seed: str, rnd: object
) -> None:
    people = [entrant(1 + i % 3, 2 + i % 4) for i in range(12)]
    homes = units(3, 3, 3, 4, 4, 5)
    shuffled = list(people)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    assert draw(seed, people, homes) == draw(seed, shuffled, list(reversed(homes)))
    assignments, reserve = draw(seed, people, homes)
    assert len({a.unit_id for a in assignments}) == len(assignments)
    assert {a.household_id for a in assignments}.isdisjoint({p.household_id for p in reserve})
    assert len(assignments) + len(reserve) == len(people)


def test_the_published_hash_commits_to_the_seed() -> None:
    assert (
        seed_hash("x") == "sha256:2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"
    )


def case_with_offer() -> Relocation:
    with acting_as(CONTEXT):
        case = Relocation(household_id=uuid4(), settlement_code="ZAN-002")
        case.offer_housing(uuid4(), uuid4(), 3, "Ağalı, ev 1", TODAY, 5, from_reserve=False)
    return case


def test_a_household_holds_at_most_one_open_offer_and_accepts_within_the_deadline() -> None:
    case = case_with_offer()
    with acting_as(CONTEXT):
        with pytest.raises(RelocationStateError, match="already holds an open offer"):
            case.offer_housing(uuid4(), uuid4(), 3, "ev 2", TODAY, 5, from_reserve=False)
        with pytest.raises(RelocationStateError, match="expired"):
            case.accept_offer(date(2026, 7, 25))
        case.accept_offer(date(2026, 7, 24))
    assert case.stage == "allocated" and case.allocated_address == "Ağalı, ev 1"


def test_steps_out_of_order_are_refused_with_the_stage_named() -> None:
    case = case_with_offer()
    with acting_as(CONTEXT):
        case.accept_offer(TODAY)
        with pytest.raises(RelocationStateError, match="without the family's consent"):
            case.schedule(uuid4(), TODAY)
        case.give_consent(["house"], "C-1", "aysel")
        with pytest.raises(RelocationStateError, match="stage consented: it must be scheduled"):
            case.depart(TODAY)
        case.schedule(uuid4(), TODAY)
        case.depart(TODAY)
        with pytest.raises(RelocationStateError, match="only before departure"):
            case.withdraw_consent("changed our mind")
        with pytest.raises(
            RelocationStateError, match="stage departed: it must be keys_handed_over"
        ):
            case.register_residence(TODAY, "R-1")


def test_consent_withdrawn_before_departure_leaves_the_allocation_and_the_convoy_seat_goes() -> (
    None
):
    case = case_with_offer()
    with acting_as(CONTEXT):
        case.accept_offer(TODAY)
        case.give_consent(["house"], "C-1", "aysel")
        case.schedule(uuid4(), TODAY)
        case.withdraw_consent("the family will wait for the harvest")
    assert (case.stage, case.convoy_id, case.consent) == ("allocated", None, False)
    assert case.allocated_unit is not None


def test_protection_lasts_three_years_from_when_conditions_for_return_were_created() -> None:
    assert protection_ends(date(2022, 7, 19)) == date(2025, 7, 19)
    assert protection_ends(date(2024, 2, 29)) == date(2027, 2, 28)
    assert (monthly_allowance(True), monthly_allowance(False)) == (33, 60)


def test_unmet_durable_solution_criteria_are_those_not_assessed_as_met() -> None:
    with acting_as(CONTEXT):
        follow_up = Reintegration(household_id=UUID(int=1), settlement_code="ZAN-002")
        follow_up.assess("iasc", "documentation", True, "ID cards issued", "aysel", TODAY)
        follow_up.assess("iasc", "safety_and_security", False, "mines nearby", "aysel", TODAY)
    assert "documentation" not in follow_up.unmet_criteria
    assert "safety_and_security" in follow_up.unmet_criteria and len(follow_up.unmet_criteria) == 7


def test_a_contribution_is_recorded_exactly_as_revealed_so_its_commitment_still_matches() -> None:
    from domain.housing import AllocationRound, Commitment

    decomposed = "e\u0301-secret of the Public Council, kept exactly"  # not NFC: kept as is
    with acting_as(CONTEXT):
        announced = AllocationRound(
            settlement_code="ZAN-002",
            round_number=1,
            seed_hash="",
            algorithm_version="reintegration-lottery/2",
            entrants=[Entrant(uuid4(), uuid4(), "collective_centre", 1, 1.0, 3, "p-1")],
            units=[RoundUnit(uuid4(), 3)],
            rule_set_code="great-return-housing",
            rule_set_version=1,
            offer_deadline_days=5,
            commitments=[
                Commitment("Public Council", seed_hash(decomposed)),
                Commitment("Committee", seed_hash("other" * 8)),
            ],
            public_randomness=None,
            announcement_digest="sha256:" + "0" * 64,
        )
        announced.reveal("Public Council", decomposed, datetime.now(UTC))
        announced.reveal("Committee", "other" * 8, datetime.now(UTC))
        announced.draw("", "Public Council", datetime.now(UTC))
    drawn = announced.pending_events[-1]
    assert drawn.contributions[0].contribution == decomposed  # type: ignore[attr-defined]
    assert seed_hash(drawn.contributions[0].contribution) == announced.commitments[0].commitment  # type: ignore[attr-defined]
