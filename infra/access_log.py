"""Who read whose personal data, when, from where and why: an append-only log auditors can
query, and from which a person's access report is drawn.

Every read that returns a person's data, over HTTP or from the command line, adds one row:
the caller (user, role, districts), what was read (action, resource: the route template or
``cli:<command>``, never a path holding a FIN), the subjects (person and household ids), the
purpose the caller gave, the client address and user agent, and a search's terms. The table
refuses UPDATE, DELETE and TRUNCATE at the database level (infra/tamper_evidence.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from domain.base import Actor

INSERT = """
INSERT INTO audit.access_log (actor_id, actor_role, actor_districts, action, resource,
    subject_ids, reason, correlation_id, client_address, user_agent, search_terms)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
"""
COLUMNS = (
    "id, at, actor_id, actor_role, actor_districts, action, resource, subject_ids, reason, "
    "correlation_id, client_address, user_agent, search_terms"
)
SUBJECT_KEYS = ("household_id", "person_id", "head_person_id", "holder_household_id")


@dataclass(frozen=True)
class Access:
    actor: Actor
    action: str
    resource: str
    subjects: list[UUID]
    purpose: str | None = None
    correlation_id: str | None = None
    client_address: str | None = None
    user_agent: str | None = None
    search_terms: dict[str, Any] = field(default_factory=dict)


def record(pool: ConnectionPool[Any], access: Access) -> None:
    terms = {k: v for k, v in access.search_terms.items() if v is not None}
    with pool.connection() as conn:
        conn.execute(
            INSERT,
            (
                access.actor.user_id,
                access.actor.role,
                list(access.actor.districts),
                access.action,
                access.resource,
                sorted(set(access.subjects), key=str),
                access.purpose,
                access.correlation_id,
                access.client_address,
                access.user_agent,
                Jsonb(terms, dumps=_dumps) if terms else None,
            ),
        )


def subjects_in(found: Any) -> list[UUID]:
    """The person and household ids anywhere in a read's result (dicts and lists, nested)."""
    seen: list[UUID] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if key in SUBJECT_KEYS and item is not None:
                    with contextlib.suppress(ValueError):
                        seen.append(item if isinstance(item, UUID) else UUID(str(item)))
                else:
                    walk(item)
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item)

    walk(found)
    return list(dict.fromkeys(seen))


def _dumps(value: Any) -> str:
    import json

    return json.dumps(value, default=str, ensure_ascii=False)


def report(pool: ConnectionPool[Any], subjects: Iterable[UUID]) -> list[dict[str, Any]]:
    """A person's access report: every read of their file (or their household's), oldest
    first, with who, in which role, when and why; not the search terms (other people's)."""
    with pool.connection() as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT at, actor_id, actor_role, actor_districts, action, reason AS purpose "
            "FROM audit.access_log WHERE subject_ids && %s::uuid[] ORDER BY id",
            (list(subjects),),
        )
        return [dict(r) for r in cur.fetchall()]


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
            f"SELECT {COLUMNS} FROM audit.access_log WHERE {' AND '.join(clauses)} ORDER BY id LIMIT %s",
            params,
        )
        return [dict(r) for r in cur.fetchall()]
