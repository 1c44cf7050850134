"""Snapshots of the long-lived aggregates (settlements, households, persons, relocations):
for generated histories, the state restored from a snapshot, stored as the event store stores
it, plus the later events equals the state replayed from every event; and a snapshot stored
before an upcast still loads to the state a full replay gives."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from typing import Any
from uuid import UUID, uuid5

import pytest
from eventsourcing.application import project_aggregate
from eventsourcing.domain import event
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from application.store import (
    SNAPSHOT_INTERVAL,
    LibraryEventStore,
    ReintegrationApplication,
    in_memory,
)
from domain.base import Actor, CaseAggregate, CommandContext, DomainError, acting_as
from domain.housing import Settlement
from domain.registry import (
    CORRECTABLE_FIELDS,
    HOUSING_CONDITIONS,
    MEMBER_ADDED_REASONS,
    RELATIONSHIPS,
    VULNERABILITIES,
    Household,
    Member,
    Person,
)
from domain.relocation import UTILITIES, Relocation

CONTEXT = CommandContext(Actor("op-snapshots", "operator"), "snapshot-tests", "snapshot-tests")
TODAY = date(2026, 6, 1)
NS = UUID(int=7)


@pytest.fixture(autouse=True)
def _acting() -> Iterator[None]:
    with acting_as(CONTEXT):
        yield


def _day(n: int) -> date:
    return TODAY - timedelta(days=400 - n)


# --- commands the histories are drawn from (a refused command records nothing) ---------------


def settlement_step(s: Settlement, kind: int, n: int) -> None:
    match kind % 4:
        case 0:
            s.certify_clearance("Mine Action Agency", _day(n), f"CL-{n}", TODAY)
        case 1:
            s.certify_readiness(
                [("electricity", "gas", "water", "roads")[n % 4]], _day(n), f"R-{n}"
            )
        case 2:
            s.open_for_return(_day(n + 10))
        case _:
            s.register_unit(
                f"U-{n}", f"Street {n % 7}, house {n}", 1 + n % 5, ("house", "flat")[n % 2], n % 9
            )


def household_step(h: Household, kind: int, n: int) -> None:
    person = uuid5(NS, f"person-{n % 6}")
    match kind % 7:
        case 0:
            h.add_member(
                person, f"{n % 6}ABCDE", RELATIONSHIPS[1 + n % 9], MEMBER_ADDED_REASONS[n % 4]
            )
        case 1:
            h.remove_member(person, "moved_out", None)
        case 2:
            h.record_housing_condition(HOUSING_CONDITIONS[n % 6], f"note {n}" if n % 2 else None)
        case 3:
            h.record_vulnerability(VULNERABILITIES[n % 6], person if n % 2 else None, None)
        case 4:
            h.clear_vulnerability(VULNERABILITIES[n % 6], person if n % 2 else None, "no longer")
        case 5:
            h.verify_circumstances(n % 2 == 0, n % 3 == 0, False, _day(n), f"ACT-{n}", None, TODAY)
        case _:
            h.change_head(person, RELATIONSHIPS[1 + n % 9], "the head moved away")


def person_step(p: Person, kind: int, n: int) -> None:
    match kind % 6:
        case 0:
            field = CORRECTABLE_FIELDS[n % len(CORRECTABLE_FIELDS)]
            value = {"birth_date": "1981-02-03", "sex": ("female", "male")[n % 2]}.get(
                field, f"Ad{n}"
            )
            p.correct(field, value, "a typing error", f"DOC-{n}", TODAY)
        case 1:
            p.grant_idp_status("resolution-65", _day(n), f"IDP-{n}", TODAY)
        case 2:
            p.end_idp_status("returned", _day(n + 5), "returned home", TODAY)
        case 3:
            p.move_to(uuid5(NS, f"household-{n % 3}"), "marriage")
        case 4:
            p.issue_status_reference(f"V{n:06d}")
        case _:
            p.record_death(_day(n), f"DEATH-{n}", TODAY)


def relocation_step(r: Relocation, kind: int, n: int) -> None:
    match kind % 12:
        case 0:
            r.offer_housing(
                uuid5(NS, f"round-{n}"),
                uuid5(NS, f"unit-{n}"),
                3,
                f"Street {n}",
                _day(n),
                14,
                n % 2 == 0,
            )
        case 1:
            r.accept_offer(_day(n))
        case 2:
            r.decline_offer("size", None)
        case 3:
            r.expire_offer(_day(n + 30))
        case 4:
            r.give_consent(["house", "date"], f"CONSENT-{n}", "Aysel Məmmədova")
        case 5:
            r.withdraw_consent("changed their mind")
        case 6:
            r.schedule(uuid5(NS, f"convoy-{n}"), _day(n + 20))
        case 7:
            r.depart(_day(n + 20))
        case 8:
            r.arrive(_day(n + 21), 1 + n % 5)
        case 9:
            r.hand_over_keys(_day(n + 22))
        case 10:
            r.register_residence(_day(n + 23), f"RES-{n}")
        case _:
            r.connect_utility(UTILITIES[n % 4], _day(n + 24), f"ACC-{n}" if n % 2 else None)


def new_settlement() -> Settlement:
    return Settlement(code="ZAN-002", name="Ağalı")


def new_household() -> Household:
    head = uuid5(NS, "head")
    return Household(
        head_person_id=head,
        members=[Member(head, "HEAD001", "head")],
        origin_settlement_code="ZAN-002",
        current_address="Bakı, yataqxana 4",
        contact_phone=None,
    )


def new_person() -> Person:
    return Person(
        fin="5ABCDEF",
        first_name="Aysel",
        last_name="Məmmədova",
        patronymic=None,
        birth_date=date(1980, 1, 1),
        sex="female",
        household_id=uuid5(NS, "household-0"),
        idp_certificate_number=None,
        origin_settlement_code="ZAN-002",
        registered_address="Bakı",
    )


def new_relocation() -> Relocation:
    return Relocation(household_id=uuid5(NS, "household-0"), settlement_code="ZAN-002")


AGGREGATES: dict[str, tuple[Callable[[], Any], Callable[[Any, int, int], None]]] = {
    "settlement": (new_settlement, settlement_step),
    "household": (new_household, household_step),
    "person": (new_person, person_step),
    "relocation": (new_relocation, relocation_step),
}

HISTORIES = st.lists(st.tuples(st.integers(0, 11), st.integers(0, 60)), max_size=60)


def recorded(
    make: Callable[[], Any], step: Callable[[Any, int, int], None], history: Any
) -> list[Any]:
    aggregate = make()
    for kind, n in history:
        with contextlib.suppress(DomainError):  # refused: nothing recorded
            step(aggregate, kind, n)
    return list(aggregate.collect_events())


def state(aggregate: Any) -> dict[str, Any]:
    found = dict(vars(aggregate))
    found.pop("_pending_events", None)
    return {"type": type(aggregate), **found}


# The application's mapper: events and snapshots go through the transcodings as stored.
APP = in_memory()


def stored(domain_event: Any) -> Any:
    return APP.mapper.to_domain_event(APP.mapper.to_stored_event(domain_event))


@pytest.mark.parametrize("kind", sorted(AGGREGATES))
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(history=HISTORIES, split=st.floats(0, 1))
def test_state_from_a_snapshot_and_later_events_equals_full_replay(
    kind: str, history: Any, split: float
) -> None:
    make, step = AGGREGATES[kind]
    events = [stored(e) for e in recorded(make, step, history)]
    replayed = project_aggregate(None, events)
    at = max(1, int(split * len(events)))
    before = project_aggregate(None, events[:at])
    snapshot = stored(type(before).Snapshot.take(before))
    from_snapshot = project_aggregate(None, [snapshot, *events[at:]])
    assert state(from_snapshot) == state(replayed)


@pytest.mark.parametrize("kind", sorted(AGGREGATES))
@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(history=HISTORIES)
def test_an_aggregate_loaded_through_the_store_is_the_one_replayed(kind: str, history: Any) -> None:
    """Through the application: snapshots taken as saves cross the interval, loads from them."""
    make, step = AGGREGATES[kind]
    app = in_memory()
    aggregate = make()
    app.save(aggregate)
    for kind_, n in history * 4:  # long enough to cross the interval
        try:
            step(aggregate, kind_, n)
        except DomainError:
            continue
        app.save(aggregate)
    loaded = LibraryEventStore(app).get(aggregate.id, kind)
    replayed = project_aggregate(None, app.events.get(aggregate.id))
    assert state(loaded) == state(replayed)
    assert app.snapshots is not None
    taken = list(app.snapshots.get(aggregate.id, desc=True, limit=1))
    if aggregate.version >= SNAPSHOT_INTERVAL:
        assert taken and aggregate.version - taken[0].originator_version < SNAPSHOT_INTERVAL


def test_a_settlement_with_many_units_loads_from_its_latest_snapshot() -> None:
    app = in_memory()
    settlement = new_settlement()
    app.save(settlement)
    for batch in range(5):
        for n in range(batch * 300, batch * 300 + 300):
            settlement.register_unit(f"U-{n}", f"Street {n}", 3, "house", None)
        app.save(settlement)
    assert app.snapshots is not None
    (latest,) = app.snapshots.get(settlement.id, desc=True, limit=1)
    assert latest.originator_version == settlement.version  # taken at the version just saved
    assert list(app.events.get(settlement.id, gt=latest.originator_version)) == []
    loaded = app.repository.get(settlement.id)
    assert len(loaded.units) == 1500 and loaded.units == settlement.units


def test_a_snapshot_row_that_cannot_be_used_is_passed_over_for_the_full_replay() -> None:
    app = in_memory()
    household = new_household()
    for n in range(SNAPSHOT_INTERVAL + 3):
        household.record_housing_condition(HOUSING_CONDITIONS[n % 2], None)
    app.save(household)  # a snapshot at the version saved
    household.record_housing_condition("own_or_rented", None)
    app.save(household)
    assert app.snapshots is not None
    app.snapshots.recorder.insert_events(
        [StoredEvent(household.id, household.version, get_topic(Household.Snapshot), b"{not")]
    )
    full = project_aggregate(None, app.events.get(household.id))
    assert state(app.repository.get(household.id)) == state(full)


# --- upcasts ------------------------------------------------------------------------------


def test_a_snapshot_taken_before_an_event_class_was_upcast_loads_to_the_full_replay() -> None:
    """Household.Registered version 1 (no contact phone) stored, a snapshot taken after it by
    today's code, then more events: the snapshot and the upcast replay agree."""
    app = in_memory()
    household = new_household()
    household.record_housing_condition("dormitory", None)
    events = list(household.collect_events())
    first = app.mapper.to_stored_event(events[0])
    data = json.loads(first.state)
    del data["contact_phone"]
    data.pop("class_version", None)  # stored as version 1
    app.recorder.insert_events(
        [StoredEvent(first.originator_id, 1, first.topic, json.dumps(data).encode())]
    )
    app.events.put(events[1:])
    app.take_snapshot(household.id)
    later = app.repository.get(household.id)
    later.record_vulnerability("disability", None, None)
    app.save(later)
    full = project_aggregate(None, app.events.get(household.id))
    assert state(app.repository.get(household.id)) == state(full)
    assert full.contact_phone is None


class Shelter(CaseAggregate):
    """An aggregate of the test whose state changed shape: version 1 kept ``beds`` as one
    number; version 2 keeps them by room (the upcaster moves them into room "1")."""

    class_version = 2

    class Opened(CaseAggregate.Created):
        name: str

    class BedsCounted(CaseAggregate.Event):
        class_version = 2
        room: str
        beds: int

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["room"] = "1"

    @event(Opened)
    def __init__(self, name: str) -> None:
        self.name = name
        self.beds: dict[str, int] = {}

    @event(BedsCounted)
    def count(self, room: str, beds: int) -> None:
        self.beds[room] = beds

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        state["beds"] = {"1": state["beds"]} if state["beds"] else {}


def test_a_snapshot_stored_under_an_older_class_version_loads_to_the_full_replay() -> None:
    app = ReintegrationApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    shelter = Shelter(name="Ağalı school")
    (opened,) = [app.mapper.to_stored_event(e) for e in shelter.collect_events()]
    shelter.count(room="1", beds=12)
    (counted,) = [app.mapper.to_stored_event(e) for e in shelter.collect_events()]
    # As version 1 stored them: the event without a room, the snapshot with one number.
    v1_event = json.loads(counted.state)
    del v1_event["room"]
    v1_event.pop("class_version", None)
    app.recorder.insert_events(
        [
            opened,
            StoredEvent(counted.originator_id, 2, counted.topic, json.dumps(v1_event).encode()),
        ]
    )
    full = project_aggregate(None, app.events.get(shelter.id))
    snapshot_v1 = Shelter.Snapshot(
        originator_id=shelter.id,
        originator_version=2,
        timestamp=Shelter.Snapshot.create_timestamp(),
        topic=get_topic(Shelter),
        state={  # as version 1 took it: no class_version, the beds one number
            "_created_on": full.created_on,
            "_modified_on": full.modified_on,
            "name": "Ağalı school",
            "beds": 12,
        },
    )
    assert app.snapshots is not None
    app.snapshots.put([snapshot_v1])
    assert state(app.repository.get(shelter.id)) == state(full)
    assert full.beds == {"1": 12}


def test_snapshots_are_taken_for_the_long_lived_aggregates_only() -> None:
    assert set(ReintegrationApplication.snapshotting_intervals) == {
        Settlement,
        Household,
        Person,
        Relocation,
    }
