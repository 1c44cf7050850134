"""Relocation and reintegration in memory: offers that pass down the reserve list, consent,
convoys, the steps of a move, and the follow-up that opens with a registered residence."""

from __future__ import annotations

from datetime import date, timedelta
from uuid import UUID

import pytest

from application.services import Services
from domain.base import acting_as
from domain.housing import AllocationRound, HousingStateError
from domain.relocation import RelocationStateError
from tests.lottery import fresh, reveal_all
from tests.unit.application.conftest import (
    AGHALI,
    OPERATOR,
    SUPERVISOR,
    approved_rule_set,
    eligible_family,
)
from tests.unit.application.test_housing_service import settlement_with_units

TODAY = date.today()


def drawn(services: Services, families: int, rooms: list[int]) -> AllocationRound:
    approved_rule_set(services)
    for _ in range(families):
        eligible_family(services)
    settlement_with_units(services, rooms)
    with acting_as(SUPERVISOR):
        draw = fresh()
        services.housing.announce_round(AGHALI, draw.commitments)
        reveal_all(services.housing, AGHALI, 1, draw)
        return services.housing.draw_round(AGHALI, 1, "", "Public Council")


def test_a_declined_or_lapsed_offer_goes_to_the_next_family_on_the_reserve_list(
    services: Services,
) -> None:
    result = drawn(services, 4, [3, 3])
    first, second = (a.household_id for a in result.assignments)
    reserve = [p.household_id for p in result.reserve]
    with acting_as(OPERATOR):
        successor = services.relocation.decline_offer(first, "location", "far from school")
        assert successor is not None and successor.household_id == reserve[0]
        with pytest.raises(RelocationStateError):
            services.relocation.decline_offer(first, "size", None)
        expired = services.relocation.expire_offers(AGHALI, TODAY + timedelta(days=60))
    assert {h for h, _ in expired} == {second, reserve[0]}
    assert sorted((n for _, n in expired), key=str) == sorted([reserve[1], None], key=str)
    with acting_as(OPERATOR):
        assert services.relocation.expire_offers(AGHALI, TODAY + timedelta(days=60)) == []


def move_in(services: Services, household_id: UUID) -> None:
    relocation = services.relocation
    relocation.accept_offer(household_id)
    relocation.give_consent(household_id, ["house", "date"], "C-1", "aysel")
    convoy = relocation.schedule_convoy(AGHALI, TODAY, 1, [household_id])
    assert relocation.convoy_departed(convoy.id, TODAY) == [household_id]
    relocation.step(household_id, "arrive", arrived_on=TODAY, members_arrived=3)
    relocation.step(household_id, "hand_over_keys", handed_over_on=TODAY)


def test_nothing_moves_without_consent_and_the_steps_come_in_order(services: Services) -> None:
    result = drawn(services, 2, [3, 3])
    one, two = (a.household_id for a in result.assignments)
    with acting_as(OPERATOR):
        services.relocation.accept_offer(one)
        with pytest.raises(RelocationStateError):  # no consent yet
            services.relocation.schedule_convoy(AGHALI, TODAY, 1, [one])
        with pytest.raises(HousingStateError):  # another settlement's convoy
            services.relocation.schedule_convoy("LAC-002", TODAY, 1, [one])
        with pytest.raises(RelocationStateError):  # not departed yet
            services.relocation.step(one, "arrive", arrived_on=TODAY, members_arrived=3)
        move_in(services, two)
        with pytest.raises(ValueError, match="not a relocation step"):
            services.relocation.step(two, "teleport")
    assert services.relocation.relocation(two).stage == "keys_handed_over"


def test_a_registered_residence_opens_the_follow_up_with_the_allowance_rule_applied(
    services: Services,
) -> None:
    result = drawn(services, 1, [3])
    (family_id,) = (a.household_id for a in result.assignments)
    with acting_as(OPERATOR):
        move_in(services, family_id)
        with pytest.raises(HousingStateError, match="registered residence"):
            services.reintegration.follow_up(
                family_id, "record_employment_need", persons=1, sectors=[], note=None
            )
        services.relocation.register_residence(family_id, TODAY, "RES-1")
        follow_up = services.reintegration.follow_up(
            family_id, "record_employment_need", persons=2, sectors=["agriculture"], note=None
        )
    # The family lived in a dormitory: 33 AZN a month, for three years from the opening.
    assert follow_up.allowance is not None and follow_up.allowance["amount"] == 33
    assert follow_up.allowance["terminates_on"].year == TODAY.year + 3
    assert services.reintegration.reintegration(family_id).persons_seeking_work == 2
