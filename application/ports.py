"""What the use cases need from outside: the event store, with the few reads the write side
makes, and the expression language of the eligibility rules.

Every read here is of the write model (the event log), never of a read model: a decision does
not depend on how far a projection has caught up.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

from domain.base import DomainError
from domain.rules import ExpressionLanguage

__all__ = ["CaseEvent", "ConcurrentUpdate", "EventStore", "ExpressionLanguage"]


class ConcurrentUpdate(DomainError):
    """Someone else changed the case between our read and our write; theirs is kept."""

    def __init__(self) -> None:
        super().__init__(
            "the case was changed by someone else at the same time; reload and try again"
        )


@dataclass(frozen=True)
class CaseEvent:
    """An event as the log recorded it: its position, the domain event and its link in the
    hash chain (None where the store keeps no chain, as in memory)."""

    position: int
    event: Any
    link: bytes | None


class ParticipantKeys(Protocol):
    """The published keys of the lottery's participants (the Public Council's members, the
    committee's representative): who may commit, checked by signature."""

    @property
    def configured(self) -> bool: ...

    @property
    def origin(self) -> str:
        """The log the signatures are for (AUDIT_LOG_ORIGIN): none from another deployment."""

    def signed(self, participant: str, message: bytes, signature: str) -> bool | None:
        """True when ``signature`` (base64) is ``participant``'s over ``message``; False when
        not; None when no key of that participant is published."""


class EventStore(Protocol):
    def save(self, *aggregates: Any) -> None:
        """Record every pending event of the aggregates in one transaction; a concurrent change
        to any of them refuses all (:class:`ConcurrentUpdate`)."""

    def get(self, aggregate_id: UUID, kind: str) -> Any:
        """The aggregate, or :class:`domain.base.NotFound` naming ``kind``."""

    def find(self, aggregate_id: UUID) -> Any | None:
        """The aggregate, or None."""

    def exists(self, aggregate_id: UUID) -> bool: ...

    def existing(self, ids: Iterable[UUID]) -> set[UUID]:
        """Those of ``ids`` the store holds an aggregate for."""

    def load_many(self, ids: Iterable[UUID]) -> dict[UUID, Any]:
        """Many aggregates at once; ids that do not exist are absent."""

    def count_numbered(
        self, id_for: Callable[[Any, int], UUID], keys: Sequence[Hashable], window: int = 4
    ) -> dict[Any, int]:
        """For aggregates numbered 1, 2, ... per key (a household's decisions, its survey
        responses, a settlement's rounds): how many each key has."""

    def first_events(self, ids: Iterable[UUID]) -> dict[UUID, Any]:
        """The creation event of each aggregate that exists (a registration, say)."""

    def households_originating_from(self, settlement_code: str) -> list[UUID]:
        """Every household registered with this origin (from the log, never lagging)."""

    def households(self) -> list[UUID]:
        """Every household registered."""

    def case_events(self, ids: Iterable[UUID]) -> list[CaseEvent]:
        """Every event of these aggregates, in the order of the log."""

    def head(self) -> int:
        """The position of the last event in the log (0 when empty)."""

    def analyze(self) -> None:
        """Refresh what the store knows of its own size after a bulk load (may do nothing)."""
