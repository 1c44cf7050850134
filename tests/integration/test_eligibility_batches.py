"""Determinations in batches on PostgreSQL: decided by several worker processes they record what
one determination at a time records, and a batch whose save meets a concurrent decision leaves
nothing half-written (the others are saved, the household that raced is reported)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest

from application.demo import document_household
from domain import eligibility as el
from domain.base import acting_as
from domain.rules import content_hash
from infra import eligibility_workers
from infra.bootstrap import Container
from infra.config import Settings
from tests.integration.test_eligibility import OPERATOR, approved_v1, register


def documented(container: Container, sizes: list[int]) -> list[UUID]:
    households = [register(container, size=n) for n in sizes]
    with acting_as(OPERATOR):
        for i, household_id in enumerate(households):
            document_household(
                container.services,
                household_id,
                intention=("now", "undecided", None)[i % 3],
                housing_condition=("dormitory", "others_flat", "own_or_rented")[i % 3],
            )
    return households


def decisions(container: Container, household_id: UUID) -> int:
    return int(container.store.count_numbered(el.decision_id, [household_id])[household_id])


def test_households_decided_by_two_workers_record_what_one_at_a_time_records(
    container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    approved_v1(container)
    households = documented(container, [1, 2, 3, 4, 5, 6])
    monkeypatch.setattr(eligibility_workers, "CHUNK", 2)  # three chunks over two workers
    with acting_as(OPERATOR):
        summary = eligibility_workers.determine_in_workers(
            container.settings, households, 2, reason="settlement"
        )
    assert (summary.decided, summary.unchanged, summary.failed) == (6, 0, [])
    service = container.services.eligibility
    in_force = service.in_force()
    for household_id in households:
        decision = service.current_decision(household_id)
        assert decision is not None and decision.sequence == 1
        facts = service.facts(household_id)
        assert decision.facts_hash == content_hash(facts)
        assert decision.rule_set_id == in_force.id and decision.rule_set_version == 1
        assert decision.result == service.engine(in_force).determine(facts).result
        assert decision.determined_by == OPERATOR.actor.user_id
        (determined,) = [
            item.event
            for item in container.store.case_events([decision.id])
            if isinstance(item.event, el.EligibilityDecision.Determined)
        ]
        assert determined.correlation_id == OPERATOR.correlation_id
        assert determined.reason == "settlement"
        # One at a time, the same household is left unchanged: same version, same facts.
        with acting_as(OPERATOR):
            assert service.determine(household_id).status == "unchanged"
    assert summary.results == {
        result: sum(1 for h in households if service.current_decision(h).result == result)  # type: ignore[union-attr]
        for result in summary.results
    }


def test_a_batch_that_meets_a_concurrent_decision_saves_the_others_and_reports_that_one(
    container: Container, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    approved_v1(container)
    first, raced, last = documented(container, [2, 3, 4])
    service = container.services.eligibility
    other = Container(Settings(database_url=database_url))
    try:
        original = service._decide

        def decided_meanwhile(household_id: UUID, *args: Any, **kwargs: Any) -> Any:
            outcome = original(household_id, *args, **kwargs)
            if household_id == raced:  # someone else decides it between our read and our save
                other.services.eligibility.determine(raced, reason="by hand")
            return outcome

        monkeypatch.setattr(service, "_decide", decided_meanwhile)
        with acting_as(OPERATOR):
            summary = service.determine_many([first, raced, last])
    finally:
        other.close()
    assert summary.decided == 2 and [h for h, _ in summary.failed] == [raced]
    assert [decisions(container, h) for h in (first, raced, last)] == [1, 1, 1]
    kept = service.current_decision(raced)
    assert kept is not None and kept.reason == "by hand"
