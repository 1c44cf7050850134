"""What each domain error means to a caller: one table, read by the HTTP problems and by the
CLI's messages alike, so both interfaces answer the same error the same way."""

from __future__ import annotations

from dataclasses import dataclass

from application.ports import ConcurrentUpdate
from domain.base import EventTooLarge, NotFound, ValidationFailed
from domain.eligibility import EligibilityStateError, NotPermitted
from domain.errors import DomainError
from domain.housing import HousingStateError
from domain.registry import InvalidState, PersonAlreadyRegistered
from domain.reintegration import ReintegrationError
from domain.relocation import RelocationStateError
from domain.surveys import SurveyStateError


@dataclass(frozen=True)
class Meaning:
    status: int  # the HTTP status
    title: str  # the problem's title
    kind: str  # the last part of the problem's type URI
    exit_code: int  # the CLI's exit status


INVALID = Meaning(422, "Invalid input", "validation", 2)
MEANINGS: tuple[tuple[type[Exception], Meaning], ...] = (
    (ValidationFailed, INVALID),
    (
        PersonAlreadyRegistered,
        Meaning(409, "Person already registered", "person-already-registered", 1),
    ),
    (ConcurrentUpdate, Meaning(409, "Concurrent update", "concurrent-update", 1)),
    (EventTooLarge, Meaning(413, "Too large to record", "event-too-large", 1)),
    (NotPermitted, Meaning(403, "Forbidden", "forbidden", 1)),
    (NotFound, Meaning(404, "Not found", "not-found", 1)),
    *(
        (state_error, Meaning(409, "Conflicts with the case's state", "invalid-state", 1))
        for state_error in (
            InvalidState,
            SurveyStateError,
            EligibilityStateError,
            HousingStateError,
            RelocationStateError,
            ReintegrationError,
        )
    ),
)
"""Most specific first: the first class an error is an instance of gives its meaning."""

REFUSED = Meaning(409, "Refused", "refused", 1)
"""Any other domain error: the command was refused as it stands."""


def meaning(error: BaseException) -> Meaning | None:
    """What a domain error means, or None when it is not one (a fault, not a refusal)."""
    for error_class, found in MEANINGS:
        if isinstance(error, error_class):
            return found
    return REFUSED if isinstance(error, DomainError) else None
