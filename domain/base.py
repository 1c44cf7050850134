"""What every command and event shares: who acts, on whose behalf, and why.

A command runs inside :func:`acting_as`, which puts a :class:`CommandContext` in a
context variable. :class:`CaseAggregate` copies it onto every event it triggers, so no
command method has to pass the actor around and no event can be recorded without one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Any, Self
from uuid import UUID, uuid4

from eventsourcing.domain import Aggregate, Snapshot

from domain import text
from domain.errors import DomainError, EventTooLarge, FieldError, ValidationFailed

__all__ = [
    "ROLES",
    "Actor",
    "CaseAggregate",
    "CaseSnapshot",
    "CommandContext",
    "DomainError",
    "EventTooLarge",
    "FieldError",
    "HouseholdCaseAggregate",
    "HouseholdEvent",
    "MissingCommandContext",
    "NotFound",
    "ValidationFailed",
    "acting_as",
    "current_context",
]

ROLES = ("operator", "supervisor", "auditor", "integration")


@dataclass(frozen=True)
class Actor:
    """Who acts, in which role, and where: ``districts`` are the district codes the caller may
    see and change (empty: the whole country)."""

    user_id: str
    role: str
    districts: tuple[str, ...] = ()

    @property
    def national(self) -> bool:
        return not self.districts

    def covers(self, district_code: str | None) -> bool:
        """Whether a case of that district is in this caller's scope (an unknown district is
        in no district's scope)."""
        return self.national or (district_code is not None and district_code in self.districts)


@dataclass(frozen=True)
class CommandContext:
    """Who issued the command, the conversation it belongs to, and what caused it."""

    actor: Actor
    correlation_id: str
    causation_id: str


_current_context: ContextVar[CommandContext | None] = ContextVar("command_context", default=None)


@contextmanager
def acting_as(context: CommandContext) -> Iterator[CommandContext]:
    token = _current_context.set(context)
    try:
        yield context
    finally:
        _current_context.reset(token)


def current_context() -> CommandContext:
    context = _current_context.get()
    if context is None:
        raise MissingCommandContext
    return context


class MissingCommandContext(DomainError):
    def __init__(self) -> None:
        super().__init__("a command must run inside acting_as(): every event records its actor")


class NotFound(DomainError):
    def __init__(self, kind: str, identifier: object = None) -> None:
        super().__init__(
            f"{kind} not found" if identifier is None else f"{kind} {identifier} not found"
        )
        self.kind = kind
        self.identifier = identifier


@dataclass(frozen=True)
class StoredTuple:
    """A tuple of an aggregate's state as a snapshot stores it (JSON has only lists)."""

    items: list[Any]


@dataclass(frozen=True)
class StoredMapping:
    """A dict whose keys are not all strings (a settlement's units by id), as a snapshot stores
    it: JSON objects have string keys only."""

    items: list[list[Any]]  # [key, value] pairs


def _storable(value: Any) -> Any:
    if isinstance(value, tuple):
        return StoredTuple([_storable(v) for v in value])
    if isinstance(value, list):
        return [_storable(v) for v in value]
    if isinstance(value, dict):
        if all(type(k) is str for k in value):
            return {k: _storable(v) for k, v in value.items()}
        return StoredMapping([[k, _storable(v)] for k, v in value.items()])
    return value


def _restored(value: Any) -> Any:
    if isinstance(value, StoredTuple):
        return tuple(_restored(v) for v in value.items)
    if isinstance(value, StoredMapping):
        return {k: _restored(v) for k, v in value.items}
    if isinstance(value, list):
        return [_restored(v) for v in value]
    if isinstance(value, dict):
        return {k: _restored(v) for k, v in value.items()}
    return value


class CaseSnapshot(Snapshot):
    """The library's snapshot with an aggregate's tuples and its dicts keyed by ids kept as
    they are: the stored JSON would turn the first into lists and cannot hold the second.
    Every other value is written as the events write it (the application's transcodings)."""

    @classmethod
    def take(cls, aggregate: Any) -> Self:
        taken = super().take(aggregate)
        return replace(taken, state=_storable(taken.state))

    def mutate(self, _: None) -> Any:
        return Snapshot.mutate(replace(self, state=_restored(self.state)), None)


class CaseAggregate(Aggregate):
    """Base of every aggregate: its events carry event id, actor, correlation and causation."""

    Snapshot = CaseSnapshot

    class Event(Aggregate.Event):
        event_id: UUID
        actor_id: str
        actor_role: str
        correlation_id: str
        causation_id: str

        @property
        def case_id(self) -> UUID:
            """The case (household) this event belongs to now."""
            return self.originator_id

        @property
        def partition_key(self) -> UUID:
            """Keys the event's Kafka message: stable for the aggregate's whole life, so that its
            events stay in order on one partition. By default the case (the household) itself."""
            return self.case_id

    class Created(Event, Aggregate.Created):
        pass

    @classmethod
    def _create(cls, event_class: Any, *, id: Any = None, **kwargs: Any) -> Any:
        return super()._create(event_class, id=id, **_with_metadata(kwargs))

    def trigger_event(self, event_class: Any, **kwargs: Any) -> None:
        super().trigger_event(event_class, **_with_metadata(kwargs))


class HouseholdEvent(CaseAggregate.Event):
    """Base of the events, after its creation, of an aggregate that belongs to one household's
    case: they carry the household, which is their case and their Kafka key."""

    household_id: UUID

    @property
    def case_id(self) -> UUID:
        return self.household_id


class HouseholdCaseAggregate(CaseAggregate):
    """Base of an aggregate that belongs to one household's case (a survey response, an
    eligibility decision, a relocation, a reintegration follow-up): its events after creation
    are :class:`HouseholdEvent` and get the household filled in."""

    household_id: UUID

    def trigger_event(self, event_class: Any, **kwargs: Any) -> None:
        kwargs.setdefault("household_id", self.household_id)
        super().trigger_event(event_class, **kwargs)


def _with_metadata(kwargs: dict[str, Any]) -> dict[str, Any]:
    """A new event's fields with who, why and in which conversation, each field checked by the
    last guard (:func:`domain.text.recordable`): no command, however it validated its input,
    records text or numbers that the stored JSON, the Avro messages or the read models could
    not hold."""
    if "event_id" in kwargs:  # reconstructed, not new
        return kwargs
    context = current_context()
    return {
        **{
            name: value if text.plain(value) else text.recordable(name, value)
            for name, value in kwargs.items()
        },
        "event_id": uuid4(),
        "actor_id": context.actor.user_id,
        "actor_role": context.actor.role,
        "correlation_id": context.correlation_id,
        "causation_id": context.causation_id,
    }
