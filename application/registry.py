"""The registry's use cases: households (the cases) and the people in them."""

from __future__ import annotations

import secrets
from datetime import date
from uuid import UUID

from application.ports import ConcurrentUpdate, EventStore
from domain.base import NotFound
from domain.registration import join_household, register_household, split_household
from domain.registry import (
    Household,
    NewMember,
    Person,
    PersonAlreadyRegistered,
    RegisterHousehold,
    person_id_for,
)


class Registry:
    def __init__(self, store: EventStore) -> None:
        self.store = store

    # --- reading the write model -----------------------------------------------------------

    def get_household(self, household_id: UUID) -> Household:
        household: Household = self.store.get(household_id, "household")
        return household

    def get_person(self, fin: str) -> Person:
        """The person with this FIN (:class:`ValidationFailed` when it is not a FIN)."""
        person = self.store.find(person_id_for(fin))
        if person is None:
            raise NotFound("person with that FIN")
        found: Person = person
        return found

    # --- households ------------------------------------------------------------------------

    def register_household(self, command: RegisterHousehold, today: date | None = None) -> UUID:
        household, persons = register_household(command, today or date.today())
        try:
            self.store.save(household, *persons)
        except ConcurrentUpdate:
            raise self._already_registered(persons) from None
        return household.id

    def _already_registered(self, persons: list[Person]) -> PersonAlreadyRegistered:
        """Name the member whose FIN collided: the first whose id the store already holds."""
        for i, person in enumerate(persons):
            if self.store.exists(person.id):
                return PersonAlreadyRegistered(f"members[{i}].fin")
        return PersonAlreadyRegistered("members")

    def add_member(
        self, household_id: UUID, member: NewMember, reason: str, today: date | None = None
    ) -> UUID:
        """A new person joins (birth, marriage...); a registered person who belongs to no
        household any more (removed after a marriage, say) may join too."""
        household = self.get_household(household_id)
        registered: Person | None = self.store.find(person_id_for(member.fin))
        registered_in = self.store.find(registered.household_id) if registered else None
        person = join_household(
            household, member, reason, registered, registered_in, today or date.today()
        )
        self.store.save(household, person)
        return person.id

    def remove_member(
        self, household_id: UUID, person_id: UUID, reason: str, note: str | None
    ) -> None:
        household = self.get_household(household_id)
        household.remove_member(person_id, reason, note)
        self.store.save(household)

    def change_head(
        self, household_id: UUID, head_person_id: UUID, former_head_relationship: str, reason: str
    ) -> None:
        household = self.get_household(household_id)
        household.change_head(head_person_id, former_head_relationship, reason)
        self.store.save(household)

    def split_household(
        self,
        household_id: UUID,
        head_person_id: UUID,
        relationships: dict[UUID, str],
        current_address: str,
        reason: str,
    ) -> UUID:
        """Members leave to form a new household: the old one records the split, the new one is
        registered with them, and each person moves; all in one transaction."""
        household = self.get_household(household_id)
        members = [p for p in relationships if household.member(p) is not None]
        persons = self.store.load_many(members)
        new_household = split_household(
            household, persons, head_person_id, relationships, current_address, reason
        )
        self.store.save(household, new_household, *persons.values())
        new_id: UUID = new_household.id
        return new_id

    def record_housing_condition(
        self, household_id: UUID, condition: str, note: str | None
    ) -> None:
        household = self.get_household(household_id)
        household.record_housing_condition(condition, note)
        self.store.save(household)

    def verify_circumstances(
        self,
        household_id: UUID,
        living_at_registered_address: bool,
        private_housing_after_displacement: bool,
        sham_marriage_or_divorce: bool,
        verified_on: date,
        document_reference: str,
        note: str | None,
    ) -> None:
        household = self.get_household(household_id)
        household.verify_circumstances(
            living_at_registered_address,
            private_housing_after_displacement,
            sham_marriage_or_divorce,
            verified_on,
            document_reference,
            note,
            date.today(),
        )
        self.store.save(household)

    def record_vulnerability(
        self, household_id: UUID, vulnerability: str, person_id: UUID | None, note: str | None
    ) -> None:
        household = self.get_household(household_id)
        household.record_vulnerability(vulnerability, person_id, note)
        self.store.save(household)

    def clear_vulnerability(
        self, household_id: UUID, vulnerability: str, person_id: UUID | None, reason: str
    ) -> None:
        household = self.get_household(household_id)
        household.clear_vulnerability(vulnerability, person_id, reason)
        self.store.save(household)

    # --- persons ---------------------------------------------------------------------------

    def correct_person(
        self,
        fin: str,
        field: str,
        new_value: str | None,
        reason: str,
        document_reference: str | None,
    ) -> Person:
        person = self.get_person(fin)
        person.correct(field, new_value, reason, document_reference, date.today())
        self.store.save(person)
        return person

    def grant_idp_status(
        self, fin: str, basis: str, effective_date: date, certificate_number: str | None
    ) -> Person:
        person = self.get_person(fin)
        person.grant_idp_status(basis, effective_date, certificate_number, date.today())
        self.store.save(person)
        return person

    def end_idp_status(self, fin: str, basis: str, effective_date: date, reason: str) -> Person:
        person = self.get_person(fin)
        person.end_idp_status(basis, effective_date, reason, date.today())
        self.store.save(person)
        return person

    def record_death(self, fin: str, date_of_death: date, document_reference: str | None) -> Person:
        person = self.get_person(fin)
        person.record_death(date_of_death, document_reference, date.today())
        self.store.save(person)
        return person

    def issue_status_reference(self, fin: str) -> tuple[Person, str]:
        """A reference of the person's IDP status with a code integration clients can verify."""
        person = self.get_person(fin)
        code = "-".join(secrets.token_hex(2).upper() for _ in range(4))
        person.issue_status_reference(code)
        self.store.save(person)
        return person, code
