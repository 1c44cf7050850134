"""Operating projections: status and lag, dead letters (list, replay, discard, and the release
of the events parked behind them), and rebuilds with an atomic swap.

Kept whole for now: status, dead letters and rebuilds share the runner's tables and locks. The
next split is the rebuild and cross-check (schema swap, comparison) into their own module."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
import structlog
from psycopg import Cursor, sql
from psycopg.rows import dict_row, tuple_row

from application.reports import AuditReport
from projections import metrics
from projections.failures import describe
from projections.runner import (
    DEAD_LETTER_PENDING,
    EVENT_STORE_SOURCE,
    DeadLetter,
    Delivery,
    Projection,
    apply_one,
    connect,
    log_dead_letter,
    prepare,
    record_dead_letter,
)

log = structlog.get_logger(__name__)

REBUILD_SUFFIX = "__rebuild"


@dataclass(frozen=True)
class PartitionStatus:
    source: str
    partition: int
    position: int  # next offset to read (Kafka) or next notification id (event store)
    end: int | None  # end offset, or max notification id + 1
    lag: int | None


@dataclass(frozen=True)
class ProjectionStatus:
    name: str
    schema: str
    exists: bool
    partitions: list[PartitionStatus]
    dead_letters_pending: int
    rebuild_in_progress: bool
    parked: int = 0  # events waiting behind a pending dead letter of their key

    @property
    def total_lag(self) -> int | None:
        lags = [p.lag for p in self.partitions]
        return None if any(lag is None for lag in lags) else sum(lag or 0 for lag in lags)


def schema_exists(conn: psycopg.Connection[Any], schema: str) -> bool:
    row = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone()
    return row is not None


def positions(conn: psycopg.Connection[Any], schema: str) -> dict[tuple[str, int], int]:
    if not schema_exists(conn, schema):
        return {}
    rows = conn.execute(
        sql.SQL("SELECT source, partition, next_offset FROM {}.projection_offsets").format(
            sql.Identifier(schema)
        )
    ).fetchall()
    return {(r[0], r[1]): r[2] for r in rows}


def status(
    database_url: str,
    projection: Projection,
    end_offsets: dict[tuple[str, int], int],
    schema: str | None = None,
) -> ProjectionStatus:
    """Position and lag per partition. ``end_offsets`` are the sources' ends: the Kafka high
    watermarks of every partition, or {("$event-store", 0): max notification id + 1}."""
    schema = schema or projection.schema
    with psycopg.connect(database_url) as conn:
        exists = schema_exists(conn, schema)
        stored = positions(conn, schema)
        pending = parked = 0
        if exists:
            sequenced = is_sequenced(conn, schema)
            row = conn.execute(
                sql.SQL("SELECT count(*) FROM {}.dead_letters WHERE {}").format(
                    sql.Identifier(schema),
                    sql.SQL(DEAD_LETTER_PENDING if sequenced else "replayed_at IS NULL"),
                )
            ).fetchone()
            pending = int(row[0]) if row else 0
            if sequenced:
                row = conn.execute(
                    sql.SQL("SELECT count(*) FROM {}.parked_events").format(sql.Identifier(schema))
                ).fetchone()
                parked = int(row[0]) if row else 0
        rebuilding = schema_exists(conn, projection.schema + REBUILD_SUFFIX)
    parts = []
    for key in sorted(set(end_offsets) | set(stored)):
        position = stored.get(key, 0)
        end = end_offsets.get(key)
        parts.append(
            PartitionStatus(
                key[0], key[1], position, end, None if end is None else max(0, end - position)
            )
        )
    return ProjectionStatus(projection.name, schema, exists, parts, pending, rebuilding, parked)


def is_sequenced(conn: psycopg.Connection[Any], schema: str) -> bool:
    """Whether the schema has the tables of dead letters sequenced per key (a projector or a
    replay creates them; a schema from before them is read as it is, without parked events)."""
    with conn.cursor(row_factory=tuple_row) as cur:
        row = cur.execute("SELECT to_regclass(%s)", (f'"{schema}".parked_events',)).fetchone()
    return row is not None and row[0] is not None


# Who may do what on a schema and on its tables and sequences, besides their owner (a null
# grantee: PUBLIC).
SELECT_GRANTS = """
SELECT 'SCHEMA' AS kind, NULL AS name, a.privilege_type,
       CASE a.grantee WHEN 0 THEN NULL ELSE pg_get_userbyid(a.grantee)::text END AS grantee
FROM pg_namespace n, aclexplode(n.nspacl) a
WHERE n.nspname = %(schema)s AND a.grantee <> n.nspowner
UNION ALL
SELECT CASE c.relkind WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END, c.relname, a.privilege_type,
       CASE a.grantee WHEN 0 THEN NULL ELSE pg_get_userbyid(a.grantee)::text END
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace, aclexplode(c.relacl) a
WHERE n.nspname = %(schema)s AND c.relkind IN ('r', 'p', 'S') AND a.grantee <> c.relowner
"""
PRIVILEGES = {"SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER"}
PRIVILEGES |= {"MAINTAIN", "USAGE", "CREATE"}


def copy_grants(conn: psycopg.Connection[Any], live: str, rebuilt: str) -> None:
    """Give the rebuilt schema and its tables the privileges other roles hold on the live
    ones: the application role, which reads and writes the read models but may create none,
    keeps its access when a rebuild made by the owner is swapped in (ADR 10)."""
    ident = sql.Identifier
    with conn.cursor(row_factory=tuple_row) as cur:
        grants = cur.execute(SELECT_GRANTS, {"schema": live}).fetchall()
        rebuilt_tables = {
            r[0]
            for r in cur.execute(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = %s",
                (rebuilt,),
            )
        }
        for kind, name, privilege, grantee in grants:
            if privilege not in PRIVILEGES or (kind != "SCHEMA" and name not in rebuilt_tables):
                continue  # (a table the rebuilt schema no longer has)
            cur.execute(
                sql.SQL("GRANT {} ON {} {} TO {}").format(
                    sql.SQL(privilege),
                    sql.SQL(kind),
                    ident(rebuilt) if kind == "SCHEMA" else ident(rebuilt, name),
                    sql.SQL("PUBLIC") if grantee is None else ident(grantee),
                )
            )


def swap_in(database_url: str, live: str, rebuilt: str) -> None:
    """Atomically replace the live schema with the rebuilt one.

    Locks both meta tables first: a live projector's batch holds a share lock on its meta
    row, so the swap waits for it; the next batch sees the new generation and re-seeks.
    Queries resolve table names through search_path, so they read the new tables at once.
    The rebuilt tables get the grants of the live ones first (:func:`copy_grants`).
    """
    retired = f"{live}__retired"
    with psycopg.connect(database_url) as conn:
        conn.execute("SET LOCAL lock_timeout = '30s'")
        ident = sql.Identifier
        conn.execute(
            sql.SQL("LOCK TABLE {}.projection_meta IN ACCESS EXCLUSIVE MODE").format(ident(rebuilt))
        )
        if schema_exists(conn, live):
            conn.execute(
                sql.SQL("LOCK TABLE {}.projection_meta IN ACCESS EXCLUSIVE MODE").format(
                    ident(live)
                )
            )
            copy_grants(conn, live, rebuilt)
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(ident(retired)))
            conn.execute(
                sql.SQL("ALTER SCHEMA {} RENAME TO {}").format(ident(live), ident(retired))
            )
        conn.execute(sql.SQL("ALTER SCHEMA {} RENAME TO {}").format(ident(rebuilt), ident(live)))
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(ident(retired)))
    log.info("projection swapped in", schema=live)


@dataclass(frozen=True)
class DeadLetterRow:
    id: int
    source: str
    partition: int
    offset: int
    event_type: str | None
    error_class: str
    error_message: str
    failed_at: Any
    replayed_at: Any
    replayed_by: str | None
    discarded_at: Any = None
    discarded_by: str | None = None
    discard_reason: str | None = None
    parked: int = 0  # events of its key waiting behind it
    replay_reason: str | None = None  # why it was replayed, when someone said (the console)


def dead_letters(
    database_url: str, projection: Projection, include_resolved: bool = False
) -> list[DeadLetterRow]:
    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        if not schema_exists(conn, projection.schema):
            return []
        if is_sequenced(conn, projection.schema):
            extra = (
                "discarded_at, discarded_by, discard_reason, (SELECT count(*) FROM {s}.parked_events p "
                "WHERE p.dead_letter_id = d.id) AS parked"
            )
            pending = DEAD_LETTER_PENDING
        else:
            extra = (
                "NULL AS discarded_at, NULL AS discarded_by, NULL AS discard_reason, 0 AS parked"
            )
            pending = "replayed_at IS NULL"
        rows = conn.execute(
            sql.SQL(
                'SELECT id, source, partition, "offset", headers, error_class, error_message, '
                "failed_at, replayed_at, replayed_by, to_jsonb(d) ->> 'replay_reason' AS replay_reason, "
                + extra
                + " FROM {s}.dead_letters d "
                "{where} ORDER BY id"
            ).format(
                s=sql.Identifier(projection.schema),
                where=sql.SQL("") if include_resolved else sql.SQL("WHERE " + pending),
            )
        ).fetchall()
    return [
        DeadLetterRow(
            r["id"],
            r["source"],
            r["partition"],
            r["offset"],
            (r["headers"] or {}).get("event-type"),
            r["error_class"],
            r["error_message"],
            r["failed_at"],
            r["replayed_at"],
            r["replayed_by"],
            r["discarded_at"],
            r["discarded_by"],
            r["discard_reason"],
            int(r["parked"]),
            r["replay_reason"],
        )
        for r in rows
    ]


@dataclass(frozen=True)
class Resolution:
    """What replaying or discarding one dead letter did."""

    id: int
    outcome: str  # replayed, discarded, already replayed, already discarded, still failing,
    # waiting (behind an older dead letter of its key), not found
    reason: str | None = None  # why it still fails (no values) or what it waits behind
    released: int = 0  # parked events of its key applied after it
    new_dead_letter: int | None = None  # a parked event that failed in turn and now holds the key
    still_parked: int = 0

    @property
    def resolved(self) -> bool:
        return self.outcome in {"replayed", "discarded", "already replayed", "already discarded"}


@dataclass(frozen=True)
class Release:
    applied: int = 0
    new_dead_letter: int | None = None
    still_parked: int = 0


# Every position row of the schema, in the order apply_batch locks its own (sorted by source
# and partition; COLLATE "C" sorts text as Python sorts str): while a replay or discard holds
# them, no batch of the projector runs, so a new event of the key is either parked before the
# release (and released with the others) or applied after it, never out of order.
LOCK_POSITIONS = (
    'SELECT 1 FROM projection_offsets ORDER BY source COLLATE "C", partition FOR UPDATE'
)
LOCK_DEAD_LETTER = "SELECT * FROM dead_letters WHERE id = %s FOR UPDATE"
SELECT_HEAD = (
    f"SELECT id FROM dead_letters WHERE key = %s AND {DEAD_LETTER_PENDING} ORDER BY id LIMIT 1"
)
SELECT_PARKED = "SELECT * FROM parked_events WHERE key = %s ORDER BY id FOR UPDATE"
REPOINT_PARKED = "UPDATE parked_events SET dead_letter_id = %s WHERE key = %s"
DELETE_PARKED = "DELETE FROM parked_events WHERE id = %s"
MARK_REPLAYED = "UPDATE dead_letters SET replayed_at = now(), replayed_by = %s, replay_reason = %s WHERE id = %s"
MARK_DISCARDED = (
    "UPDATE dead_letters SET discarded_at = now(), discarded_by = %s, discard_reason = %s "
    "WHERE id = %s"
)


def replay_dead_letters(
    database_url: str,
    projection: Projection,
    replayed_by: str,
    ids: Sequence[int] = (),
    *,
    prepare_schema: bool = True,
    reason: str | None = None,
) -> list[Resolution]:
    """Apply pending dead letters again (after a fix), each with the events parked behind it.

    One transaction per dead letter: the dead letter, marked with who replayed it, then the
    parked events of its key in order (a parked event that fails becomes the key's dead letter
    and the rest wait behind it). A dead letter that still fails changes nothing. Without
    ``ids``, every pending one in order; replaying one already replayed changes nothing.
    ``reason``, why it is replayed, is kept beside who did it (never logged: an operator's free
    text may name the person the event is about).
    """
    replayed_by = _named(replayed_by, "who replays")
    if prepare_schema:
        prepare(database_url, projection)  # a schema from before sequencing gets its tables
    with connect(database_url, projection.schema) as conn:
        if ids:
            targets = sorted(set(ids))
        else:
            rows = conn.execute(
                f"SELECT id FROM dead_letters WHERE {DEAD_LETTER_PENDING} ORDER BY id"
            ).fetchall()
            conn.commit()
            targets = [r["id"] for r in rows]
        outcomes = [_replay_one(conn, projection, i, replayed_by, reason) for i in targets]
    log.info(
        "dead letters replayed",
        projection=projection.name,
        replayed=sum(o.outcome == "replayed" for o in outcomes),
        released=sum(o.released for o in outcomes),
        unresolved=sum(not o.resolved for o in outcomes),
        by=replayed_by,
    )
    return outcomes


def _replay_one(
    conn: psycopg.Connection[Any], projection: Projection, id: int, by: str, reason: str | None
) -> Resolution:
    with conn.transaction(), conn.cursor() as cur:
        row, settled = _lock(cur, id)
        if settled is not None:
            return settled
        assert row is not None
        head = _head(cur, row["key"])
        if head is not None and head != id:
            return Resolution(id, "waiting", f"behind dead letter #{head} of the same key")
        try:
            with conn.transaction():
                apply_one(cur, projection, _delivery(row))
        except Exception as exc:  # the savepoint is gone: nothing changed
            failure = describe(exc)
            return Resolution(id, "still failing", f"{failure.error_class}: {failure.reason}")
        cur.execute(MARK_REPLAYED, (by, reason, id))
        release = release_parked(cur, projection, row["key"])
    return _resolved(id, "replayed", release)


def discard_dead_letter(
    database_url: str,
    projection: Projection,
    id: int,
    discarded_by: str,
    reason: str,
    *,
    prepare_schema: bool = True,
) -> Resolution:
    """Give a dead letter up for good, recording who, when and why, then apply the events
    parked behind it in order (a parked event that fails becomes the key's dead letter).
    Discarding one already discarded (or replayed) changes nothing."""
    discarded_by = _named(discarded_by, "who discards")
    reason = _named(reason, "the reason")
    if prepare_schema:
        prepare(database_url, projection)
    with (
        connect(database_url, projection.schema) as conn,
        conn.transaction(),
        conn.cursor() as cur,
    ):
        row, settled = _lock(cur, id)
        if settled is not None:
            return settled
        assert row is not None
        cur.execute(MARK_DISCARDED, (discarded_by, reason, id))
        release = release_parked(cur, projection, row["key"])
    # Not the reason: an operator's free text may name the person the event is about.
    log.info(
        "dead letter discarded",
        projection=projection.name,
        dead_letter=id,
        by=discarded_by,
        released=release.applied,
        new_dead_letter=release.new_dead_letter,
    )
    return _resolved(id, "discarded", release)


def release_parked(cur: Cursor[Any], projection: Projection, key: bytes | None) -> Release:
    """Apply the events parked under ``key`` in order, once the key has no pending dead letter
    left; each one applied is deleted (its rows are in the read model now). The first that fails
    becomes the key's dead letter, and the rest wait behind it. The caller holds the positions'
    locks, in its transaction."""
    if key is None:
        return Release()
    head = _head(cur, key)
    if head is not None:  # an older dead letter of the key (recorded before sequencing) holds it
        cur.execute(REPOINT_PARKED, (head, key))
        return Release(still_parked=cur.rowcount)
    cur.execute(SELECT_PARKED, (key,))
    parked = cur.fetchall()
    for i, row in enumerate(parked):
        delivery = _delivery(row)
        try:
            with cur.connection.transaction():
                apply_one(cur, projection, delivery)
        except Exception as exc:
            failure = describe(exc)
            dead = DeadLetter(delivery, failure.error_class, failure.reason)
            new_head = record_dead_letter(cur, dead)
            cur.execute(DELETE_PARKED, (row["id"],))
            cur.execute(REPOINT_PARKED, (new_head, key))
            metrics.DEAD_LETTERS.labels(projection.name, dead.error_class).inc()
            log_dead_letter(projection, dead)
            return Release(i, new_head, len(parked) - i - 1)
        cur.execute(DELETE_PARKED, (row["id"],))
    return Release(len(parked))


def _lock(cur: Cursor[Any], id: int) -> tuple[dict[str, Any] | None, Resolution | None]:
    """Lock the positions, then the dead letter; a resolution when there is nothing to do."""
    cur.execute(LOCK_POSITIONS)
    cur.execute(LOCK_DEAD_LETTER, (id,))
    row = cur.fetchone()
    if row is None:
        return None, Resolution(id, "not found")
    if row["replayed_at"] is not None:
        return row, Resolution(id, "already replayed", f"by {row['replayed_by']}")
    if row["discarded_at"] is not None:
        return row, Resolution(id, "already discarded", f"by {row['discarded_by']}")
    return row, None


def _head(cur: Cursor[Any], key: bytes | None) -> int | None:
    if key is None:
        return None
    cur.execute(SELECT_HEAD, (key,))
    row = cur.fetchone()
    return None if row is None else int(row["id"])


def _delivery(row: dict[str, Any]) -> Delivery:
    key = row["key"]
    return Delivery(
        row["source"],
        row["partition"],
        row["offset"],
        row["value"],
        None if key is None else bytes(key),
        row["headers"],
    )


def _resolved(id: int, outcome: str, release: Release) -> Resolution:
    return Resolution(
        id,
        outcome,
        released=release.applied,
        new_dead_letter=release.new_dead_letter,
        still_parked=release.still_parked,
    )


def _named(value: str, what: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError(f"{what} must be given")
    return value


def event_store_end(max_notification_id: int | None) -> dict[tuple[str, int], int]:
    return {(EVENT_STORE_SOURCE, 0): (max_notification_id or 0) + 1}


RUNNER_TABLES = {"projection_offsets", "projection_meta", "dead_letters", "parked_events"}


def drop_schema(database_url: str, schema: str) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def compare_schemas(database_url: str, live: str, scratch: str, generated_by: str) -> AuditReport:
    """Rows that are in one schema's read-model tables and not in the other's, table by table."""
    report = AuditReport("projection cross-check", live, generated_by)
    ident = sql.Identifier
    with psycopg.connect(database_url) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s ORDER BY 1",
                (scratch,),
            ).fetchall()
            if r[0] not in RUNNER_TABLES
        ]
        for table in tables:
            columns = [
                r[0]
                for r in conn.execute(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
                    (scratch, table),
                ).fetchall()
            ]
            cols = sql.SQL(", ").join(ident(c) for c in columns)
            for left, right, label in (
                (live, scratch, "only in live"),
                (scratch, live, "missing from live"),
            ):
                rows = conn.execute(
                    sql.SQL("SELECT {c} FROM {l}.{t} EXCEPT ALL SELECT {c} FROM {r}.{t}").format(
                        c=cols, l=ident(left), r=ident(right), t=ident(table)
                    )
                ).fetchall()
                if rows:
                    report.fail(
                        table=table,
                        problem=f"{len(rows)} rows {label}",
                        sample=[dict(zip(columns, row, strict=True)) for row in rows[:3]],
                    )
            count = conn.execute(
                sql.SQL("SELECT count(*) FROM {}.{}").format(ident(scratch), ident(table))
            ).fetchone()
            report.summary[f"{table} rows (rebuilt)"] = count[0] if count else 0
    report.summary["tables compared"] = len(tables)
    report.evidence = [
        f"the live read models (schema {live})",
        f"the same read models rebuilt from the start of the event log (schema {scratch}), "
        f"compared row by row: {', '.join(tables)}",
    ]
    return report
