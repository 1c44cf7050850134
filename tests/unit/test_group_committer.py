"""The group committer's hand-over, on a write function of plain Python (the real writes are
tested on PostgreSQL in tests/integration/test_group_commit.py)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from uuid import uuid4

import pytest
from eventsourcing.persistence import IntegrityError, OperationalError, StoredEvent

from infra.group_commit import GroupCommitter, Outcome


def events(n: int = 1, size: int = 10) -> list[StoredEvent]:
    return [StoredEvent(uuid4(), 1, "topic", b"x" * size) for _ in range(n)]


class Log:
    """A write function numbering events in order; one group may be held until released."""

    def __init__(self) -> None:
        self.next = 1
        self.groups: list[int] = []
        self.hold = threading.Event()
        self.held = threading.Event()
        self.hold.set()
        self.conflict: set[int] = set()  # commands (by size of state) to refuse
        self.fail: BaseException | None = None

    def write(self, commands: list[Sequence[StoredEvent]]) -> list[Outcome]:
        self.groups.append(len(commands))
        self.held.set()
        self.hold.wait(10)
        if self.fail is not None:
            raise self.fail
        outcomes: list[Outcome] = []
        for command in commands:
            if len(command[0].state) in self.conflict:
                outcomes.append(IntegrityError("version taken"))
                continue
            outcomes.append(list(range(self.next, self.next + len(command))))
            self.next += len(command)
        return outcomes


def run_queued_behind_a_held_group(
    committer: GroupCommitter, log: Log, commands: list[list[StoredEvent]]
) -> list[list[int] | BaseException]:
    results: list[list[int] | BaseException] = [[] for _ in commands]

    def save(i: int | None, command: list[StoredEvent]) -> None:
        try:
            result: list[int] | BaseException = committer.save(command)
        except BaseException as exc:
            result = exc
        if i is not None:
            results[i] = result

    log.hold.clear()
    first = threading.Thread(target=save, args=(None, events()))
    first.start()
    assert log.held.wait(10)
    threads = [threading.Thread(target=save, args=(i, c)) for i, c in enumerate(commands)]
    for thread in threads:
        thread.start()
    while committer.waiting() < len(commands):
        threading.Event().wait(0.001)
    log.hold.set()
    for thread in [first, *threads]:
        thread.join(10)
    return results


def test_one_thread_alone_writes_each_save_itself_in_a_group_of_one() -> None:
    log = Log()
    committer = GroupCommitter(log.write)
    assert committer.save(events(2)) == [1, 2]
    assert committer.save(events(1)) == [3]
    assert log.groups == [1, 1]


def test_saves_queued_while_a_group_is_written_form_the_next_group_each_told_its_own_ids() -> None:
    log = Log()
    committer = GroupCommitter(log.write)
    results = run_queued_behind_a_held_group(committer, log, [events(2) for _ in range(5)])
    assert log.groups == [1, 5]
    assert sorted(i for r in results if isinstance(r, list) for i in r) == list(range(2, 12))
    assert all(isinstance(r, list) and len(r) == 2 and r[1] == r[0] + 1 for r in results)


def test_a_conflicting_command_fails_alone() -> None:
    log = Log()
    log.conflict = {7}
    committer = GroupCommitter(log.write)
    results = run_queued_behind_a_held_group(committer, log, [events(1), events(1, 7), events(1)])
    assert isinstance(results[1], IntegrityError)
    assert isinstance(results[0], list) and isinstance(results[2], list)


def test_a_group_that_fails_fails_every_command_each_with_an_error_of_its_own() -> None:
    log = Log()
    committer = GroupCommitter(log.write)
    log.fail = OperationalError("connection lost")
    results = run_queued_behind_a_held_group(committer, log, [events() for _ in range(3)])
    assert all(isinstance(r, OperationalError) for r in results)
    assert len({id(r) for r in results}) == 3
    log.fail = None
    assert committer.save(events()) == [1]  # the next save leads a group again


def test_groups_are_capped_by_commands_and_by_bytes() -> None:
    log = Log()
    committer = GroupCommitter(log.write, max_commands=3, max_bytes=100)
    run_queued_behind_a_held_group(committer, log, [events() for _ in range(7)])
    assert log.groups == [1, 3, 3, 1]
    log.groups.clear()
    run_queued_behind_a_held_group(committer, log, [events(1, 60) for _ in range(3)])
    assert log.groups == [1, 1, 1, 1]


@pytest.mark.parametrize("failure", [KeyboardInterrupt(), RuntimeError("bug")])
def test_a_leader_interrupted_still_hands_on_and_wakes_its_group(failure: BaseException) -> None:
    log = Log()
    committer = GroupCommitter(log.write)
    log.fail = failure
    results = run_queued_behind_a_held_group(committer, log, [events() for _ in range(2)])
    assert all(isinstance(r, type(failure)) for r in results)
