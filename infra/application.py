"""The write side: an eventsourcing Application on PostgreSQL.

Methods are commands: validate in the domain, save every new event in one transaction.
"""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError, JSONTranscoder, Transcoding

from domain.base import NotFound
from domain.registry import (
    Household,
    Member,
    Person,
    PersonAlreadyRegistered,
    RegisterHousehold,
    register_household,
)


class DateAsISO(Transcoding):
    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)


class MemberAsDict(Transcoding):
    type = Member
    name = "household_member"

    def encode(self, obj: Member) -> dict[str, Any]:
        return {"person_id": obj.person_id, "fin": obj.fin, "relationship": obj.relationship}

    def decode(self, data: dict[str, Any]) -> Member:
        return Member(**data)


class ReintegrationApplication(Application[UUID]):
    name = "reintegration"  # events table: reintegration_events

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(DateAsISO())
        transcoder.register(MemberAsDict())

    def register_household(self, command: RegisterHousehold, today: date | None = None) -> UUID:
        household, persons = register_household(command, today or date.today())
        try:
            self.save(household, *persons)
        except IntegrityError:
            raise self._already_registered(persons) from None
        return household.id

    def get_household(self, household_id: UUID) -> Household:
        try:
            household: Household = self.repository.get(household_id)
            return household
        except AggregateNotFoundError:
            raise NotFound("household", household_id) from None

    def _already_registered(self, persons: list[Person]) -> PersonAlreadyRegistered:
        """Name the FIN that collided: the first person whose id the store already holds."""
        for person in persons:
            if self.recorder.select_events(person.id, limit=1):
                return PersonAlreadyRegistered(person.fin)
        return PersonAlreadyRegistered(persons[0].fin)
