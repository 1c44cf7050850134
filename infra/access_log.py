"""Who read whose personal data, when and why: an append-only log auditors can query.

Every API read that returns a person's data adds one row (the table refuses UPDATE, DELETE and
TRUNCATE at the database level; see infra/tamper_evidence.py for its DDL).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg_pool import ConnectionPool

from domain.base import Actor

INSERT = """
INSERT INTO audit.access_log (actor_id, actor_role, action, resource, subject_ids, reason, correlation_id)
VALUES (%s, %s, %s, %s, %s, %s, %s)
"""


def record(
    pool: ConnectionPool[Any],
    actor: Actor,
    action: str,
    resource: str,
    subjects: list[UUID],
    reason: str | None,
    correlation_id: str | None,
) -> None:
    with pool.connection() as conn:
        conn.execute(
            INSERT, (actor.user_id, actor.role, action, resource, subjects, reason, correlation_id)
        )


def query(
    pool: ConnectionPool[Any],
    *,
    actor_id: str | None = None,
    subject_id: UUID | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    after_id: int = 0,
) -> list[dict[str, Any]]:
    clauses: list[str] = ["id > %s"]
    params: list[Any] = [after_id]
    if actor_id:
        clauses.append("actor_id = %s")
        params.append(actor_id)
    if subject_id:
        clauses.append("subject_ids @> ARRAY[%s]::uuid[]")
        params.append(subject_id)
    if since:
        clauses.append("at >= %s")
        params.append(since)
    if until:
        clauses.append("at < %s")
        params.append(until)
    params.append(limit)
    with pool.connection() as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT id, at, actor_id, actor_role, action, resource, subject_ids, reason, correlation_id "
            f"FROM audit.access_log WHERE {' AND '.join(clauses)} ORDER BY id LIMIT %s",
            params,
        )
        return [dict(r) for r in cur.fetchall()]
