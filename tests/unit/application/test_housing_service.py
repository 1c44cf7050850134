"""Housing in memory: settlements, units, and lottery rounds whose entrants come from the
write model (there is no read model here at all, so no projection can lag behind)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from application.services import Services
from domain.base import ValidationFailed, acting_as
from domain.housing import HousingStateError
from tests.lottery import fresh, reveal_all
from tests.unit.application.conftest import (
    AGHALI,
    OPERATOR,
    SUPERVISOR,
    approved_rule_set,
    eligible_family,
    family,
)

TODAY = date.today()


def settlement_with_units(services: Services, rooms: list[int], open_it: bool = True) -> None:
    with acting_as(OPERATOR):
        services.housing.register_settlement(AGHALI)
        services.housing.register_units(
            AGHALI,
            [
                {
                    "reference": f"{i + 1:03d}",
                    "address": f"Ağalı, ev {i + 1}",
                    "rooms": r,
                    "kind": "house",
                }
                for i, r in enumerate(rooms)
            ],
        )
        services.housing.certify_clearance(AGHALI, "ANAMA", TODAY - timedelta(days=3), "ANAMA-17")
    if open_it:
        with acting_as(SUPERVISOR):
            services.housing.open_for_return(AGHALI, TODAY)


def test_a_settlement_opens_only_after_its_clearance_and_units_are_all_or_nothing(
    services: Services,
) -> None:
    with acting_as(OPERATOR):
        services.housing.register_settlement(AGHALI)
        with pytest.raises(HousingStateError):
            services.housing.register_settlement(AGHALI)
        with pytest.raises(ValidationFailed) as refused:
            services.housing.register_units(
                AGHALI,
                [
                    {"reference": "001", "address": "Ağalı, ev 1", "rooms": 3, "kind": "house"},
                    {"reference": "002", "address": "Ağalı, ev 2", "rooms": 0, "kind": "house"},
                ],
            )
    assert refused.value.field == "units[1].rooms"
    assert services.housing.settlement(AGHALI).units == {}
    with acting_as(SUPERVISOR), pytest.raises(HousingStateError, match="clearance"):
        services.housing.open_for_return(AGHALI, TODAY)
    with pytest.raises(ValidationFailed):
        services.housing.register_settlement("XXX-999")


def test_a_round_enters_every_eligible_family_from_the_log_in_priority_order(
    services: Services,
) -> None:
    approved_rule_set(services)
    families = [eligible_family(services, size=n) for n in (3, 5, 4)]
    with acting_as(OPERATOR):
        services.registry.register_household(family(3))  # never determined: not an entrant
    eligible_family(services, origin="LAC-002")  # eligible, but for another settlement
    settlement_with_units(services, [3, 4])
    with acting_as(SUPERVISOR):
        announced = services.housing.announce_round(AGHALI, fresh().commitments)
    assert sorted(e.household_id for e in announced.entrants) == sorted(families)
    ranks = [(e.priority_rank, -e.score, str(e.household_id)) for e in announced.entrants]
    assert ranks == sorted(ranks)
    assert announced.rule_set_version == 1 and len(announced.units) == 2


def test_a_round_is_drawn_once_with_the_committed_seed_and_every_unit_is_offered(
    services: Services,
) -> None:
    approved_rule_set(services)
    for _ in range(3):
        eligible_family(services)
    settlement_with_units(services, [3, 3])
    draw = fresh()
    with acting_as(SUPERVISOR):
        with pytest.raises(HousingStateError):  # no second round while one is undrawn
            services.housing.announce_round(AGHALI, draw.commitments)
            services.housing.announce_round(AGHALI, fresh().commitments)
        with pytest.raises(ValidationFailed):
            services.housing.reveal(AGHALI, 1, draw.reveals[0].participant, "not the secret" * 3)
        reveal_all(services.housing, AGHALI, 1, draw)
        drawn = services.housing.draw_round(AGHALI, 1, "", "Public Council")
        with pytest.raises(HousingStateError):
            services.housing.draw_round(AGHALI, 1, "", "Public Council")
    assert len(drawn.assignments) == 2 and len(drawn.reserve) == 1
    for assignment in drawn.assignments:
        case = services.relocation.relocation(assignment.household_id)
        assert case.offer is not None and case.offer["unit_id"] == assignment.unit_id
    assert services.housing.offer_drawn(AGHALI, 1) == 0  # run again: nothing offered twice


def test_a_round_needs_an_open_settlement_and_an_eligible_family(services: Services) -> None:
    approved_rule_set(services)
    settlement_with_units(services, [3], open_it=False)
    with acting_as(SUPERVISOR):
        with pytest.raises(HousingStateError, match="not open"):
            services.housing.announce_round(AGHALI, fresh().commitments)
        services.housing.open_for_return(AGHALI, TODAY)
        with pytest.raises(HousingStateError, match="no eligible household"):
            services.housing.announce_round(AGHALI, fresh().commitments)
