"""The event store takes a large save whole: thousands of events at once, or one event of
megabytes (a lottery's entrants), each chained like any other."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import date
from typing import Any
from uuid import uuid4

import psycopg

from domain.base import Actor, CommandContext, acting_as
from domain.housing import LOTTERY_ALGORITHM, AllocationRound, Entrant, RoundUnit
from domain.registration import register_household
from domain.registry import NewMember, RegisterHousehold
from infra import tamper_evidence
from infra.bootstrap import Container
from tests.integration.conftest import Stack, register_households
from tests.lottery import fresh
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
        container.audit_trail.events_table,
        container.audit_trail.chain_table,
        [],
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
            seed_hash="",
            algorithm_version=LOTTERY_ALGORITHM,
            entrants=[Entrant(uuid4(), uuid4(), "A", 1, 10.0, 3) for _ in range(6000)],
            units=[RoundUnit(uuid4(), 3) for _ in range(3000)],
            rule_set_code="great-return-housing",
            rule_set_version=1,
            offer_deadline_days=5,
            commitments=fresh().commitments,
            public_randomness=None,
            announcement_digest="sha256:" + "0" * 64,
        )
    assert finishes(lambda: app.save(announced))
    stored = app.recorder.select_events(announced.id)
    assert len(stored) == 1 and len(stored[0].state) > 1_000_000
    assert len(app.repository.get(announced.id).entrants) == 6000
    assert chain_verifies(stack)


def test_a_store_from_before_the_origin_index_gains_it_filled_from_the_log(stack: Stack) -> None:
    """The write side finds a settlement's households in an index the event store keeps in
    the same transaction as the events; a store that predates it gets it on start."""
    register_households(stack.container, 8)
    before = {
        code: stack.container.services.eligibility.households_in(code)
        for code in ("ZAN-002", "LAC-002", "SUS-001", "AGD-002")
    }
    assert sum(len(ids) for ids in before.values()) == 8
    origins = stack.container.application.recorder.origins_table_name  # type: ignore[attr-defined]
    with psycopg.connect(stack.settings.database_url or "", autocommit=True) as conn:
        conn.execute(f'DROP TABLE "{origins}"')
    restarted = Container(stack.settings)
    try:
        after = {code: restarted.services.eligibility.households_in(code) for code in before}
        assert after == before
        register_households(restarted, 4)  # and it is kept from then on, with the events
        assert len(restarted.services.eligibility.households_in("ZAN-002")) == 3
    finally:
        restarted.close()
