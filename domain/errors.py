"""The errors every bounded context shares (re-exported by :mod:`domain.base`)."""

from __future__ import annotations

from dataclasses import dataclass


class DomainError(Exception):
    """Base of every error the domain raises on purpose."""


@dataclass(frozen=True)
class FieldError:
    field: str
    reason: str


class ValidationFailed(DomainError):
    """A command's input breaks rules: each error names the input field and says why."""

    def __init__(self, errors: list[FieldError]) -> None:
        if not errors:
            raise ValueError("ValidationFailed needs at least one error")
        super().__init__("; ".join(f"{e.field}: {e.reason}" for e in errors))
        self.errors = tuple(errors)

    @property
    def field(self) -> str:
        return self.errors[0].field

    @property
    def reason(self) -> str:
        return self.errors[0].reason


class EventTooLarge(DomainError):
    """The change would record an event larger than the event log accepts (HTTP 413): nothing
    was stored. ``field`` names the event's largest field, the one to make smaller."""

    def __init__(self, event_type: str, size: int, limit: int, field: str | None) -> None:
        super().__init__(
            f"the {event_type} event would be {size:,} bytes; the log accepts at most {limit:,}"
            + (f" (its largest part is {field})" if field else "")
        )
        self.event_type = event_type
        self.size = size
        self.limit = limit
        self.field = field
