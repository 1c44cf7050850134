"""Registry: the people displaced and the households (cases) they belong to.

A person's id is uuid5 of their FIN, so a second registration of the same FIN collides
with the first in the event store (same aggregate id, version 1) and is rejected by its
own concurrency check, however the requests interleave.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import event

from domain.base import CaseAggregate, DomainError, FieldError, ValidationFailed
from domain.geography import settlement

PERSON_NAMESPACE = uuid5(NAMESPACE_URL, "urn:reintegration:person:fin")
FIN_PATTERN = re.compile(r"^[0-9A-Z]{7}$")
PHONE_PATTERN = re.compile(r"^\+?[0-9]{9,15}$")
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
MAX_NAME_LENGTH = 100


class RegistryError(DomainError):
    pass


class PersonAlreadyRegistered(RegistryError):
    def __init__(self, fin: str) -> None:
        super().__init__(f"a person with FIN {fin} is already registered")
        self.fin = fin


def normalise_fin(fin: str) -> str:
    return fin.strip().upper()


def normalise_phone(phone: str | None) -> str | None:
    """Digits with an optional leading +; spaces, dashes and brackets are dropped."""
    if phone is None:
        return None
    cleaned = re.sub(r"[\s()\-]", "", phone)
    return cleaned or None


def person_id_for(fin: str) -> UUID:
    return uuid5(PERSON_NAMESPACE, normalise_fin(fin))


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


@dataclass(frozen=True)
class RegisterHousehold:
    members: list[NewMember]
    origin_settlement_code: str
    current_address: str
    contact_phone: str | None = None


class Person(CaseAggregate):
    class Registered(CaseAggregate.Created):
        fin: str
        first_name: str
        last_name: str
        patronymic: str | None
        birth_date: date
        sex: str
        household_id: UUID

        @property
        def case_id(self) -> UUID:
            return self.household_id

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
    ) -> None:
        self.fin = fin
        self.first_name = first_name
        self.last_name = last_name
        self.patronymic = patronymic
        self.birth_date = birth_date
        self.sex = sex
        self.household_id = household_id


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


def register_household(command: RegisterHousehold, today: date) -> tuple[Household, list[Person]]:
    """Validate a registration, then create the household and one Person per member.

    Every rule is checked before anything is created, and every broken rule is reported.
    """
    errors = _validate(command, today)
    if errors:
        raise ValidationFailed(errors)
    members = [
        Member(
            person_id=person_id_for(m.fin), fin=normalise_fin(m.fin), relationship=m.relationship
        )
        for m in command.members
    ]
    head = next(member for member in members if member.relationship == "head")
    household = Household(
        head_person_id=head.person_id,
        members=members,
        origin_settlement_code=command.origin_settlement_code,
        current_address=command.current_address.strip(),
        contact_phone=normalise_phone(command.contact_phone),
    )
    persons = [
        Person(
            fin=member.fin,
            first_name=m.first_name.strip(),
            last_name=m.last_name.strip(),
            patronymic=(m.patronymic or "").strip() or None,
            birth_date=m.birth_date,
            sex=m.sex,
            household_id=household.id,
        )
        for m, member in zip(command.members, members, strict=True)
    ]
    return household, persons


def _validate(command: RegisterHousehold, today: date) -> list[FieldError]:
    errors: list[FieldError] = []
    if not command.members:
        errors.append(FieldError("members", "a household needs at least one member"))
    seen: dict[str, int] = {}
    heads: list[int] = []
    for i, m in enumerate(command.members):
        at = f"members[{i}]"
        fin = normalise_fin(m.fin)
        if not FIN_PATTERN.match(fin):
            errors.append(FieldError(f"{at}.fin", "a FIN is 7 Latin letters or digits"))
        elif fin in seen:
            errors.append(FieldError(f"{at}.fin", f"the same FIN as members[{seen[fin]}]"))
        else:
            seen[fin] = i
        for name in ("first_name", "last_name"):
            value = getattr(m, name).strip()
            if not value:
                errors.append(FieldError(f"{at}.{name}", "must not be empty"))
            elif len(value) > MAX_NAME_LENGTH:
                errors.append(FieldError(f"{at}.{name}", f"at most {MAX_NAME_LENGTH} characters"))
        if m.patronymic is not None and len(m.patronymic.strip()) > MAX_NAME_LENGTH:
            errors.append(FieldError(f"{at}.patronymic", f"at most {MAX_NAME_LENGTH} characters"))
        if m.birth_date > today:
            errors.append(FieldError(f"{at}.birth_date", "must not be in the future"))
        if m.sex not in SEXES:
            errors.append(FieldError(f"{at}.sex", f"must be one of {', '.join(SEXES)}"))
        if m.relationship not in RELATIONSHIPS:
            errors.append(
                FieldError(f"{at}.relationship", f"must be one of {', '.join(RELATIONSHIPS)}")
            )
        elif m.relationship == "head":
            heads.append(i)
    if command.members and not heads:
        errors.append(FieldError("members", "exactly one member must have relationship 'head'"))
    for extra in heads[1:]:
        errors.append(
            FieldError(f"members[{extra}].relationship", f"members[{heads[0]}] is already the head")
        )
    if settlement(command.origin_settlement_code) is None:
        errors.append(
            FieldError(
                "origin_settlement_code",
                f"unknown settlement code {command.origin_settlement_code!r}",
            )
        )
    if not command.current_address.strip():
        errors.append(FieldError("current_address", "must not be empty"))
    phone = normalise_phone(command.contact_phone)
    if phone is not None and not PHONE_PATTERN.match(phone):
        errors.append(FieldError("contact_phone", "9 to 15 digits, optionally after a +"))
    return errors
