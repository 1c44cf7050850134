"""Events stored before the use cases moved out of ``infra/`` load with today's code.

An event is stored under its class's topic (``domain.registry:Person.Registered``), and values
inside it under the transcodings' names. ``tests/fixtures/events_before_layering.jsonl.gz``
holds every event of the Great Return demo and of one command of each other kind, as the event
store held them at commit ba3e60b (see ``make_events_before_layering.py`` beside it): every one
of the contract's 57 event classes. Moving a class, or renaming a transcoding, fails here.
"""

from __future__ import annotations

import gzip
import json
from collections import defaultdict
from pathlib import Path
from uuid import UUID

import pytest
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic, resolve_topic

from application import services as wiring
from application.services import Services
from application.store import LibraryEventStore, in_memory
from domain.eligibility import EligibilityDecision
from domain.housing import AllocationRound, LotteryCommitment
from domain.registry import Household
from infra.cel_language import CelLanguage
from infra.contract import EVENT_SCHEMAS

FIXTURE = Path(__file__).parents[2] / "fixtures" / "events_before_layering.jsonl.gz"
AGHALI = "ZAN-002"


def stored() -> list[StoredEvent]:
    with gzip.open(FIXTURE, "rt", encoding="utf-8") as lines:
        return [
            StoredEvent(
                originator_id=UUID(row["originator_id"]),
                originator_version=row["originator_version"],
                topic=row["topic"],
                state=row["state"].encode("utf-8"),
            )
            for row in map(json.loads, lines)
        ]


@pytest.fixture(scope="module")
def loaded() -> Services:
    app = in_memory()
    app.recorder.insert_events(stored())
    return wiring.build(LibraryEventStore(app), CelLanguage(), "great-return-housing")


ADDED_SINCE = {
    AllocationRound.ContributionRevealed,
    AllocationRound.Voided,
    LotteryCommitment.Used,
}
"""Event classes the contract gained after the fixture was made (issue 17's lottery)."""


def test_the_fixture_holds_every_event_class_of_the_contract() -> None:
    topics = {event.topic for event in stored()}
    assert topics == {get_topic(cls) for cls in EVENT_SCHEMAS if cls not in ADDED_SINCE}


def test_every_stored_event_decodes_to_the_class_its_topic_names(loaded: Services) -> None:
    store = loaded.store
    assert isinstance(store, LibraryEventStore)
    for event in stored():
        decoded = store.app.mapper.to_domain_event(event)
        assert type(decoded) is resolve_topic(event.topic)
        assert decoded.originator_version == event.originator_version


def test_every_aggregate_is_rebuilt_at_its_last_version(loaded: Services) -> None:
    last: dict[UUID, int] = defaultdict(int)
    for event in stored():
        last[event.originator_id] = max(last[event.originator_id], event.originator_version)
    for aggregate_id, version in last.items():
        aggregate = loaded.store.find(aggregate_id)
        assert aggregate is not None and aggregate.version == version


def test_the_old_decisions_and_lottery_re_run_to_what_they_recorded(loaded: Services) -> None:
    decisions = loaded.audit.decisions()
    assert len(decisions) >= 25
    reruns = list(loaded.audit.rerun_decisions(decisions))
    assert all(r.matches for r in reruns), [r.differences for r in reruns if not r.matches]
    assert loaded.audit.rerun_lottery(AGHALI, 1).matches


def test_an_old_case_reads_as_a_history_and_as_a_state(loaded: Services) -> None:
    households = loaded.store.households()
    assert len(households) == 26  # the demo's 24 families, the fixture's family and its split
    for household_id in households:
        history = loaded.audit.history(household_id)["events"]
        own = [e["event_type"] for e in history if e["aggregate_id"] == str(household_id)]
        assert own[0] == "Household.Registered"
        household = loaded.store.get(household_id, "household")
        assert isinstance(household, Household)
    decision = loaded.store.find(
        next(d for d in loaded.audit.decisions() if loaded.store.find(d).overridden_by)
    )
    assert isinstance(decision, EligibilityDecision) and decision.appeals
