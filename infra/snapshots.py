"""Snapshots of long-lived aggregates on PostgreSQL, and their check against the log.

A snapshot is a cache of state derived from the hash-chained events, not evidence: the
application role may insert rows, so a snapshot is trusted on load only at a version the log
holds (:class:`LogBoundSnapshotRecorder`: none ahead of the log, none of an aggregate that has
no such event), and ``reintegration audit verify`` recomputes every snapshot from the events
and reports each one that differs (:func:`check_snapshots`). See docs/adr/0017.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from uuid import UUID

from eventsourcing.application import project_aggregate
from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresAggregateRecorder, PostgresDatastore
from eventsourcing.utils import get_topic
from psycopg.sql import SQL, Identifier

from application.reports import AuditReport
from application.store import ReintegrationApplication
from infra.idempotency import CommandScopedDatastore

BATCH = 500  # snapshots read per query while checking


class LogBoundSnapshotRecorder(PostgresAggregateRecorder):
    """The library's recorder of the snapshots table, whose reads return a snapshot only when
    the events table holds the aggregate's event at the snapshot's version (a primary-key
    lookup beside the snapshot's own)."""

    def __init__(
        self,
        datastore: PostgresDatastore,
        *,
        events_table_name: str = "stored_snapshots",
        log_table_name: str = "stored_events",
    ) -> None:
        # Inside a keyed command, the snapshot is written in the command's transaction, as
        # its events are: it is rolled back with them (ADR 17).
        scoped: Any = CommandScopedDatastore(datastore)
        super().__init__(scoped, events_table_name=events_table_name)
        self.log_table_name = log_table_name
        self.select_events_statement = SQL(
            "SELECT * FROM {schema}.{table} s WHERE originator_id = %s AND EXISTS ("
            "SELECT 1 FROM {schema}.{log} e WHERE e.originator_id = s.originator_id "
            "AND e.originator_version = s.originator_version)"
        ).format(
            schema=Identifier(datastore.schema),
            table=Identifier(events_table_name),
            log=Identifier(log_table_name),
        )


def check_snapshots(app: ReintegrationApplication, report: AuditReport) -> None:
    """Recompute every stored snapshot from the events up to its version (never from another
    snapshot) and fail the report for each that differs or cannot be read. Memory: one
    aggregate at a time."""
    if app.snapshots is None:
        return
    checked = 0
    for stored in _stored_snapshots(app):
        checked += 1
        where = {"aggregate_id": str(stored.originator_id), "version": stored.originator_version}
        try:
            snapshot: Any = app.mapper.to_domain_event(stored)
            restored = snapshot.mutate(None)
        except Exception as exc:  # a row that cannot be read is a finding
            report.fail(problem="snapshot unreadable", error=type(exc).__name__, **where)
            continue
        replayed = project_aggregate(
            None,
            app.events.get(UUID(str(stored.originator_id)), lte=stored.originator_version),
        )
        if replayed is None or replayed.version != stored.originator_version:
            report.fail(problem="snapshot of a version the log does not hold", **where)
            continue
        # The kind of snapshot the application takes of this aggregate, as its save does: the
        # row's own topic is the row author's to choose (the library's plain Snapshot would
        # store tuples as lists, and a forged list would then compare equal to a tuple).
        expected = getattr(type(replayed), "Snapshot", None) or type(app).snapshot_class
        if type(snapshot) is not expected:
            report.fail(problem="snapshot of a kind the application does not take", **where)
            continue
        try:
            from_events = _state(app, expected, replayed)
        except Exception as exc:  # never the row's fault: said, and the audit goes on
            report.fail(problem="snapshot not checked", error=type(exc).__name__, **where)
            continue
        try:
            differs = _state(app, expected, restored) != from_events
        except Exception as exc:  # a restored state no snapshot could hold
            report.fail(problem="snapshot unreadable", error=type(exc).__name__, **where)
            continue
        if differs:
            report.fail(problem="snapshot differs from its events", **where)
    report.summary["snapshots checked"] = checked
    report.evidence.append(
        "every snapshot recomputed from the events up to its version and compared"
    )


def _state(app: ReintegrationApplication, snapshot_class: Any, aggregate: Any) -> tuple[str, str]:
    """An aggregate's class and state in one spelling: the state as a snapshot of it would
    store it, keys sorted. Two states are the same only if every value has the same type as well
    as the same value: the stored JSON writes 3 and 3.0, 1 and true, differently, where Python's
    ``==`` (and so a comparison of the objects) takes them for equal, and a forged value of
    another type can change what the rule engine decides."""
    state = snapshot_class.take(aggregate).state
    stored = json.loads(app.mapper.transcoder.encode(state))
    return get_topic(type(aggregate)), json.dumps(stored, sort_keys=True, ensure_ascii=False)


def _stored_snapshots(app: ReintegrationApplication) -> Iterator[StoredEvent]:
    assert app.snapshots is not None
    recorder: Any = app.snapshots.recorder
    statement = SQL(
        "SELECT originator_id, originator_version, topic, state FROM {}.{} "
        "WHERE (originator_id, originator_version) > (%s, %s) "
        "ORDER BY originator_id, originator_version LIMIT %s"
    ).format(Identifier(recorder.datastore.schema), Identifier(recorder.events_table_name))
    after: tuple[Any, int] = ("00000000-0000-0000-0000-000000000000", 0)
    while True:
        with recorder.datastore.get_connection() as conn, conn.cursor() as cur:
            cur.execute(statement, (*after, BATCH))
            rows = cur.fetchall()
        for row in rows:
            yield StoredEvent(
                row["originator_id"], row["originator_version"], row["topic"], bytes(row["state"])
            )
        if len(rows) < BATCH:
            return
        after = (rows[-1]["originator_id"], rows[-1]["originator_version"])
