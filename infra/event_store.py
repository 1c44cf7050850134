"""The event store port on PostgreSQL: the library's Application for saving and loading one
aggregate, and SQL for the reads that span many (one query where the library would make one
per aggregate)."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any
from uuid import UUID

import structlog
from eventsourcing.application import project_aggregate
from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent
from eventsourcing.utils import retry
from psycopg.sql import SQL, Composable, Identifier

from application.ports import CaseEvent
from application.store import LibraryEventStore, ReintegrationApplication
from domain.base import NotFound

log = structlog.get_logger(__name__)


class PostgresEventStore(LibraryEventStore):
    def __init__(self, app: ReintegrationApplication) -> None:
        super().__init__(app)
        recorder: Any = app.recorder
        self.recorder = recorder
        self.events = Identifier(recorder.events_table_name)
        self.chain = Identifier(recorder.chain_table_name)
        self.origins = Identifier(recorder.origins_table_name)
        self.find_statement: Composable | None = None
        if app.snapshots is not None:
            snapshots: Any = app.snapshots.recorder
            self.find_statement = SQL(
                "WITH s AS (SELECT s.originator_id, s.originator_version, s.topic, s.state "
                "FROM {snapshots} s WHERE s.originator_id = %s AND EXISTS ("
                "SELECT 1 FROM {events} e WHERE e.originator_id = s.originator_id "
                "AND e.originator_version = s.originator_version) "
                "ORDER BY s.originator_version DESC LIMIT 1) "
                "SELECT true AS snapshot, * FROM s UNION ALL "
                "SELECT false, originator_id, originator_version, topic, state FROM {events} "
                "WHERE originator_id = %s "
                "AND originator_version > coalesce((SELECT originator_version FROM s), 0) "
                "ORDER BY snapshot DESC, originator_version"
            ).format(snapshots=Identifier(snapshots.events_table_name), events=self.events)

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)  # as the library's reads
    def _rows(self, statement: Composable, params: tuple[Any, ...]) -> list[Any]:
        with self.recorder.datastore.get_connection() as conn, conn.cursor() as cur:
            cur.execute(statement, params)
            rows: list[Any] = cur.fetchall()
            return rows

    def _event(self, row: Any) -> Any:
        return self.app.mapper.to_domain_event(
            StoredEvent(
                row["originator_id"], row["originator_version"], row["topic"], bytes(row["state"])
            )
        )

    def existing(self, ids: Iterable[UUID]) -> set[UUID]:
        wanted = list(ids)
        if not wanted:
            return set()
        rows = self._rows(
            SQL(
                "SELECT originator_id FROM {} WHERE originator_id = ANY(%s) "
                "AND originator_version = 1"
            ).format(self.events),
            (wanted,),
        )
        return {r["originator_id"] for r in rows}

    def get(self, aggregate_id: UUID, kind: str) -> Any:
        found = self.find(aggregate_id)
        if found is None:
            raise NotFound(kind, aggregate_id)
        return found

    def find(self, aggregate_id: UUID) -> Any | None:
        """One aggregate in one query: its latest snapshot the log backs (as
        infra/snapshots.py's recorder trusts them) and the events after it; the library's
        repository asks the snapshot table and the events table in turn, a round trip more on
        every load, also of aggregates never snapshotted (decisions)."""
        if self.find_statement is None:
            return super().find(aggregate_id)
        rows = self._rows(self.find_statement, (aggregate_id, aggregate_id))
        if not rows or not rows[0]["snapshot"]:
            return self._replayed(None, rows)
        try:
            return self._replayed(self._event(rows[0]).mutate(None), rows[1:])
        except Exception as exc:  # a cache: replayed from its events instead (ADR 17)
            log.warning("snapshot not used", error=type(exc).__name__)
        return project_aggregate(None, self.app.events.get(aggregate_id))

    def _replayed(self, aggregate: Any, rows: list[Any]) -> Any:
        for row in rows:
            aggregate = self._event(row).mutate(aggregate)
        return aggregate

    def load_many(self, ids: Iterable[UUID]) -> dict[UUID, Any]:
        """Many aggregates in one query (batch work: the determinations of a settlement); those
        with a snapshot from it (:meth:`_snapshots`) and the events after it, in a second."""
        wanted = list(ids)
        if not wanted:
            return {}
        aggregates: dict[UUID, Any] = self._snapshots(wanted)
        unsnapshotted = [i for i in wanted if i not in aggregates]
        rows = []
        if unsnapshotted:
            rows = self._rows(
                SQL(
                    "SELECT originator_id, originator_version, topic, state FROM {} "
                    "WHERE originator_id = ANY(%s) ORDER BY originator_id, originator_version"
                ).format(self.events),
                (unsnapshotted,),
            )
        if aggregates:  # an index range scan each, from the snapshot's version
            rows += self._rows(
                SQL(
                    "SELECT e.originator_id, e.originator_version, e.topic, e.state "
                    "FROM unnest(%s::uuid[], %s::bigint[]) AS w(id, after) CROSS JOIN LATERAL ("
                    "SELECT * FROM {} e WHERE e.originator_id = w.id "
                    "AND e.originator_version > w.after) e "
                    "ORDER BY e.originator_id, e.originator_version"
                ).format(self.events),
                (list(aggregates), [a.version for a in aggregates.values()]),
            )
        snapshotted = set(aggregates)
        unusable: set[UUID] = set()
        for row in rows:
            event = self._event(row)
            aggregate_id = event.originator_id
            if aggregate_id in unusable:
                continue
            try:
                aggregates[aggregate_id] = event.mutate(aggregates.get(aggregate_id))
            except Exception as exc:  # a snapshot later events do not fit: see find()
                if aggregate_id not in snapshotted:
                    raise
                log.warning("snapshot not used", error=type(exc).__name__)
                unusable.add(aggregate_id)
        for aggregate_id in unusable:
            aggregates[aggregate_id] = project_aggregate(None, self.app.events.get(aggregate_id))
        return aggregates

    def _snapshots(self, ids: list[UUID]) -> dict[UUID, Any]:
        """The latest snapshot of each of these aggregates that has one, restored, when the log
        holds its version (as infra/snapshots.py's recorder trusts them)."""
        if self.app.snapshots is None:
            return {}
        snapshots: Any = self.app.snapshots.recorder
        rows = self._rows(
            SQL(
                "SELECT DISTINCT ON (s.originator_id) s.originator_id, s.originator_version, "
                "s.topic, s.state FROM {snapshots} s WHERE s.originator_id = ANY(%s) AND EXISTS ("
                "SELECT 1 FROM {events} e WHERE e.originator_id = s.originator_id "
                "AND e.originator_version = s.originator_version) "
                "ORDER BY s.originator_id, s.originator_version DESC"
            ).format(snapshots=Identifier(snapshots.events_table_name), events=self.events),
            (ids,),
        )
        restored = {}
        for row in rows:
            try:
                restored[row["originator_id"]] = self._event(row).mutate(None)
            except Exception as exc:  # a cache: replayed from its events instead (ADR 17)
                log.warning("snapshot not used", error=type(exc).__name__)
        return restored

    def count_numbered(
        self, id_for: Callable[[Any, int], UUID], keys: Sequence[Hashable], window: int = 4
    ) -> dict[Any, int]:
        """One query for the usual few per key; keys with more are probed on one by one."""
        if not keys:
            return {}
        candidates = {id_for(key, n): (key, n) for key in keys for n in range(1, window + 1)}
        found = {candidates[i] for i in self.existing(candidates)}
        counts = {}
        for key in keys:
            n = 0
            while (key, n + 1) in found:
                n += 1
            if n == window:  # rare: more than the window
                while self.exists(id_for(key, n + 1)):
                    n += 1
            counts[key] = n
        return counts

    def first_events(self, ids: Iterable[UUID]) -> dict[UUID, Any]:
        wanted = list(ids)
        if not wanted:
            return {}
        rows = self._rows(
            SQL(
                "SELECT originator_id, originator_version, topic, state FROM {} "
                "WHERE originator_id = ANY(%s) AND originator_version = 1"
            ).format(self.events),
            (wanted,),
        )
        return {r["originator_id"]: self._event(r) for r in rows}

    def households_originating_from(self, settlement_code: str) -> list[UUID]:
        """From the index the event store keeps in the same transaction as each registration
        (infra/chain.py): never behind the log."""
        rows = self._rows(
            SQL("SELECT household_id FROM {} WHERE origin_settlement_code = %s").format(
                self.origins
            ),
            (settlement_code,),
        )
        return [r["household_id"] for r in rows]

    def households(self) -> list[UUID]:
        rows = self._rows(SQL("SELECT household_id FROM {}").format(self.origins), ())
        return [r["household_id"] for r in rows]

    def case_events(self, ids: Iterable[UUID]) -> list[CaseEvent]:
        wanted = list(ids)
        if not wanted:
            return []
        rows = self._rows(
            SQL(
                "SELECT e.notification_id, e.originator_id, e.originator_version, e.topic, "
                "e.state, c.chain_hash FROM {events} e LEFT JOIN {chain} c USING (notification_id) "
                "WHERE e.originator_id = ANY(%s) ORDER BY e.notification_id"
            ).format(events=self.events, chain=self.chain),
            (wanted,),
        )
        return [
            CaseEvent(
                r["notification_id"],
                self._event(r),
                bytes(r["chain_hash"]) if r["chain_hash"] is not None else None,
            )
            for r in rows
        ]

    def analyze(self) -> None:
        """Fresh planner statistics after a bulk load: without them PostgreSQL can take a
        freshly filled events table for a handful of aggregates and plan every lookup of one
        aggregate as a parallel scan (measured ten times slower)."""
        with self.recorder.datastore.get_connection() as conn:
            conn.execute(SQL("ANALYZE {}").format(self.events))
