"""Registry: the people displaced and the households (cases) they belong to.

A person's id is uuid5 of their FIN, so a second registration of the same FIN collides
with the first in the event store (same aggregate id, version 1) and is rejected by its
own concurrency check, however the requests interleave.

Why one module of about 700 lines: the events of these two aggregates are stored under topics
that name this module (``domain.registry:Person.Registered``), so the aggregates stay here;
what is not an aggregate lives beside it (:mod:`domain.registration`: registering, joining and
splitting households; :mod:`domain.text`: the rules for every text).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import event

from domain import text
from domain.base import CaseAggregate, DomainError, FieldError, ValidationFailed
from domain.text import IDENTIFIER, LINE, NAME, PARAGRAPH

PERSON_NAMESPACE = uuid5(NAMESPACE_URL, "urn:reintegration:person:fin")
PHONE_PATTERN = re.compile(r"\+?[0-9]{9,15}")
MAX_PHONE_INPUT = 32  # characters as typed, spaces and brackets included
RELATIONSHIPS = (
    "head",
    "spouse",
    "child",
    "parent",
    "sibling",
    "grandchild",
    "grandparent",
    "child_in_law",
    "parent_in_law",
    "other_relative",
)
SEXES = ("female", "male")
MAX_NAME_LENGTH = NAME.max_length
MAX_MEMBERS = 30
"""The most members a household may have (a larger family is registered as several)."""
EARLIEST_BIRTH_DATE = date(1900, 1, 1)


HOUSING_CONDITIONS = (
    "dormitory",
    "sanatorium",
    "unfinished_building",
    "administrative_building",
    "others_flat",
    "own_or_rented",
)
COLLECTIVE_CENTRES = ("dormitory", "sanatorium", "unfinished_building", "administrative_building")
VULNERABILITIES = (
    "disability",
    "chronic_illness",
    "single_parent",
    "elderly_living_alone",
    "martyr_family",
    "war_participant",
)
MEMBER_ADDED_REASONS = ("birth", "marriage", "adoption", "other")
MEMBER_REMOVED_REASONS = ("death", "marriage_out", "moved_out", "other")
CORRECTABLE_FIELDS = (
    "first_name",
    "last_name",
    "patronymic",
    "birth_date",
    "sex",
    "idp_certificate_number",
    "registered_address",
)
IDP_STATUSES = ("none", "active", "ended")
MAX_TEXT_LENGTH = LINE.max_length


class RegistryError(DomainError):
    pass


class PersonAlreadyRegistered(RegistryError):
    """A member's FIN is registered already (HTTP 409). ``field`` names the member
    (``members[1].fin``); the FIN itself is not repeated in the message."""

    def __init__(self, field: str = "fin") -> None:
        super().__init__(f"{field}: a person with this FIN is already registered")
        self.field = field


class InvalidState(RegistryError):
    """The command does not fit the case's current state (HTTP 409)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def normalise_fin(fin: str, field: str = "fin") -> str:
    """The FIN as stored (upper case); :class:`ValidationFailed` when it is not exactly seven
    ASCII letters or digits (checked before upper-casing)."""
    errors: list[FieldError] = []
    value = text.clean_fin(errors, field, fin)
    if value is None:
        raise ValidationFailed(errors)
    return value


def normalise_phone(phone: str | None) -> str | None:
    """Digits with an optional leading +; spaces, dashes and brackets are dropped."""
    if phone is None:
        return None
    cleaned = re.sub(r"[\s()\-]", "", phone)
    return cleaned or None


def person_id_for(fin: str) -> UUID:
    return uuid5(PERSON_NAMESPACE, normalise_fin(fin))


def _require(errors: list[FieldError]) -> None:
    if errors:
        raise ValidationFailed(errors)


def _reason(errors: list[FieldError], reason: str | None, field: str = "reason") -> str:
    return text.clean(errors, field, reason, LINE, required="a reason is required") or ""


def _note(errors: list[FieldError], note: str | None, field: str = "note") -> str | None:
    return text.clean(errors, field, note, PARAGRAPH)


def one_of(errors: list[FieldError], field: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        errors.append(FieldError(field, f"must be one of {', '.join(allowed)}"))


def _past_date(errors: list[FieldError], field: str, value: date, today: date) -> None:
    if value > today:
        errors.append(FieldError(field, "must not be in the future"))


@dataclass(frozen=True)
class Member:
    """A household member as HouseholdRegistered records it."""

    person_id: UUID
    fin: str
    relationship: str


@dataclass(frozen=True)
class NewMember:
    fin: str
    first_name: str
    last_name: str
    patronymic: str | None
    birth_date: date
    sex: str
    relationship: str
    idp_certificate_number: str | None = None
    registered_address: str | None = None


@dataclass(frozen=True)
class RegisterHousehold:
    members: list[NewMember]
    origin_settlement_code: str
    current_address: str
    contact_phone: str | None = None


class Person(CaseAggregate):
    class Changed(CaseAggregate.Event):
        """Base of every event after registration: the person's current and home households."""

        household_id: UUID
        home_household_id: UUID

        @property
        def case_id(self) -> UUID:
            return self.household_id

        @property
        def partition_key(self) -> UUID:
            # The household the person was registered in: a person who later moves keeps their
            # events in order with their registration (the current case is household_id).
            return self.home_household_id

    class Registered(CaseAggregate.Created):
        """Version 2 added the IDP certificate number, origin settlement and registered address."""

        class_version = 2

        fin: str
        first_name: str
        last_name: str
        patronymic: str | None
        birth_date: date
        sex: str
        household_id: UUID
        idp_certificate_number: str | None
        origin_settlement_code: str | None
        registered_address: str | None

        @property
        def case_id(self) -> UUID:
            return self.household_id

        @staticmethod
        def upcast_v1_v2(state: dict[str, object]) -> None:
            state["idp_certificate_number"] = None
            state["origin_settlement_code"] = None
            state["registered_address"] = None

    class DetailCorrected(Changed):
        field: str
        old_value: str | None
        new_value: str | None
        reason: str
        document_reference: str | None

    class IdpStatusGranted(Changed):
        basis: str
        effective_date: date
        certificate_number: str | None

    class IdpStatusEnded(Changed):
        basis: str
        effective_date: date
        reason: str

    class DeathRecorded(Changed):
        date_of_death: date
        document_reference: str | None

    class MovedToHousehold(Changed):
        from_household_id: UUID
        reason: str

    class StatusReferenceIssued(Changed):
        verification_code: str
        status: str
        certificate_number: str | None

    @staticmethod
    def create_id(fin: str) -> UUID:
        return person_id_for(fin)

    @event(Registered)
    def __init__(
        self,
        fin: str,
        first_name: str,
        last_name: str,
        patronymic: str | None,
        birth_date: date,
        sex: str,
        household_id: UUID,
        idp_certificate_number: str | None,
        origin_settlement_code: str | None,
        registered_address: str | None,
    ) -> None:
        self.home_household_id = household_id
        self.fin = fin
        self.first_name = first_name
        self.last_name = last_name
        self.patronymic = patronymic
        self.birth_date = birth_date
        self.sex = sex
        self.household_id = household_id
        self.idp_certificate_number = idp_certificate_number
        self.origin_settlement_code = origin_settlement_code
        self.registered_address = registered_address
        self.idp_status = "none"
        self.idp_status_basis: str | None = None
        self.idp_status_since: date | None = None
        self.date_of_death: date | None = None

    def trigger_event(self, event_class: Any, **kwargs: Any) -> None:
        kwargs.setdefault("household_id", self.household_id)
        kwargs.setdefault("home_household_id", self.home_household_id)
        super().trigger_event(event_class, **kwargs)

    # --- commands: decide, then record ----------------------------------------------------

    def correct(
        self,
        field: str,
        new_value: str | None,
        reason: str,
        document_reference: str | None,
        today: date,
    ) -> None:
        errors: list[FieldError] = []
        one_of(errors, "field", field, CORRECTABLE_FIELDS)
        why = _reason(errors, reason)
        reference = text.clean(errors, "document_reference", document_reference, IDENTIFIER)
        value = (
            _validate_detail(errors, field, new_value, today)
            if field in CORRECTABLE_FIELDS
            else None
        )
        _require(errors)
        old = getattr(self, field)
        old_text = old.isoformat() if isinstance(old, date) else old
        if old_text == value:
            raise InvalidState(f"{field} already has that value", "new_value")
        self._correct(
            field=field,
            old_value=old_text,
            new_value=value,
            reason=why,
            document_reference=reference,
        )

    @event(DetailCorrected)
    def _correct(
        self,
        field: str,
        old_value: str | None,
        new_value: str | None,
        reason: str,
        document_reference: str | None,
    ) -> None:
        setattr(
            self,
            field,
            date.fromisoformat(new_value) if field == "birth_date" and new_value else new_value,
        )

    def grant_idp_status(
        self, basis: str, effective_date: date, certificate_number: str | None, today: date
    ) -> None:
        errors: list[FieldError] = []
        why = _reason(errors, basis, "basis")
        certificate = text.clean(errors, "certificate_number", certificate_number, IDENTIFIER)
        _past_date(errors, "effective_date", effective_date, today)
        _require(errors)
        self._must_be_alive()
        if self.idp_status == "active":
            raise InvalidState("IDP status is already active", "basis")
        self._grant(
            basis=why,
            effective_date=effective_date,
            certificate_number=certificate or self.idp_certificate_number,
        )

    @event(IdpStatusGranted)
    def _grant(self, basis: str, effective_date: date, certificate_number: str | None) -> None:
        self.idp_status = "active"
        self.idp_status_basis = basis
        self.idp_status_since = effective_date
        self.idp_certificate_number = certificate_number

    def end_idp_status(self, basis: str, effective_date: date, reason: str, today: date) -> None:
        errors: list[FieldError] = []
        on_basis = _reason(errors, basis, "basis")
        why = _reason(errors, reason)
        _past_date(errors, "effective_date", effective_date, today)
        _require(errors)
        if self.idp_status != "active":
            raise InvalidState("IDP status is not active", "basis")
        if self.idp_status_since and effective_date < self.idp_status_since:
            raise ValidationFailed([FieldError("effective_date", "before the status was granted")])
        self._end(basis=on_basis, effective_date=effective_date, reason=why)

    @event(IdpStatusEnded)
    def _end(self, basis: str, effective_date: date, reason: str) -> None:
        self.idp_status = "ended"
        self.idp_status_basis = basis

    def record_death(
        self, date_of_death: date, document_reference: str | None, today: date
    ) -> None:
        errors: list[FieldError] = []
        if date_of_death > today:
            errors.append(FieldError("date_of_death", "must not be in the future"))
        elif date_of_death < self.birth_date:
            errors.append(FieldError("date_of_death", "before the date of birth"))
        reference = text.clean(errors, "document_reference", document_reference, IDENTIFIER)
        _require(errors)
        self._must_be_alive()
        self._died(date_of_death=date_of_death, document_reference=reference)

    @event(DeathRecorded)
    def _died(self, date_of_death: date, document_reference: str | None) -> None:
        self.date_of_death = date_of_death

    def move_to(self, household_id: UUID, reason: str) -> None:
        """Into another household (a member added there, a split): ``reason`` was checked by
        the command that moves the person."""
        self._moved(household_id=household_id, from_household_id=self.household_id, reason=reason)

    @event(MovedToHousehold)
    def _moved(self, household_id: UUID, from_household_id: UUID, reason: str) -> None:
        self.household_id = household_id

    def issue_status_reference(self, verification_code: str) -> None:
        self._referenced(
            verification_code=verification_code,
            status=self.idp_status,
            certificate_number=self.idp_certificate_number,
        )

    @event(StatusReferenceIssued)
    def _referenced(
        self, verification_code: str, status: str, certificate_number: str | None
    ) -> None:
        pass

    def _must_be_alive(self) -> None:
        if self.date_of_death is not None:
            raise InvalidState(f"the person died on {self.date_of_death.isoformat()}")


DETAIL_KINDS = {
    "first_name": NAME,
    "last_name": NAME,
    "patronymic": NAME,
    "idp_certificate_number": IDENTIFIER,
    "registered_address": LINE,
}


def _validate_detail(
    errors: list[FieldError], field: str, value: str | None, today: date
) -> str | None:
    """A corrected detail as it would be stored (text, or a date as YYYY-MM-DD)."""
    if field in DETAIL_KINDS:
        required = "must not be empty" if field in ("first_name", "last_name") else None
        return text.clean(errors, "new_value", value, DETAIL_KINDS[field], required=required)
    if field == "sex":
        one_of(errors, "new_value", value or "", SEXES)
        return value
    if field == "birth_date":
        try:
            born = date.fromisoformat(value or "")
        except (TypeError, ValueError):
            errors.append(FieldError("new_value", "a date, YYYY-MM-DD"))
            return None
        check_birth_date(errors, "new_value", born, today)
        return born.isoformat()
    return None


def check_birth_date(errors: list[FieldError], field: str, born: date, today: date) -> None:
    if born > today:
        errors.append(FieldError(field, "must not be in the future"))
    elif born < EARLIEST_BIRTH_DATE:
        errors.append(FieldError(field, f"not before {EARLIEST_BIRTH_DATE.isoformat()}"))


class Household(CaseAggregate):
    class Registered(CaseAggregate.Created):
        """Version 2 added ``contact_phone``; events stored as version 1 are upcast on read."""

        class_version = 2

        head_person_id: UUID
        members: list[Member]
        origin_settlement_code: str
        current_address: str
        contact_phone: str | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, object]) -> None:
            state["contact_phone"] = None

    class MemberAdded(CaseAggregate.Event):
        person_id: UUID
        fin: str
        relationship: str
        reason: str

    class MemberRemoved(CaseAggregate.Event):
        person_id: UUID
        reason: str
        note: str | None

    class HeadChanged(CaseAggregate.Event):
        head_person_id: UUID
        former_head_person_id: UUID
        former_head_relationship: str
        reason: str

    class MembersSplitOff(CaseAggregate.Event):
        new_household_id: UUID
        person_ids: list[UUID]
        reason: str

    class HousingConditionRecorded(CaseAggregate.Event):
        condition: str
        note: str | None

    class VulnerabilityRecorded(CaseAggregate.Event):
        vulnerability: str
        person_id: UUID | None
        note: str | None

    class VulnerabilityCleared(CaseAggregate.Event):
        vulnerability: str
        person_id: UUID | None
        reason: str

    class CircumstancesVerified(CaseAggregate.Event):
        """What a verification (a visit, a documents check) found about the circumstances the
        exclusions of Cabinet Resolution No. 65 depend on."""

        living_at_registered_address: bool
        private_housing_after_displacement: bool
        sham_marriage_or_divorce: bool
        verified_on: date
        document_reference: str
        note: str | None

    @event(Registered)
    def __init__(
        self,
        head_person_id: UUID,
        members: list[Member],
        origin_settlement_code: str,
        current_address: str,
        contact_phone: str | None,
    ) -> None:
        self.head_person_id = head_person_id
        self.members = list(members)
        self.origin_settlement_code = origin_settlement_code
        self.current_address = current_address
        self.contact_phone = contact_phone
        self.housing_condition: str | None = None
        self.vulnerabilities: list[tuple[str, UUID | None]] = []
        self.circumstances: dict[str, Any] | None = None

    def member(self, person_id: UUID) -> Member | None:
        return next((m for m in self.members if m.person_id == person_id), None)

    def add_member(self, person_id: UUID, fin: str, relationship: str, reason: str) -> None:
        errors: list[FieldError] = []
        if relationship == "head":
            errors.append(
                FieldError("relationship", "a household has one head: change the head instead")
            )
        else:
            one_of(errors, "relationship", relationship, RELATIONSHIPS)
        one_of(errors, "reason", reason, MEMBER_ADDED_REASONS)
        _require(errors)
        if self.member(person_id):
            raise InvalidState("the person is already a member", "fin")
        if len(self.members) >= MAX_MEMBERS:
            raise InvalidState(
                f"the household has {len(self.members)} members, the most one may have", "fin"
            )
        self._added(person_id=person_id, fin=fin, relationship=relationship, reason=reason)

    @event(MemberAdded)
    def _added(self, person_id: UUID, fin: str, relationship: str, reason: str) -> None:
        self.members.append(Member(person_id, fin, relationship))

    def remove_member(self, person_id: UUID, reason: str, note: str | None) -> None:
        errors: list[FieldError] = []
        one_of(errors, "reason", reason, MEMBER_REMOVED_REASONS)
        cleaned_note = _note(errors, note)
        _require(errors)
        if not self.member(person_id):
            raise InvalidState("not a member of this household", "person_id")
        if person_id == self.head_person_id:
            raise InvalidState("the head cannot be removed: change the head first", "person_id")
        self._removed(person_id=person_id, reason=reason, note=cleaned_note)

    @event(MemberRemoved)
    def _removed(self, person_id: UUID, reason: str, note: str | None) -> None:
        self.members = [m for m in self.members if m.person_id != person_id]
        self.vulnerabilities = [v for v in self.vulnerabilities if v[1] != person_id]

    def change_head(self, head_person_id: UUID, former_head_relationship: str, reason: str) -> None:
        errors: list[FieldError] = []
        why = _reason(errors, reason)
        if former_head_relationship == "head":
            errors.append(
                FieldError("former_head_relationship", "the former head's new relationship")
            )
        else:
            one_of(errors, "former_head_relationship", former_head_relationship, RELATIONSHIPS)
        _require(errors)
        if not self.member(head_person_id):
            raise InvalidState("the new head must be a member of the household", "head_person_id")
        if head_person_id == self.head_person_id:
            raise InvalidState("already the head", "head_person_id")
        self._head_changed(
            head_person_id=head_person_id,
            former_head_person_id=self.head_person_id,
            former_head_relationship=former_head_relationship,
            reason=why,
        )

    @event(HeadChanged)
    def _head_changed(
        self,
        head_person_id: UUID,
        former_head_person_id: UUID,
        former_head_relationship: str,
        reason: str,
    ) -> None:
        updated = []
        for m in self.members:
            if m.person_id == head_person_id:
                m = Member(m.person_id, m.fin, "head")
            elif m.person_id == former_head_person_id:
                m = Member(m.person_id, m.fin, former_head_relationship)
            updated.append(m)
        self.members = updated
        self.head_person_id = head_person_id

    def split_off(self, new_household_id: UUID, person_ids: list[UUID], reason: str) -> None:
        errors: list[FieldError] = []
        why = _reason(errors, reason)
        if not person_ids:
            errors.append(FieldError("person_ids", "name at least one member to split off"))
        _require(errors)
        for person_id in person_ids:
            if not self.member(person_id):
                raise InvalidState(f"{person_id} is not a member of this household", "person_ids")
        if self.head_person_id in person_ids:
            raise InvalidState(
                "the head stays: change the head first to split the head off", "person_ids"
            )
        self._split(new_household_id=new_household_id, person_ids=list(person_ids), reason=why)

    @event(MembersSplitOff)
    def _split(self, new_household_id: UUID, person_ids: list[UUID], reason: str) -> None:
        self.members = [m for m in self.members if m.person_id not in person_ids]
        self.vulnerabilities = [v for v in self.vulnerabilities if v[1] not in person_ids]

    def record_housing_condition(self, condition: str, note: str | None) -> None:
        errors: list[FieldError] = []
        one_of(errors, "condition", condition, HOUSING_CONDITIONS)
        cleaned_note = _note(errors, note)
        _require(errors)
        if condition == self.housing_condition:
            raise InvalidState(f"the housing condition is already {condition}", "condition")
        self._housing(condition=condition, note=cleaned_note)

    @event(HousingConditionRecorded)
    def _housing(self, condition: str, note: str | None) -> None:
        self.housing_condition = condition

    def record_vulnerability(
        self, vulnerability: str, person_id: UUID | None, note: str | None
    ) -> None:
        errors: list[FieldError] = []
        one_of(errors, "vulnerability", vulnerability, VULNERABILITIES)
        cleaned_note = _note(errors, note)
        _require(errors)
        if person_id is not None and not self.member(person_id):
            raise InvalidState("not a member of this household", "person_id")
        if (vulnerability, person_id) in self.vulnerabilities:
            raise InvalidState(f"{vulnerability} is already recorded", "vulnerability")
        self._vulnerable(vulnerability=vulnerability, person_id=person_id, note=cleaned_note)

    @event(VulnerabilityRecorded)
    def _vulnerable(self, vulnerability: str, person_id: UUID | None, note: str | None) -> None:
        self.vulnerabilities.append((vulnerability, person_id))

    def clear_vulnerability(self, vulnerability: str, person_id: UUID | None, reason: str) -> None:
        errors: list[FieldError] = []
        one_of(errors, "vulnerability", vulnerability, VULNERABILITIES)
        why = _reason(errors, reason)
        _require(errors)
        if (vulnerability, person_id) not in self.vulnerabilities:
            raise InvalidState(f"{vulnerability} is not recorded", "vulnerability")
        self._cleared(vulnerability=vulnerability, person_id=person_id, reason=why)

    @event(VulnerabilityCleared)
    def _cleared(self, vulnerability: str, person_id: UUID | None, reason: str) -> None:
        self.vulnerabilities.remove((vulnerability, person_id))

    def verify_circumstances(
        self,
        living_at_registered_address: bool,
        private_housing_after_displacement: bool,
        sham_marriage_or_divorce: bool,
        verified_on: date,
        document_reference: str,
        note: str | None,
        today: date,
    ) -> None:
        errors: list[FieldError] = []
        if verified_on > today:
            errors.append(FieldError("verified_on", "cannot be in the future"))
        reference = text.clean(
            errors,
            "document_reference",
            document_reference,
            IDENTIFIER,
            required="the verification act is required",
        )
        cleaned_note = _note(errors, note)
        _require(errors)
        self._verified(
            living_at_registered_address=living_at_registered_address,
            private_housing_after_displacement=private_housing_after_displacement,
            sham_marriage_or_divorce=sham_marriage_or_divorce,
            verified_on=verified_on,
            document_reference=reference or "",
            note=cleaned_note,
        )

    @event(CircumstancesVerified)
    def _verified(
        self,
        living_at_registered_address: bool,
        private_housing_after_displacement: bool,
        sham_marriage_or_divorce: bool,
        verified_on: date,
        document_reference: str,
        note: str | None,
    ) -> None:
        self.circumstances = {
            "living_at_registered_address": living_at_registered_address,
            "private_housing_after_displacement": private_housing_after_displacement,
            "sham_marriage_or_divorce": sham_marriage_or_divorce,
            "verified_on": verified_on,
            "document_reference": document_reference,
        }
