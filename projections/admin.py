"""Operating projections: status and lag, dead letters, and rebuilds with an atomic swap."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
import structlog
from psycopg import sql
from psycopg.rows import dict_row

from application.reports import AuditReport
from projections.runner import EVENT_STORE_SOURCE, Delivery, Projection, apply_one

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
        pending = 0
        if exists:
            row = conn.execute(
                sql.SQL("SELECT count(*) FROM {}.dead_letters WHERE replayed_at IS NULL").format(
                    sql.Identifier(schema)
                )
            ).fetchone()
            pending = int(row[0]) if row else 0
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
    return ProjectionStatus(projection.name, schema, exists, parts, pending, rebuilding)


def swap_in(database_url: str, live: str, rebuilt: str) -> None:
    """Atomically replace the live schema with the rebuilt one.

    Locks both meta tables first: a live projector's batch holds a share lock on its meta
    row, so the swap waits for it; the next batch sees the new generation and re-seeks.
    Queries resolve table names through search_path, so they read the new tables at once.
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


def dead_letters(
    database_url: str, projection: Projection, include_replayed: bool = False
) -> list[DeadLetterRow]:
    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        if not schema_exists(conn, projection.schema):
            return []
        rows = conn.execute(
            sql.SQL(
                'SELECT id, source, partition, "offset", headers, error_class, error_message, '
                "failed_at, replayed_at, replayed_by FROM {}.dead_letters {} ORDER BY id"
            ).format(
                sql.Identifier(projection.schema),
                sql.SQL("") if include_replayed else sql.SQL("WHERE replayed_at IS NULL"),
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
        )
        for r in rows
    ]


@dataclass(frozen=True)
class ReplayOutcome:
    id: int
    replayed: bool
    error: str | None


def replay_dead_letters(
    database_url: str, projection: Projection, replayed_by: str, ids: Sequence[int] = ()
) -> list[ReplayOutcome]:
    """Apply pending dead letters again (after a fix); each success is marked with who replayed
    it, in the same transaction as its rows. Failures stay pending with their latest error."""
    outcomes = []
    schema = sql.Identifier(projection.schema)
    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        conn.execute(sql.SQL("SET search_path TO {}, public").format(schema))
        conn.commit()
        query = "SELECT * FROM dead_letters WHERE replayed_at IS NULL"
        params: list[Any] = []
        if ids:
            query += " AND id = ANY(%s)"
            params.append(list(ids))
        for row in conn.execute(query + " ORDER BY id", params).fetchall():
            delivery = Delivery(
                row["source"],
                row["partition"],
                row["offset"],
                row["value"],
                row["key"],
                row["headers"],
            )
            with conn.transaction(), conn.cursor() as cur:
                try:
                    with conn.transaction():
                        apply_one(cur, projection, delivery)
                except Exception as exc:
                    cur.execute(
                        "UPDATE dead_letters SET error_class = %s, error_message = %s WHERE id = %s",
                        (type(exc).__name__, str(exc)[:2000], row["id"]),
                    )
                    outcomes.append(ReplayOutcome(row["id"], False, f"{type(exc).__name__}: {exc}"))
                    continue
                cur.execute(
                    "UPDATE dead_letters SET replayed_at = now(), replayed_by = %s WHERE id = %s",
                    (replayed_by, row["id"]),
                )
                outcomes.append(ReplayOutcome(row["id"], True, None))
    log.info(
        "dead letters replayed",
        projection=projection.name,
        replayed=sum(o.replayed for o in outcomes),
        still_failing=sum(not o.replayed for o in outcomes),
        by=replayed_by,
    )
    return outcomes


def event_store_end(max_notification_id: int | None) -> dict[tuple[str, int], int]:
    return {(EVENT_STORE_SOURCE, 0): (max_notification_id or 0) + 1}


RUNNER_TABLES = {"projection_offsets", "projection_meta", "dead_letters"}


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
    return report
