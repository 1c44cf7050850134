"""Read your own writes: whether a read model has applied everything up to a log position.

Every command answers with the log position of its last event (``Log-Position``). A read that
passes it as ``min_position`` waits, bounded, until the read model it reads has applied it:

- without Kafka a projection's stored position is the log's own (the next notification id to
  apply), so it has applied ``p`` once that is beyond ``p``;
- with Kafka, the relay records after each committed batch where every partition of the event
  topics ended (``<events>_published``, see :class:`infra.relay.PublishedPositions`). The first
  record at or after ``p`` names, for each partition, an offset up to which every message of
  the log up to ``p`` lies; the read model has applied ``p`` once its stored offsets reach all
  of them. That may wait for a few events after ``p`` in the same batch, never for fewer.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from psycopg import errors, sql

from projections.runner import EVENT_STORE_SOURCE


class NotYetApplied(Exception):
    """The read model had not applied the position within the wait."""

    def __init__(self, position: int, waited_s: float) -> None:
        super().__init__(
            f"the read model has not yet applied log position {position} (waited {waited_s:g} s)"
        )
        self.position = position


class TooManyWaiting(NotYetApplied):
    """More reads than :data:`MAX_WAITING` are already waiting: answered at once."""

    def __init__(self, position: int) -> None:
        Exception.__init__(
            self,
            "too many reads are waiting for the read models to catch up; retry after "
            "Retry-After seconds",
        )
        self.position = position


class BeyondTheLog(Exception):
    """A position no event has."""

    def __init__(self, position: int, head: int) -> None:
        super().__init__(f"log position {position} is beyond the end of the log ({head})")
        self.position = position


MAX_WAITING = 16
"""Reads of one process that may wait at once: each holds a worker thread (never a database
connection) while it sleeps between looks; more are answered 503 at once."""


class Freshness:
    def __init__(self, events_table: str, kafka: bool, wait_s: float = 5.0) -> None:
        self.events = sql.Identifier(events_table)
        self.published = sql.Identifier(f"{events_table}_published")
        self.kafka = kafka
        self.wait_s = wait_s
        self.waiting = threading.BoundedSemaphore(MAX_WAITING)

    def wait(
        self, connection: Callable[[], AbstractContextManager[Any]], schema: str, position: int
    ) -> None:
        """Return once the projection in ``schema`` has applied ``position``; raise
        :class:`NotYetApplied` after the wait (:class:`TooManyWaiting` at once when too many
        reads wait already), :class:`BeyondTheLog` for a position no event has. Each look
        borrows a connection (``connection()``) and gives it back before sleeping."""
        started = time.monotonic()
        with connection() as conn, conn.cursor() as cur:
            head = self._head(cur)
            if position > head:
                raise BeyondTheLog(position, head)
            if self.applied(cur, schema, position):
                return
        if not self.waiting.acquire(blocking=False):
            raise TooManyWaiting(position)
        try:
            delay = 0.01
            while True:
                waited = time.monotonic() - started
                if waited >= self.wait_s:
                    raise NotYetApplied(position, self.wait_s)
                time.sleep(min(delay, self.wait_s - waited))
                delay = min(delay * 2, 0.2)
                with connection() as conn, conn.cursor() as cur:
                    if self.applied(cur, schema, position):
                        return
        finally:
            self.waiting.release()

    def applied(self, cur: Any, schema: str, position: int) -> bool:
        offsets = self._offsets(cur, schema)
        if not self.kafka:
            return offsets.get((EVENT_STORE_SOURCE, 0), 0) > position
        try:
            cur.execute(
                sql.SQL(
                    "SELECT ends FROM {} WHERE position >= %s ORDER BY position LIMIT 1"
                ).format(self.published),
                (position,),
            )
        except errors.UndefinedTable:  # the relay has not published anything yet
            cur.connection.rollback()
            return False
        row = cur.fetchone()
        cur.connection.commit()
        if row is None:  # the relay has not published it yet
            return False
        ends = _values(row)[0]
        return all(
            offsets.get((topic, int(partition)), 0) >= end
            for topic, by_partition in ends.items()
            for partition, end in by_partition.items()
        )

    def _head(self, cur: Any) -> int:
        cur.execute(sql.SQL("SELECT max(notification_id) FROM {}").format(self.events))
        row = cur.fetchone()
        cur.connection.commit()
        return int(_values(row)[0] or 0) if row else 0

    def _offsets(self, cur: Any, schema: str) -> dict[tuple[str, int], int]:
        cur.execute(
            sql.SQL("SELECT source, partition, next_offset FROM {}.projection_offsets").format(
                sql.Identifier(schema)
            )
        )
        rows = cur.fetchall()
        cur.connection.commit()  # each look is a fresh snapshot
        return {(r[0], r[1]): r[2] for r in map(_values, rows)}


def _values(row: Any) -> tuple[Any, ...]:
    return tuple(row.values()) if isinstance(row, dict) else tuple(row)
