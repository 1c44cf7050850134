"""Housing by public lottery, voluntary relocation and reintegration, on the write side, the
read model and Kafka."""

from __future__ import annotations

import threading
from datetime import date, timedelta
from uuid import UUID

import pytest

from application.demo import document_household
from domain.base import ValidationFailed, acting_as
from domain.housing import HousingStateError, draw
from domain.relocation import RelocationStateError
from infra.bootstrap import Container
from projections.queries import housing as views
from tests.integration.conftest import Stack
from tests.integration.kafka_reading import read_topic
from tests.integration.test_avro_messages import decode, schemas_by_fingerprint
from tests.integration.test_eligibility import OPERATOR, SUPERVISOR, approved_v1, register
from tests.lottery import PARTICIPANTS, fresh, reveal_all
from tests.support import ROOT, wait_until

AGHALI = "ZAN-002"
TODAY = date.today()


def eligible_families(container: Container, sizes: list[int]) -> list[UUID]:
    approved_v1(container)
    ids = [register(container, size=n, origin=AGHALI) for n in sizes]
    with acting_as(OPERATOR):
        for household_id in ids:
            document_household(container.services, household_id)
        container.services.eligibility.determine_many(ids)
    container.projections.catch_up()
    return ids


def open_settlement(container: Container, rooms: list[int], open_it: bool = True) -> None:
    housing = container.services.housing
    with acting_as(OPERATOR):
        housing.register_settlement(AGHALI)
        housing.register_units(
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
        housing.certify_clearance(AGHALI, "ANAMA", TODAY - timedelta(days=3), "ANAMA-17")
    if open_it:
        with acting_as(SUPERVISOR):
            housing.open_for_return(AGHALI, TODAY)


def drawn(container: Container) -> object:
    with acting_as(SUPERVISOR):
        participants = fresh()
        announced = container.services.housing.announce_round(AGHALI, participants.commitments)
        reveal_all(container.services.housing, AGHALI, announced.round_number, participants)
        return container.services.housing.draw_round(
            AGHALI, announced.round_number, "", "Public Council observers"
        )


def test_no_allocation_into_a_settlement_that_is_not_open_and_no_opening_before_clearance(
    container: Container,
) -> None:
    eligible_families(container, [4])
    with acting_as(OPERATOR):
        container.services.housing.register_settlement(AGHALI)
    with acting_as(SUPERVISOR):
        with pytest.raises(HousingStateError, match="no certified security clearance"):
            container.services.housing.open_for_return(AGHALI, TODAY)
        with pytest.raises(HousingStateError, match="not open for return"):
            container.services.housing.announce_round(AGHALI, fresh().commitments)


def test_the_lottery_is_committed_before_and_reproduced_by_anyone_after(
    container: Container,
) -> None:
    families = eligible_families(container, [2, 3, 4, 5, 6, 3])
    open_settlement(container, [3, 3, 4])
    participants = fresh()
    with acting_as(SUPERVISOR):
        announced = container.services.housing.announce_round(AGHALI, participants.commitments)
        with pytest.raises(ValidationFailed) as wrong:
            container.services.housing.reveal(AGHALI, 1, PARTICIPANTS[1], "another secret " * 3)
        assert wrong.value.field == "contribution"
        reveal_all(container.services.housing, AGHALI, 1, participants)
        result = container.services.housing.draw_round(AGHALI, 1, "", "Public Council observers")

    assert {e.household_id for e in announced.entrants} == set(families)
    assert len(result.assignments) == 3 and len({a.unit_id for a in result.assignments}) == 3
    assert len(result.reserve) == 3
    # 6 persons are entitled to 4 rooms: the one 4-room house is theirs whatever the seed.
    big = families[4]
    assert any(a.household_id == big and a.rooms == 4 for a in result.assignments)
    check = container.services.audit.rerun_lottery(AGHALI, 1)
    assert check.matches and check.seed_matches_commitment
    # The draw depends on its inputs only: reversing the published order changes nothing.
    again = draw(result.seed or "", list(reversed(result.entrants)), list(result.units))
    assert again == (result.assignments, result.reserve)
    # Every assigned household holds its offer.
    for a in result.assignments:
        offer = container.services.relocation.relocation(a.household_id).offer
        assert offer is not None and offer["unit_id"] == a.unit_id
        assert offer["deadline"] == TODAY + timedelta(days=5)
    with acting_as(SUPERVISOR), pytest.raises(HousingStateError, match="still open"):
        container.services.housing.announce_round(AGHALI, fresh().commitments)


def test_a_declined_or_expired_unit_goes_to_the_next_family_on_the_reserve_list(
    container: Container,
) -> None:
    eligible_families(container, [3, 3, 3, 3])
    open_settlement(container, [3, 3])
    result = drawn(container)
    first, second = (a.household_id for a in result.assignments)
    reserve = [p.household_id for p in result.reserve]
    relocation = container.services.relocation
    with acting_as(OPERATOR):
        successor = relocation.decline_offer(first, "location", "too far from the school")
        assert successor is not None and successor.household_id == reserve[0]
        with pytest.raises(RelocationStateError, match="open offer"):
            relocation.decline_offer(first, "size", None)
        with pytest.raises(RelocationStateError, match="open until"):
            relocation.relocation(second).expire_offer(TODAY)
        expired = relocation.expire_offers(AGHALI, TODAY + timedelta(days=6))
    # Both offers lapsed (the one from the reserve list too); the one unit that went back to
    # the list went to the last family on it, and then the list was empty.
    assert {h for h, _ in expired} == {second, reserve[0]}
    assert sorted((n for _, n in expired), key=str) == sorted([reserve[1], None], key=str)

    container.projections.catch_up()
    with container.read_pool.connection() as conn, conn.cursor() as cur:
        units = views.list_units(cur, AGHALI, None, 10, 0)
    holders = {u["household_id"] for u in units if u["status"] == "offered"}
    assert holders == {reserve[1]}
    assert sum(1 for u in units if u["status"] == "available") == 1


def test_nothing_moves_without_consent_and_steps_come_in_order(container: Container) -> None:
    eligible_families(container, [4, 4])
    open_settlement(container, [3, 3])
    result = drawn(container)
    one, two = (a.household_id for a in result.assignments)
    relocation = container.services.relocation
    follow_ups = container.services.reintegration
    with acting_as(OPERATOR):
        relocation.accept_offer(one)
        relocation.accept_offer(two)
        with pytest.raises(RelocationStateError, match="without the family's consent"):
            relocation.schedule_convoy(AGHALI, TODAY, 1, [one])
        for household_id in (one, two):
            relocation.give_consent(household_id, ["house", "date"], "C-1", "aysel")
        convoy = relocation.schedule_convoy(AGHALI, TODAY + timedelta(days=2), 1, [one, two])
        relocation.withdraw_consent(two, "the family will wait for the harvest")
        assert relocation.convoy_departed(convoy.id, TODAY) == [one]
        with pytest.raises(RelocationStateError, match="must be arrived to receive the keys"):
            relocation.step(one, "hand_over_keys", handed_over_on=TODAY)
        with pytest.raises(RelocationStateError, match="only before departure"):
            relocation.withdraw_consent(one, "changed our mind")
        relocation.step(one, "arrive", arrived_on=TODAY, members_arrived=4)
        relocation.step(one, "hand_over_keys", handed_over_on=TODAY)
        with pytest.raises(RelocationStateError, match="not connected yet"):
            relocation.register_residence(one, TODAY, "RES-1")
            relocation.step(one, "complete", completed_on=TODAY)
        for utility in ("electricity", "gas", "water"):
            relocation.step(
                one, "connect_utility", utility=utility, connected_on=TODAY, account_reference=None
            )
        relocation.step(one, "complete", completed_on=TODAY)
        follow_ups.follow_up(
            one,
            "assess",
            framework="iasc",
            criterion="safety_and_security",
            met=True,
            evidence="cleared and policed",
            assessor="aysel",
            assessed_on=TODAY,
        )

    follow_up = follow_ups.reintegration(one)
    assert follow_up.allowance == {
        "amount": 33,
        "terminates_on": TODAY.replace(year=TODAY.year + 3),
    }
    container.projections.catch_up()
    with container.read_pool.connection() as conn, conn.cursor() as cur:
        stages = {r["stage"]: r["households"] for r in views.pipeline(cur, AGHALI)}
        returnee = views.returnees(cur, AGHALI)[0]
        units = views.units_by_status(cur, AGHALI)["totals"]
        (convoy_view,) = views.convoys(cur, AGHALI)
    assert [f["household_id"] for f in convoy_view["families"]] == [str(one)]
    assert convoy_view["withdrawn"] == 1
    assert stages == {"completed": 1, "allocated": 1}
    assert (
        returnee["allowance_azn"] == 33 and "safety_and_security" not in returnee["unmet_criteria"]
    )
    assert units == {"occupied": 1, "allocated": 1}


def test_what_other_agencies_act_on_reaches_kafka_with_its_schema(stack: Stack) -> None:
    from infra.bootstrap import PROJECTIONS

    container = stack.container
    container.projections.prepare()
    stop = threading.Event()
    relay = container.relay()
    thread = threading.Thread(target=relay.run, args=(stop,))
    thread.start()

    def published_and_projected() -> None:
        last = container.application.recorder.max_notification_id()
        wait_until(lambda: relay.published_position == last, timeout_s=60, what="the relay")
        for name in PROJECTIONS:
            container.projections.projector(name).run(threading.Event(), until_caught_up=True)

    try:
        approved_v1(container)
        family = register(container, size=3, origin=AGHALI)
        with acting_as(OPERATOR):
            document_household(container.services, family)
            container.services.eligibility.determine(family)
        open_settlement(container, [3])
        published_and_projected()  # with Kafka, the views come from the topics
        drawn(container)
        relocation = container.services.relocation
        follow_ups = container.services.reintegration
        with acting_as(OPERATOR):
            relocation.accept_offer(family)
            relocation.give_consent(family, ["house"], "C-9", "aysel")
            convoy = relocation.schedule_convoy(AGHALI, TODAY, 1, [family])
            relocation.convoy_departed(convoy.id, TODAY)
            relocation.step(family, "arrive", arrived_on=TODAY, members_arrived=3)
            relocation.step(family, "hand_over_keys", handed_over_on=TODAY)
            relocation.register_residence(family, TODAY, "RES-9")
            relocation.step(
                family,
                "connect_utility",
                utility="gas",
                connected_on=TODAY,
                account_reference="AZG-1",
            )
            follow_ups.follow_up(
                family,
                "provide_employment",
                person_fin="ABC1234",
                employer="Aqrar MMC",
                programme=None,
                start_date=TODAY,
            )
        published_and_projected()
    finally:
        stop.set()
        thread.join(30)
    schemas = schemas_by_fingerprint(ROOT / "schemas")
    bootstrap = stack.settings.kafka_bootstrap_servers or ""
    records = {}
    for message in read_topic(bootstrap, container.topics.cases):
        name, record = decode(message.value, schemas)
        records[name.rsplit(".", 1)[-1]] = (message.key.decode(), record)
    for name in ("ResidenceRegistered", "UtilityConnected", "BenefitChanged", "EmploymentProvided"):
        key, record = records[name]
        assert key == str(family) and str(record["household_id"]) == str(family), name
    assert records["BenefitChanged"][1]["monthly_amount_azn"] == 33
    assert records["UtilityConnected"][1]["utility"] == "gas"
    reference = {
        decode(m.value, schemas)[0] for m in read_topic(bootstrap, container.topics.reference_data)
    }
    assert "reintegration.housing.LotteryDrawn" in reference
    with container.read_pool.connection() as conn, conn.cursor() as cur:
        assert views.units_by_status(cur, AGHALI)["totals"] == {"occupied": 1}
