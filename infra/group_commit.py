"""Group commit: the saves of concurrent commands written in one database transaction.

Each save must take the event store's table lock (commit order = notification order, which the
hash chain and the Merkle tree rely on), so saves committed one by one are serialised by that
lock and each pays a whole transaction (lock, insert, chain, commit, and the wait for the disk).
Here a thread that saves queues its request. When no save is being written, it writes itself
(the leader); otherwise it waits. The leader takes every queued request (up to a cap), writes
them in one transaction through ``write`` (see :meth:`infra.chain.ChainedApplicationRecorder.
write_group`), and hands each waiter its own outcome: the notification ids of its events, or
the error of its own command (a concurrent update), or the error of the whole group (nothing of
it committed). Then the oldest request queued meanwhile leads the next group, so a group forms
from the requests that arrive while the one before it is being written, without any waiting on
purpose: one thread alone writes as before, with no hand-over.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from eventsourcing.persistence import StoredEvent

Outcome = list[int] | Exception
"""A command's outcome in its group: its notification ids, or the error of that command alone."""

Write = Callable[[list[Sequence[StoredEvent]]], list[Outcome]]
"""Writes the commands of one group in one transaction and commits; raises when nothing of the
group was committed."""

MAX_COMMANDS = 64
"""Commands in one group at most."""
MAX_BYTES = 1024 * 1024
"""Bytes of event state in one group at most (a larger save goes alone)."""


@dataclass(eq=False)
class _Request:
    events: Sequence[StoredEvent]
    size: int
    wake: threading.Event = field(default_factory=threading.Event)
    lead: bool = False
    ids: list[int] | None = None
    error: BaseException | None = None

    def outcome(self) -> list[int]:
        if self.error is not None:
            raise self.error
        assert self.ids is not None
        return self.ids


class GroupCommitter:
    """Leader/follower group commit of event saves (one instance per recorder)."""

    def __init__(
        self, write: Write, *, max_commands: int = MAX_COMMANDS, max_bytes: int = MAX_BYTES
    ) -> None:
        self._write = write
        self.max_commands = max_commands
        self.max_bytes = max_bytes
        self._mutex = threading.Lock()
        self._queue: deque[_Request] = deque()
        self._leading = False

    def save(self, events: Sequence[StoredEvent]) -> list[int]:
        """Write ``events`` (one command's) in the next group; their notification ids once
        committed. Raises the command's own error (the library's ``IntegrityError`` for a
        concurrent update), or the group's (nothing of the command was committed)."""
        request = _Request(events, sum(len(e.state) for e in events))
        with self._mutex:
            self._queue.append(request)
            request.lead = not self._leading
            self._leading = True
        if not request.lead:
            request.wake.wait()
        if request.lead:
            self._lead()
        return request.outcome()

    def waiting(self) -> int:
        """Requests queued for a group not yet taken (tests use it to form a group)."""
        with self._mutex:
            return len(self._queue)

    def _take(self) -> list[_Request]:
        """The oldest requests up to the caps (at least one: the leader's own, at the front)."""
        with self._mutex:
            group = [self._queue.popleft()]
            size = group[0].size
            while self._queue and len(group) < self.max_commands:
                following = self._queue[0]
                if size + following.size > self.max_bytes:
                    break
                group.append(self._queue.popleft())
                size += following.size
            return group

    def _lead(self) -> None:
        group = self._take()
        try:
            outcomes = self._write([request.events for request in group])
            for request, outcome in zip(group, outcomes, strict=True):
                if isinstance(outcome, Exception):
                    request.error = outcome
                else:
                    request.ids = outcome
        except BaseException as exc:  # nothing of the group committed: every command fails
            for request in group:
                request.error = _copy(exc)
        finally:
            with self._mutex:
                following = self._queue[0] if self._queue else None
                if following is None:
                    self._leading = False
                else:
                    following.lead = True
            for request in group:
                request.wake.set()
            if following is not None:
                following.wake.set()


def _copy(exc: BaseException) -> BaseException:
    """An error of its own for each waiter (one exception raised in many threads would share
    its traceback), caused by the group's."""
    try:
        copied = type(exc)(*exc.args)
    except Exception:
        return exc
    copied.__cause__ = exc
    return copied
