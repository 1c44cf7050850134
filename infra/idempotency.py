"""Idempotent commands and the log position of a command, on the event store's database.

A command sent over HTTP runs inside :func:`recording`: a :class:`CommandRecording` in a
context variable notes the notification ids the event store gives its events (the log
position the answer carries), whatever the interface.

A command sent with an idempotency key runs, besides, in one database transaction of its own
(:class:`KeyedCommand`), from before the use case loads anything until its answer is stored:

1. ``begin``: a connection is taken from the event store's pool, a transaction opened, and a
   transaction-scoped advisory lock taken on (caller, key). When another request holds it, the
   key's first request is still running: :class:`InFlight`. Then the key's row is looked up:
   a stored answer to the same request is :class:`Replay`, to another request
   :class:`Mismatch`.
2. While the command runs, every connection the event store asks for (reads and inserts) is
   that transaction's (:class:`CommandScopedDatastore`), so the use case reads its own writes
   and every save of the command lands in the one transaction.
3. ``finish``: after a 2xx answer to a command that recorded events, the row (caller, key,
   fingerprint, first and last positions, status, headers, body) is inserted and the
   transaction committed: the events and the answer are durable together or not at all. Any
   other outcome rolls back: nothing was recorded, and a retry runs the command again.

So there is no window in which the events are committed and the answer is not: a retry after
any crash either replays the stored answer (committed) or runs the command afresh (nothing
committed; the advisory lock died with the connection). The price: the event store's write
lock, taken by the first insert, is held until the answer is stored, a millisecond or so
longer than without a key; commands without a key are unchanged.

Rows live for :data:`RETENTION` (24 hours): an older row is ignored, and deleted by the purge
that runs, at most every :data:`PURGE_EVERY_S`, after a keyed command commits.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager, suppress
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import psycopg
from eventsourcing import persistence
from psycopg import Connection
from psycopg.sql import SQL, Composed, Identifier
from psycopg.types.json import Jsonb

RETENTION = timedelta(hours=24)
PURGE_EVERY_S = 600.0


def table_name(events_table_name: str) -> str:
    return events_table_name + "_idempotency_keys"


def create_statements(schema: str, events_table_name: str) -> list[Composed]:
    """The keys' table, created with the event store's own tables."""
    table = Identifier(table_name(events_table_name))
    return [
        SQL(
            "CREATE TABLE IF NOT EXISTS {schema}.{table} ("
            "principal text NOT NULL, "
            "key text NOT NULL, "
            "fingerprint bytea NOT NULL, "
            "first_position bigint NOT NULL, "
            "last_position bigint NOT NULL, "
            "status smallint NOT NULL, "
            "headers jsonb NOT NULL, "
            "body bytea NOT NULL, "
            "created_at timestamptz NOT NULL DEFAULT now(), "
            "PRIMARY KEY (principal, key))"
        ).format(schema=Identifier(schema), table=table),
        SQL("CREATE INDEX IF NOT EXISTS {index} ON {schema}.{table} (created_at)").format(
            index=Identifier(table_name(events_table_name) + "_by_age"),
            schema=Identifier(schema),
            table=table,
        ),
    ]


# --- what a command recorded ---------------------------------------------------------------


@dataclass
class CommandRecording:
    """The notification ids the event store gave the events of one command (and, for a keyed
    command, the transaction they are recorded in)."""

    transaction: KeyedCommand | None = None
    first: int | None = None
    last: int | None = None

    def note(self, ids: Sequence[int] | None) -> None:
        if ids:
            low, high = min(ids), max(ids)
            self.first = low if self.first is None else min(self.first, low)
            self.last = high if self.last is None else max(self.last, high)


_recording: ContextVar[CommandRecording | None] = ContextVar("command_recording", default=None)


@contextmanager
def recording(transaction: KeyedCommand | None = None) -> Iterator[CommandRecording]:
    """Note what the event store records in this context (the worker thread of a plain
    ``def`` route copies the context, and with it this same object)."""
    found = CommandRecording(transaction)
    token = _recording.set(found)
    try:
        yield found
    finally:
        _recording.reset(token)


def current_recording() -> CommandRecording | None:
    return _recording.get()


# --- the keyed command's transaction -------------------------------------------------------


@dataclass(frozen=True)
class StoredAnswer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    last_position: int


@dataclass(frozen=True)
class Replay:
    answer: StoredAnswer


@dataclass(frozen=True)
class Mismatch:
    """The key was used for another request (method, path, query or body)."""


@dataclass(frozen=True)
class InFlight:
    """The key's first request is still running."""


@dataclass(eq=False)
class KeyedCommand:
    """A keyed command's own transaction: open from ``begin`` to ``finish`` or ``abandon``."""

    keys: IdempotencyKeys
    principal: str
    key: str
    fingerprint: bytes
    connection: Connection[Any]
    _stack: ExitStack = field(repr=False)
    _done: bool = False

    def finish(self, recorded: CommandRecording, answer: StoredAnswer) -> None:
        """Store the answer with the events and commit (the events' transaction)."""
        with _translated():
            self.connection.execute(
                self.keys.insert_statement,
                (
                    self.principal,
                    self.key,
                    self.fingerprint,
                    recorded.first,
                    recorded.last,
                    answer.status,
                    Jsonb(answer.headers),
                    answer.body,
                ),
            )
            self._close(commit=True)
        self.keys.purge_now_and_then()

    def abandon(self) -> None:
        """Roll back whatever the command did (nothing of it was answered as done); nothing
        when it was committed."""
        if not self._done:
            # A broken connection: the server rolls back and the pool discards it.
            with suppress(psycopg.Error, persistence.PersistenceError):
                self._close(commit=False)

    def _close(self, *, commit: bool) -> None:
        self._done = True
        if commit:
            self._stack.close()
        else:
            self._stack.__exit__(psycopg.Rollback, psycopg.Rollback(), None)


class IdempotencyKeys:
    """The keys' table and the keyed commands' transactions, on the event store's pool."""

    def __init__(self, datastore: Any, events_table_name: str) -> None:
        self.datastore = datastore  # the library's PostgresDatastore (not the scoped one)
        self.events_table_name = events_table_name
        schema = Identifier(datastore.schema)
        table = Identifier(table_name(events_table_name))
        retention = SQL("interval {}").format(f"{int(RETENTION.total_seconds())} seconds")
        self.lookup_statement = SQL(
            "SELECT fingerprint, last_position, status, headers, body, "
            "created_at < now() - {retention} AS expired "
            "FROM {schema}.{table} WHERE principal = %s AND key = %s"
        ).format(schema=schema, table=table, retention=retention)
        self.forget_statement = SQL(
            "DELETE FROM {schema}.{table} WHERE principal = %s AND key = %s"
        ).format(schema=schema, table=table)
        self.insert_statement = SQL(
            "INSERT INTO {schema}.{table} (principal, key, fingerprint, first_position, "
            "last_position, status, headers, body) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
        ).format(schema=schema, table=table)
        self.purge_statement = SQL(
            "DELETE FROM {schema}.{table} WHERE created_at < now() - {retention}"
        ).format(schema=schema, table=table, retention=retention)
        self._next_purge = 0.0
        self._purge_lock = threading.Lock()

    def lock_id(self, principal: str, key: str) -> int:
        """The advisory lock of (caller, key) on this event store: 64 bits of a SHA-256."""
        digest = hashlib.sha256(
            "\x00".join((self.events_table_name, principal, key)).encode()
        ).digest()
        return int.from_bytes(digest[:8], "big", signed=True)

    def begin(
        self, principal: str, key: str, fingerprint: bytes
    ) -> KeyedCommand | Replay | Mismatch | InFlight:
        """Open the command's transaction, or say why the command must not run."""
        stack = ExitStack()
        try:
            connection = stack.enter_context(self.datastore.get_connection())
            with _translated():
                stack.enter_context(connection.transaction())
                locked = connection.execute(
                    "SELECT pg_try_advisory_xact_lock(%s) AS locked",
                    (self.lock_id(principal, key),),
                ).fetchone()
                if not locked["locked"]:
                    stack.__exit__(psycopg.Rollback, psycopg.Rollback(), None)
                    return InFlight()
                row = connection.execute(self.lookup_statement, (principal, key)).fetchone()
                if row is not None and row["expired"]:
                    connection.execute(self.forget_statement, (principal, key))
                    row = None
        except BaseException:
            stack.__exit__(psycopg.Rollback, psycopg.Rollback(), None)
            raise
        if row is None:
            return KeyedCommand(self, principal, key, fingerprint, connection, stack)
        stack.__exit__(psycopg.Rollback, psycopg.Rollback(), None)
        if bytes(row["fingerprint"]) != fingerprint:
            return Mismatch()
        headers = [(str(name), str(value)) for name, value in row["headers"]]
        return Replay(
            StoredAnswer(row["status"], headers, bytes(row["body"]), row["last_position"])
        )

    def purge(self) -> int:
        """Delete the rows older than the retention window; how many."""
        with self.datastore.get_connection() as connection:
            deleted: int = connection.execute(self.purge_statement).rowcount
            return deleted

    def purge_now_and_then(self) -> None:
        now = time.monotonic()
        with self._purge_lock:
            if now < self._next_purge:
                return
            self._next_purge = now + PURGE_EVERY_S
        try:
            self.purge()
        except persistence.PersistenceError:
            self._next_purge = 0.0  # the next keyed command tries again


# --- the event store's connections inside a keyed command ----------------------------------


class CommandScopedDatastore:
    """The library's datastore, except that inside a keyed command every connection it lends
    is the command's own, in the command's transaction (the library's own ``transaction()``
    blocks then become savepoints)."""

    def __init__(self, datastore: Any) -> None:
        self._datastore = datastore

    def __getattr__(self, name: str) -> Any:
        return getattr(self._datastore, name)

    @property
    def unscoped(self) -> Any:
        return self._datastore

    @contextmanager
    def get_connection(self) -> Iterator[Connection[Any]]:
        found = _recording.get()
        if found is None or found.transaction is None:
            with self._datastore.get_connection() as connection:
                yield connection
        else:
            with _translated():
                yield found.transaction.connection

    @contextmanager
    def cursor(self) -> Iterator[Any]:
        with self.get_connection() as connection:
            yield connection.cursor()

    @contextmanager
    def transaction(self, *, commit: bool = False) -> Iterator[Any]:
        with self.get_connection() as connection, connection.transaction(force_rollback=not commit):
            yield connection.cursor()


_TRANSLATIONS: tuple[tuple[type[Exception], type[Exception]], ...] = (
    (psycopg.InterfaceError, persistence.InterfaceError),
    (psycopg.OperationalError, persistence.OperationalError),
    (psycopg.DataError, persistence.DataError),
    (psycopg.IntegrityError, persistence.IntegrityError),
    (psycopg.InternalError, persistence.InternalError),
    (psycopg.ProgrammingError, persistence.ProgrammingError),
    (psycopg.NotSupportedError, persistence.NotSupportedError),
    (psycopg.DatabaseError, persistence.DatabaseError),
    (psycopg.Error, persistence.PersistenceError),
)


@contextmanager
def _translated() -> Iterator[None]:
    """psycopg's errors as the library's, as its own ``get_connection`` raises them."""
    try:
        yield
    except psycopg.Error as exc:
        for psycopg_class, library_class in _TRANSLATIONS:
            if isinstance(exc, psycopg_class):
                raise library_class(str(exc)) from exc
        raise
