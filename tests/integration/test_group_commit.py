"""Concurrent commands are written in one transaction (group commit, ADR 18): a conflict fails
its own command only, a group that breaks stores none of its commands and tells every waiter,
and the log stays in commit order with its chain intact."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from uuid import UUID

import psycopg

from application.ports import ConcurrentUpdate
from domain.base import Actor, CommandContext, acting_as
from domain.registration import register_household
from domain.registry import NewMember, RegisterHousehold
from infra import idempotency, tamper_evidence
from infra.bootstrap import Container
from tests.integration.conftest import Stack
from tests.integration.test_database_roles import Roles, roles, service  # noqa: F401
from tests.support import random_fin

OPERATOR = CommandContext(Actor("clerk", "operator"), "group-commit", "group-commit")


@dataclass
class Outcome:
    """What one command was told: the log positions of its events, or its error."""

    aggregates: list[UUID]
    first: int | None = None
    last: int | None = None
    error: BaseException | None = None


def household(fin: str | None = None) -> list[Any]:
    """A new household of one person: the household and the person, to save in one command."""
    with acting_as(OPERATOR):
        registered, persons = register_household(
            RegisterHousehold(
                [
                    NewMember(
                        fin or random_fin(), "Ad", "Soyad", None, date(1980, 1, 1), "male", "head"
                    )
                ],
                "ZAN-002",
                "Bakı, yataqxana 4",
            ),
            date.today(),
        )
    return [registered, *persons]


def command(container: Container, aggregates: list[Any], outcome: Outcome) -> None:
    """Save as a command does over HTTP: inside a recording of its log positions."""
    try:
        with idempotency.recording() as recorded, acting_as(OPERATOR):
            container.store.save(*aggregates)
        outcome.first, outcome.last = recorded.first, recorded.last
    except BaseException as exc:
        outcome.error = exc


@dataclass
class Groups:
    """The sizes of the groups committed, and a fault to inject into one of them."""

    sizes: list[int] = field(default_factory=list)
    hold_first_until: int = 0
    fault: Callable[[psycopg.Connection[Any]], None] | None = None
    fault_in_group: int = 0


@contextmanager
def watched(container: Container, groups: Groups) -> Iterator[Groups]:
    recorder: Any = container.application.recorder

    def before_commit(conn: psycopg.Connection[Any], size: int) -> None:
        groups.sizes.append(size)
        if len(groups.sizes) == 1 and groups.hold_first_until:
            deadline = time.monotonic() + 60
            while recorder.group_committer.waiting() < groups.hold_first_until:
                assert time.monotonic() < deadline, "the saves never queued"
                time.sleep(0.005)
        if groups.fault is not None and len(groups.sizes) == groups.fault_in_group:
            groups.fault(conn)

    recorder.before_commit = before_commit
    try:
        yield groups
    finally:
        del recorder.before_commit


def in_one_group(container: Container, commands: list[list[Any]], groups: Groups) -> list[Outcome]:
    """Run ``commands`` concurrently so that they are written as one group: a first save is
    held before its commit until all of them have queued behind it."""
    groups.hold_first_until = len(commands)
    outcomes = [Outcome([a.id for a in aggregates]) for aggregates in commands]
    with watched(container, groups):
        blocker = threading.Thread(target=command, args=(container, household(), Outcome([])))
        blocker.start()
        deadline = time.monotonic() + 60
        while not groups.sizes:
            assert time.monotonic() < deadline
            time.sleep(0.005)
        threads = [
            threading.Thread(target=command, args=(container, aggregates, outcome))
            for aggregates, outcome in zip(commands, outcomes, strict=True)
        ]
        for thread in threads:
            thread.start()
        for thread in [blocker, *threads]:
            thread.join(120)
    return outcomes


def stored(container: Container, ids: list[UUID]) -> list[tuple[int, UUID]]:
    """(notification id, aggregate id) of every stored event of these aggregates."""
    with psycopg.connect(container.database_url) as conn:
        rows = conn.execute(
            "SELECT notification_id, originator_id FROM reintegration_events "
            "WHERE originator_id = ANY(%s) ORDER BY notification_id",
            (ids,),
        ).fetchall()
    return [(r[0], r[1]) for r in rows]


def told_the_truth(container: Container, outcome: Outcome) -> bool:
    """A command told "stored at positions first..last" has exactly its events there; one
    told it failed has nothing stored."""
    found = stored(container, outcome.aggregates)
    if outcome.error is not None:
        return found == []
    assert outcome.first is not None and outcome.last is not None
    positions = [position for position, _ in found]
    return positions == list(range(outcome.first, outcome.last + 1)) and {
        aggregate for _, aggregate in found
    } == set(outcome.aggregates)


def chain_verifies(container: Container) -> bool:
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


def test_concurrent_registrations_of_one_person_in_one_group_one_wins_and_the_others_commit(
    stack: Stack,
) -> None:
    container = stack.container
    fin = random_fin()
    conflicting = [household(fin) for _ in range(4)]
    others = [household() for _ in range(6)]
    groups = Groups()
    outcomes = in_one_group(container, conflicting + others, groups)
    assert groups.sizes[1] == 10  # written in one transaction
    winners = [o for o in outcomes[:4] if o.error is None]
    assert len(winners) == 1
    assert all(isinstance(o.error, ConcurrentUpdate) for o in outcomes[:4] if o is not winners[0])
    assert all(o.error is None for o in outcomes[4:])
    assert all(told_the_truth(container, o) for o in [*winners, *outcomes[4:]])
    losers = [o for o in outcomes[:4] if o.error is not None]
    assert all(stored(container, o.aggregates[:1]) == [] for o in losers)  # nor their household
    assert chain_verifies(container)


def test_a_group_that_fails_before_its_commit_stores_none_of_its_commands_and_tells_each(
    stack: Stack,
) -> None:
    container = stack.container

    def statement_error(conn: psycopg.Connection[Any]) -> None:
        conn.execute("SELECT 1 / 0")

    groups = Groups(fault=statement_error, fault_in_group=2)
    outcomes = in_one_group(container, [household() for _ in range(8)], groups)
    assert groups.sizes[1] == 8
    assert all(o.error is not None for o in outcomes)
    assert all(stored(container, o.aggregates) == [] for o in outcomes)
    aggregates = household()
    outcome = Outcome([a.id for a in aggregates])
    command(container, aggregates, outcome)  # the store goes on
    assert outcome.error is None and told_the_truth(container, outcome)
    assert chain_verifies(container)


def test_a_group_whose_connection_is_killed_before_its_commit_is_retried_whole_and_told_truly(
    stack: Stack,
) -> None:
    container = stack.container
    killed: list[int] = []

    def terminate(conn: psycopg.Connection[Any]) -> None:
        pid = conn.info.backend_pid
        with psycopg.connect(container.database_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        killed.append(pid)

    groups = Groups(fault=terminate, fault_in_group=2)
    outcomes = in_one_group(container, [household() for _ in range(8)], groups)
    assert killed and groups.sizes[1] == 8
    # The connection died before the commit: nothing of the group was stored, and each
    # command was written again (the library's retry on a lost connection) and told where.
    assert all(o.error is None for o in outcomes)
    assert all(told_the_truth(container, o) for o in outcomes)
    assert chain_verifies(container)


def test_many_concurrent_groups_commit_in_notification_order_and_the_chain_verifies(
    stack: Stack,
) -> None:
    container = stack.container
    groups = Groups()
    outcomes: list[Outcome] = []
    lock = threading.Lock()

    def client() -> None:
        for _ in range(15):
            aggregates = household()
            outcome = Outcome([a.id for a in aggregates])
            command(container, aggregates, outcome)
            with lock:
                outcomes.append(outcome)

    with watched(container, groups):
        threads = [threading.Thread(target=client) for _ in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(300)
    assert len(outcomes) == 240 and all(o.error is None for o in outcomes)
    assert max(groups.sizes) > 1  # groups formed
    assert all(told_the_truth(container, o) for o in outcomes)
    with psycopg.connect(container.database_url) as conn:
        transactions = [
            int(r[0])
            for r in conn.execute(
                "SELECT xmin::text FROM reintegration_events ORDER BY notification_id"
            )
        ]
    # Each transaction's events are one run of positions, and the transactions follow each
    # other in the order they took the table lock (a transaction id is given at its first
    # insert, made under the lock): the log's order is the commit order.
    assert transactions == sorted(transactions)
    assert len(set(transactions)) == len(groups.sizes)
    assert chain_verifies(container)


def test_the_application_role_commits_groups_with_a_conflict_through_the_owners_lock(
    roles: Roles,  # noqa: F811
    service: Container,  # noqa: F811
) -> None:
    assert service.application.recorder.lock_through_function  # type: ignore[attr-defined]
    fin = random_fin()
    groups = Groups()
    outcomes = in_one_group(service, [household(fin), household(fin), household()], groups)
    assert groups.sizes[1] == 3
    assert [o.error is None for o in outcomes].count(True) == 2
    loser = next(o for o in outcomes if o.error is not None)
    assert isinstance(loser.error, ConcurrentUpdate)
    assert stored(service, loser.aggregates[:1]) == []
    assert all(told_the_truth(service, o) for o in outcomes if o is not loser)
    report = service.audit_trail.verify("auditor", require_keys=False)
    assert report.ok, report.to_text()
