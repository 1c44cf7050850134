"""Tamper evidence: a hash chain over the event store's global order.

Every appended event extends the chain in the same database transaction as the append (under
the event store's table lock, so the order of links is the commit order):

    link(n) = SHA-256( link(n-1) | n | originator id | originator version | topic | state )

with fixed-width integers and length-prefixed byte strings, starting from 32 zero bytes.
Changing any stored byte, deleting an event or swapping two changes every later link, so
recomputing the chain from the events and comparing it with the stored links, with the signed
checkpoints and with the links carried in Kafka shows the first position that was altered.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.utils import retry
from psycopg import Connection, Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier, Literal

from application.store import HOUSEHOLD_REGISTERED
from domain.errors import EventTooLarge
from infra import idempotency
from infra.contract import MAX_EVENT_BYTES

GENESIS = bytes(32)


def link(
    previous: bytes,
    notification_id: int,
    originator_id: UUID | str,
    version: int,
    topic: str,
    state: bytes,
) -> bytes:
    digest = hashlib.sha256(previous)
    oid = originator_id.bytes if isinstance(originator_id, UUID) else str(originator_id).encode()
    topic_bytes = topic.encode()
    digest.update(struct.pack(">qqI", notification_id, version, len(oid)))
    digest.update(oid)
    digest.update(struct.pack(">I", len(topic_bytes)))
    digest.update(topic_bytes)
    digest.update(struct.pack(">Q", len(state)))
    digest.update(state)
    return digest.digest()


# Largest payload sent in pipeline mode. Stalls were seen from about 250 KB up (a thousand
# registration events; one lottery announcement of 5,000 entrants); commands are a few KB.
PIPELINE_MAX_BYTES = 64 * 1024


class ChainedApplicationRecorder(PostgresApplicationRecorder):
    """The library's Postgres application recorder, extending the hash chain with every insert.

    The links are computed by a PL/pgSQL function (PostgreSQL's own sha256) called in the
    same transaction right after the events are inserted, while the event store's table lock
    is held, so the order of links is the commit order. Python's
    ``link()`` computes the same bytes, so verification needs nothing from the database.

    The same function keeps the one index the write side needs beyond aggregate ids: each
    household with its settlement of origin (``<events>_household_origins``), from every
    ``Household.Registered`` event, in the same transaction as the event: the lottery's
    entrants and a settlement's batch are read from it, never from a read model that may lag.

    It also keeps the idempotency keys' table (:mod:`infra.idempotency`): inside a keyed
    command its datastore lends the command's own connection, so the command's reads and
    inserts share the transaction its answer is stored in; and it notes the notification ids
    of every insert made inside a command (the answer's ``Log-Position``).
    """

    lock_through_function = False
    """Take the write lock through the owner's function (:class:`ApplicationRoleRecorder`)."""

    def __init__(self, datastore: Any, *, events_table_name: str = "stored_events") -> None:
        scoped: Any = idempotency.CommandScopedDatastore(datastore)
        super().__init__(scoped, events_table_name=events_table_name)
        self.idempotency_keys = idempotency.IdempotencyKeys(datastore, events_table_name)
        self.sql_create_statements.extend(
            idempotency.create_statements(self.datastore.schema, events_table_name)
        )
        self.chain_table_name = events_table_name + "_chain"
        self.origins_table_name = events_table_name + "_household_origins"
        schema, table = Identifier(self.datastore.schema), Identifier(self.chain_table_name)
        events = Identifier(events_table_name)
        origins = Identifier(self.origins_table_name)
        household_topic = Literal(HOUSEHOLD_REGISTERED)
        self.extend_function = Identifier(events_table_name + "_extend_chain")
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {schema}.{table} ("
                "notification_id bigint PRIMARY KEY, "
                "chain_hash bytea NOT NULL)"
            ).format(schema=schema, table=table)
        )
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {schema}.{origins} ("
                "household_id uuid PRIMARY KEY, origin_settlement_code text NOT NULL)"
            ).format(schema=schema, origins=origins)
        )
        self.sql_create_statements.append(
            SQL(
                "CREATE INDEX IF NOT EXISTS {index} ON {schema}.{origins} (origin_settlement_code)"
            ).format(
                index=Identifier(self.origins_table_name + "_by_origin"),
                schema=schema,
                origins=origins,
            )
        )
        # A store whose households were registered before the index existed: filled once.
        self.sql_create_statements.append(
            SQL(
                "INSERT INTO {schema}.{origins} SELECT originator_id, "
                "convert_from(state, 'UTF8')::jsonb ->> 'origin_settlement_code' "
                "FROM {schema}.{events} WHERE topic = {topic} "
                "AND NOT EXISTS (SELECT FROM {schema}.{origins}) ON CONFLICT DO NOTHING"
            ).format(schema=schema, origins=origins, events=events, topic=household_topic)
        )
        self.sql_create_statements.append(
            SQL(
                "CREATE OR REPLACE FUNCTION {schema}.{function}() RETURNS void LANGUAGE plpgsql AS $$\n"
                "DECLARE previous bytea; head bigint; r record;\n"
                "BEGIN\n"
                "  SELECT notification_id, chain_hash INTO head, previous FROM {schema}.{table}\n"
                "    ORDER BY notification_id DESC LIMIT 1;\n"
                "  previous := coalesce(previous, decode(repeat('00', 32), 'hex'));\n"
                "  FOR r IN SELECT notification_id, originator_id, originator_version, topic, state\n"
                "      FROM {schema}.{events} WHERE notification_id > coalesce(head, 0) ORDER BY notification_id LOOP\n"
                "    previous := sha256(previous || int8send(r.notification_id) || int8send(r.originator_version)\n"
                "      || int4send(16) || uuid_send(r.originator_id)\n"
                "      || int4send(octet_length(convert_to(r.topic, 'UTF8'))) || convert_to(r.topic, 'UTF8')\n"
                "      || int8send(octet_length(r.state)::bigint) || r.state);\n"
                "    INSERT INTO {schema}.{table} (notification_id, chain_hash) VALUES (r.notification_id, previous);\n"
                "    IF r.topic = {topic} THEN\n"
                "      INSERT INTO {schema}.{origins} (household_id, origin_settlement_code)\n"
                "        VALUES (r.originator_id, convert_from(r.state, 'UTF8')::jsonb ->> 'origin_settlement_code')\n"
                "        ON CONFLICT DO NOTHING;\n"
                "    END IF;\n"
                "  END LOOP;\n"
                "END $$"
            ).format(
                schema=schema,
                table=table,
                events=events,
                function=self.extend_function,
                origins=origins,
                topic=household_topic,
            )
        )
        self.extend_statement = SQL("SELECT {schema}.{function}()").format(
            schema=schema, function=self.extend_function
        )
        # The event store's write lock, for a role that may only insert: LOCK TABLE ... IN
        # EXCLUSIVE MODE needs UPDATE, DELETE, TRUNCATE or MAINTAIN on the table, which the
        # application role does not hold. The function runs as its owner and takes nothing but
        # that lock, held until the caller's transaction ends (ADR 10).
        self.lock_function = Identifier(events_table_name + "_lock")
        self.sql_create_statements.append(
            SQL(
                "CREATE OR REPLACE FUNCTION {schema}.{function}() RETURNS void LANGUAGE plpgsql "
                "SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$\n"
                "BEGIN\n"
                "  LOCK TABLE {schema}.{events} IN EXCLUSIVE MODE;\n"
                "END $$"
            ).format(schema=schema, function=self.lock_function, events=events)
        )
        self.sql_create_statements.append(
            SQL("REVOKE ALL ON FUNCTION {schema}.{function}() FROM PUBLIC").format(
                schema=schema, function=self.lock_function
            )
        )
        self.lock_function_statement = SQL("SELECT {schema}.{function}()").format(
            schema=schema, function=self.lock_function
        )
        # Many events at once: four arrays in binary, not an array of composite values in text
        # (whose escaping of every JSON quote cost about a tenth of the legacy import).
        self.insert_columns_statement = SQL(
            "INSERT INTO {schema}.{events} (originator_id, originator_version, topic, state) "
            "SELECT * FROM unnest(%b::uuid[], %b::bigint[], %b::text[], %b::bytea[]) "
            "RETURNING notification_id"
        ).format(schema=schema, events=events)

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """The library's insert (table lock, notify, one multi-row insert, then the chain).

        A command's few events go as the library sends them, in psycopg's pipeline mode: one
        round trip while the table lock is held. A large payload, such as a lottery's
        thousands of entrants or a batch of a thousand events, goes without the pipeline,
        which stalls for good on it (the client waits for results while the server waits for
        the rest of the statement; see psycopg/psycopg#685).

        An event larger than the log accepts (``MAX_EVENT_BYTES``) is refused first, with
        nothing written: Kafka would refuse its message, and the relay could not pass it."""
        for stored in stored_events:
            if len(stored.state) > MAX_EVENT_BYTES:
                raise too_large(stored)
        command = idempotency.current_recording()
        ids: Sequence[int] | None
        if command is not None and command.transaction is not None:
            # In a keyed command's transaction: a savepoint, without the pipeline (whose
            # library code releases the savepoint of a failed insert, which PostgreSQL
            # refuses), and without retry: a broken transaction stays broken, and nothing of
            # it is committed (the client's retry runs the command again).
            ids = ChainedApplicationRecorder._insert_without_pipeline.__wrapped__(
                self, stored_events, **kwargs
            )
        elif sum(len(e.state) for e in stored_events) < PIPELINE_MAX_BYTES:
            ids = super().insert_events(stored_events, **kwargs)
        else:
            ids = self._insert_without_pipeline(stored_events, **kwargs)
        if command is not None:
            command.note(ids)
        return ids

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def _insert_without_pipeline(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        with (
            self.datastore.get_connection() as conn,
            conn.transaction(),
            conn.cursor() as curs,
        ):
            self._insert_events(curs, stored_events, **kwargs)
            if not stored_events:
                return None
            self._lock_table(curs)
            self._notify_channel(curs)
            curs.execute(
                self.insert_columns_statement,
                (
                    [e.originator_id for e in stored_events],
                    [e.originator_version for e in stored_events],
                    [e.topic for e in stored_events],
                    [e.state for e in stored_events],
                ),
            )
            return self._fetch_ids_after_insert_events(curs, stored_events, **kwargs)

    def _lock_table(self, curs: Cursor[DictRow]) -> None:
        """The library's table lock (``SET LOCAL lock_timeout``, then ``LOCK TABLE ... IN
        EXCLUSIVE MODE``), or, with ``lock_through_function``, the same lock taken by the
        owner's function: same mode, same timeout, held to the end of the transaction, so
        commits are serialised exactly as before and the chain's order is the commit order."""
        if not self.lock_through_function:
            super()._lock_table(curs)
            return
        set_timeout, _lock = self.lock_table_statements
        curs.execute(set_timeout, prepare=True)
        curs.execute(self.lock_function_statement, prepare=True)

    def _fetch_ids_after_insert_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        ids = super()._fetch_ids_after_insert_events(curs, stored_events, **kwargs)
        if ids:
            curs.execute(self.extend_statement, prepare=True)
        return ids

    def chain_links(self, first: int, last: int) -> dict[int, bytes]:
        """Stored links for notification ids first..last (inclusive)."""
        statement = SQL(
            "SELECT notification_id, chain_hash FROM {schema}.{table} "
            "WHERE notification_id BETWEEN %s AND %s"
        ).format(schema=Identifier(self.datastore.schema), table=Identifier(self.chain_table_name))
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(statement, (first, last))
            return {r["notification_id"]: bytes(r["chain_hash"]) for r in curs.fetchall()}


class ApplicationRoleRecorder(ChainedApplicationRecorder):
    """The recorder of a process run as the application role (``DATABASE_SCHEMA_MANAGED=owner``):
    it may insert into the log but not lock the table itself, so it takes the write lock
    through the owner's ``<events>_lock()`` function (created with the other tables by
    ``reintegration db create-roles``)."""

    lock_through_function = True


def too_large(stored: StoredEvent) -> EventTooLarge:
    """The refusal of an oversized event, naming its largest field (the one to make smaller)."""
    largest: str | None = None
    try:
        fields = json.loads(stored.state)
        sizes = {name: len(json.dumps(value, ensure_ascii=False)) for name, value in fields.items()}
        largest = max(sizes, key=lambda name: sizes[name]) if sizes else None
    except (ValueError, AttributeError):
        pass
    return EventTooLarge(
        stored.topic.rsplit(":", 1)[-1], len(stored.state), MAX_EVENT_BYTES, largest
    )


@dataclass(frozen=True)
class Finding:
    position: int
    problem: str


@dataclass
class ChainWalk:
    events: int = 0
    head_position: int = 0
    head_hash: bytes = GENESIS
    first_break: Finding | None = None


def walk(
    conn: Connection[Any], events_table: str, chain_table: str, batch: int = 5000
) -> Iterator[tuple[int, bytes | None, bytes | None]]:
    """Yield (position, recomputed link or None when the event is missing, stored link or None),
    streaming the log in notification order with a server-side cursor."""
    statement = SQL(
        "SELECT coalesce(e.notification_id, c.notification_id) AS position, e.originator_id, "
        "e.originator_version, e.topic, e.state, c.chain_hash "
        "FROM {events} e FULL OUTER JOIN {chain} c ON c.notification_id = e.notification_id "
        "ORDER BY 1"
    ).format(events=Identifier(events_table), chain=Identifier(chain_table))
    previous = GENESIS
    with conn.transaction(), conn.cursor(name="chain_walk") as cur:
        cur.itersize = batch
        cur.execute(statement)
        for position, originator_id, version, topic, state, stored in cur:
            if state is None:
                yield position, None, bytes(stored) if stored is not None else None
                continue
            previous = link(previous, position, originator_id, version, topic, bytes(state))
            yield position, previous, bytes(stored) if stored is not None else None
