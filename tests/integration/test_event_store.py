"""The event store takes a large save whole: thousands of events at once, or one event of
megabytes (a lottery's entrants), each chained like any other."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import date
from typing import Any
from uuid import uuid4

from domain.base import Actor, CommandContext, acting_as
from domain.housing import LOTTERY_ALGORITHM, AllocationRound, Entrant, RoundUnit
from domain.registry import NewMember, RegisterHousehold, register_household
from infra import tamper_evidence
from tests.integration.conftest import Stack
from tests.support import random_fin

OPERATOR = CommandContext(Actor("clerk", "operator"), "large-saves", "large-saves")


def finishes(action: Callable[[], Any], within_s: float = 120) -> bool:
    """Whether ``action`` returned: a stalled insert never does (it waits for good)."""
    done = threading.Event()

    def run() -> None:
        action()
        done.set()

    threading.Thread(target=run, daemon=True).start()
    return done.wait(within_s)


def chain_verifies(stack: Stack) -> bool:
    container = stack.container
    report = tamper_evidence.verify(
        container.database_url,
        container.events_table,
        container.chain_table,
        b"",
        [],
        None,
        None,
        "test",
    )
    return bool(report.ok)


def test_a_save_of_thousands_of_events_is_stored_whole_and_chained(stack: Stack) -> None:
    app = stack.container.application
    before = app.recorder.max_notification_id() or 0
    aggregates: list[Any] = []
    with acting_as(OPERATOR):
        for i in range(1500):
            household, persons = register_household(
                RegisterHousehold(
                    [
                        NewMember(
                            random_fin(), "Ad", f"Soyad{i}", None, date(1980, 1, 1), "male", "head"
                        )
                    ],
                    "ZAN-002",
                    f"Bakı, yataqxana {i}",
                ),
                date.today(),
            )
            aggregates += [household, *persons]
    assert finishes(lambda: app.save(*aggregates))
    assert (app.recorder.max_notification_id() or 0) - before == 3000
    assert chain_verifies(stack)


def test_a_lottery_with_thousands_of_entrants_is_recorded(stack: Stack) -> None:
    app = stack.container.application
    with acting_as(OPERATOR):
        announced = AllocationRound(
            settlement_code="ZAN-002",
            round_number=1,
            seed_hash="sha256:" + "ab" * 32,
            algorithm_version=LOTTERY_ALGORITHM,
            entrants=[Entrant(uuid4(), uuid4(), "A", 1, 10.0, 3) for _ in range(6000)],
            units=[RoundUnit(uuid4(), 3) for _ in range(3000)],
            rule_set_code="great-return-housing",
            rule_set_version=1,
            offer_deadline_days=5,
        )
    assert finishes(lambda: app.save(announced))
    stored = app.recorder.select_events(announced.id)
    assert len(stored) == 1 and len(stored[0].state) > 1_000_000
    assert len(app.repository.get(announced.id).entrants) == 6000
    assert chain_verifies(stack)
