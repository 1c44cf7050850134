"""A case's history is read in two queries as a rule (the household with every aggregate whose
id derives from it, then its people): it must list exactly what the reading it replaced listed
(the household, then each kind of numbered aggregate counted one query at a time)."""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

import pytest

from application.audit import WINDOW, Audit
from application.eligibility import PRE_RETURN_SURVEY
from application.ports import CaseEvent, EventStore
from application.services import Services
from domain import eligibility, surveys
from domain.base import NotFound, acting_as
from domain.reintegration import reintegration_id
from domain.relocation import relocation_id
from tests.unit.application.conftest import OPERATOR, approved_rule_set, eligible_family


def previous_case_events(store: EventStore, household_id: UUID) -> list[CaseEvent]:
    """The reading before the two-query one, kept here as the reference."""
    household_events = store.case_events([household_id])
    if not household_events:
        raise NotFound("household", household_id)
    people: list[UUID] = []
    for item in household_events:
        for member in getattr(item.event, "members", []) or []:
            if member.person_id not in people:
                people.append(member.person_id)

    def numbered(id_for: Callable[[UUID, int], UUID]) -> list[UUID]:
        count = store.count_numbered(id_for, [household_id])[household_id]
        return [id_for(household_id, n) for n in range(1, count + 1)]

    others = [
        *people,
        *numbered(lambda h, n: surveys.response_id(h, PRE_RETURN_SURVEY, n)),
        *numbered(eligibility.decision_id),
        relocation_id(household_id),
        reintegration_id(household_id),
    ]
    return sorted(household_events + store.case_events(others), key=lambda i: i.position)


class PreviousAudit(Audit):
    def case_events(self, household_id: UUID) -> list[CaseEvent]:
        return previous_case_events(self.store, household_id)


def previous_history(services: Services, household_id: UUID) -> dict[str, object]:
    audit = services.audit
    previous = PreviousAudit(audit.store, audit.language, audit.event_type)
    return previous.history(household_id)


def test_a_case_history_lists_exactly_what_the_previous_reading_listed(
    services: Services,
) -> None:
    approved_rule_set(services)
    household_id = eligible_family(services, size=4)
    other = eligible_family(services, size=2)
    assert services.audit.history(household_id) == previous_history(services, household_id)
    assert services.audit.history(other) == previous_history(services, other)


def test_a_case_with_more_decisions_than_the_first_read_asks_for_lists_every_one(
    services: Services,
) -> None:
    approved_rule_set(services)
    household_id = eligible_family(services)
    with acting_as(OPERATOR):
        for n in range(WINDOW + 2):
            condition = ("others_flat", "dormitory")[n % 2]
            services.registry.record_housing_condition(household_id, condition, None)
            services.eligibility.determine(household_id)
    history = services.audit.history(household_id)
    determined = [
        e for e in history["events"] if e["event_type"] == "EligibilityDecision.Determined"
    ]
    assert len(determined) == WINDOW + 3
    assert history == previous_history(services, household_id)


def test_the_history_of_an_unknown_household_is_not_found(services: Services) -> None:
    approved_rule_set(services)
    eligible_family(services)
    with pytest.raises(NotFound):
        services.audit.history(UUID(int=7))
