"""What every command and event shares: who acts, on whose behalf, and why.

A command runs inside :func:`acting_as`, which puts a :class:`CommandContext` in a
context variable. :class:`CaseAggregate` copies it onto every event it triggers, so no
command method has to pass the actor around and no event can be recorded without one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.domain import Aggregate

from domain import text
from domain.errors import DomainError, EventTooLarge, FieldError, ValidationFailed

__all__ = [
    "ROLES",
    "Actor",
    "CaseAggregate",
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


class CaseAggregate(Aggregate):
    """Base of every aggregate: its events carry event id, actor, correlation and causation."""

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
