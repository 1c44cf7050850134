"""Registering a household: every rule checked, every broken rule reported at once, then the
household and one Person per member created (and the rules for a member who joins later, and
for members who split off into a household of their own)."""

from __future__ import annotations

from datetime import date
from uuid import UUID

from domain import text
from domain.base import FieldError, ValidationFailed
from domain.geography import settlement
from domain.registry import (
    MAX_MEMBERS,
    MAX_PHONE_INPUT,
    PHONE_PATTERN,
    RELATIONSHIPS,
    SEXES,
    Household,
    InvalidState,
    Member,
    NewMember,
    Person,
    RegisterHousehold,
    check_birth_date,
    normalise_phone,
    one_of,
    person_id_for,
)
from domain.text import IDENTIFIER, LINE, NAME


def register_household(command: RegisterHousehold, today: date) -> tuple[Household, list[Person]]:
    """Validate a registration, then create the household and one Person per member.

    Every rule is checked before anything is created, and every broken rule is reported.
    """
    errors: list[FieldError] = []
    registration = _validate(errors, command, today)
    if errors:
        raise ValidationFailed(errors)
    members = [
        Member(person_id=person_id_for(m.fin), fin=m.fin, relationship=m.relationship)
        for m in registration.members
    ]
    head = next(member for member in members if member.relationship == "head")
    household = Household(
        head_person_id=head.person_id,
        members=members,
        origin_settlement_code=registration.origin_settlement_code,
        current_address=registration.current_address,
        contact_phone=registration.contact_phone,
    )
    persons = [
        new_person(m, household.id, registration.origin_settlement_code)
        for m in registration.members
    ]
    return household, persons


def new_person(member: NewMember, household_id: UUID, origin_settlement_code: str) -> Person:
    """A Person registered from a member already validated (see :func:`validate_member`)."""
    return Person(
        fin=member.fin,
        first_name=member.first_name,
        last_name=member.last_name,
        patronymic=member.patronymic,
        birth_date=member.birth_date,
        sex=member.sex,
        household_id=household_id,
        idp_certificate_number=member.idp_certificate_number,
        origin_settlement_code=origin_settlement_code,
        registered_address=member.registered_address,
    )


def validate_member(errors: list[FieldError], at: str, m: NewMember, today: date) -> NewMember:
    """A member as it would be recorded: every text field cleaned (NFC, no control or
    invisible characters, within its length), the FIN checked and upper-cased; each broken
    rule appended to ``errors`` under ``at`` (``members[2]``, say)."""
    prefix = f"{at}." if at else ""
    fin = text.clean_fin(errors, f"{prefix}fin", m.fin)
    first = text.clean(
        errors, f"{prefix}first_name", m.first_name, NAME, required="must not be empty"
    )
    last = text.clean(errors, f"{prefix}last_name", m.last_name, NAME, required="must not be empty")
    patronymic = text.clean(errors, f"{prefix}patronymic", m.patronymic, NAME)
    if isinstance(m.birth_date, date):
        check_birth_date(errors, f"{prefix}birth_date", m.birth_date, today)
    else:
        errors.append(FieldError(f"{prefix}birth_date", "a date, YYYY-MM-DD"))
    one_of(errors, f"{prefix}sex", m.sex, SEXES)
    one_of(errors, f"{prefix}relationship", m.relationship, RELATIONSHIPS)
    certificate = text.clean(
        errors, f"{prefix}idp_certificate_number", m.idp_certificate_number, IDENTIFIER
    )
    registered_address = text.clean(
        errors, f"{prefix}registered_address", m.registered_address, LINE
    )
    return NewMember(
        fin=fin or "",
        first_name=first or "",
        last_name=last or "",
        patronymic=patronymic,
        birth_date=m.birth_date,
        sex=m.sex,
        relationship=m.relationship,
        idp_certificate_number=certificate,
        registered_address=registered_address,
    )


def _validate(
    errors: list[FieldError], command: RegisterHousehold, today: date
) -> RegisterHousehold:
    if not command.members:
        errors.append(FieldError("members", "a household needs at least one member"))
    elif len(command.members) > MAX_MEMBERS:
        errors.append(FieldError("members", f"at most {MAX_MEMBERS} members"))
        return command  # not worth checking each of thousands
    seen: dict[str, int] = {}
    heads: list[int] = []
    members = []
    for i, given in enumerate(command.members):
        m = validate_member(errors, f"members[{i}]", given, today)
        members.append(m)
        if m.fin and m.fin in seen:
            errors.append(
                FieldError(f"members[{i}].fin", f"the same FIN as members[{seen[m.fin]}]")
            )
        elif m.fin:
            seen[m.fin] = i
        if m.relationship == "head":
            heads.append(i)
    if command.members and not heads:
        errors.append(FieldError("members", "exactly one member must have relationship 'head'"))
    for extra in heads[1:]:
        errors.append(
            FieldError(f"members[{extra}].relationship", f"members[{heads[0]}] is already the head")
        )
    origin = command.origin_settlement_code
    if not isinstance(origin, str) or settlement(origin) is None:
        errors.append(
            FieldError("origin_settlement_code", "not a settlement code of the reference data")
        )
    address = text.clean(
        errors, "current_address", command.current_address, LINE, required="must not be empty"
    )
    phone = _phone(errors, command.contact_phone)
    return RegisterHousehold(members, origin, address or "", phone)


def _phone(errors: list[FieldError], given: str | None) -> str | None:
    typed = text.clean(errors, "contact_phone", given, LINE.at_most(MAX_PHONE_INPUT))
    phone = normalise_phone(typed)
    if phone is not None and PHONE_PATTERN.fullmatch(phone) is None:
        errors.append(FieldError("contact_phone", "9 to 15 digits, optionally after a +"))
        return None
    return phone


def split_household(
    household: Household,
    persons: dict[UUID, Person],
    head_person_id: UUID,
    relationships: dict[UUID, str],
    current_address: str,
    reason: str,
) -> Household:
    """Members leave ``household`` to form a new one: the split is recorded on the old
    household, the new one is registered with them, and each person moves. ``persons`` holds
    the members named in ``relationships``. Returns the new household (not yet saved)."""
    errors: list[FieldError] = []
    address = text.clean(
        errors, "current_address", current_address, LINE, required="must not be empty"
    )
    why = text.clean(errors, "reason", reason, LINE, required="a reason is required")
    if len(relationships) > MAX_MEMBERS:
        errors.append(FieldError("relationships", f"at most {MAX_MEMBERS} members"))
    if head_person_id not in relationships:
        errors.append(FieldError("head_person_id", "must be one of the members split off"))
    for person_id, relationship in relationships.items():
        expected = "head" if person_id == head_person_id else relationship
        if relationship != expected or relationship not in RELATIONSHIPS:
            errors.append(
                FieldError(
                    f"relationships.{person_id}",
                    "the new head is 'head'; others one of " + ", ".join(RELATIONSHIPS[1:]),
                )
            )
    if errors:
        raise ValidationFailed(errors)
    members = []
    for person_id, relationship in relationships.items():
        existing = household.member(person_id)
        if existing is None or person_id not in persons:
            raise InvalidState(f"{person_id} is not a member of this household", "relationships")
        members.append(Member(person_id, existing.fin, relationship))
    new_household = Household(
        head_person_id=head_person_id,
        members=members,
        origin_settlement_code=household.origin_settlement_code,
        current_address=address or "",
        contact_phone=None,
    )
    household.split_off(new_household.id, list(relationships), why or "")
    for person_id in relationships:
        persons[person_id].move_to(new_household.id, why or "")
    return new_household


def join_household(
    household: Household,
    member: NewMember,
    reason: str,
    registered: Person | None,
    registered_in: Household | None,
    today: date,
) -> Person:
    """A person joins ``household`` (birth, marriage, adoption...): a newcomer is registered
    from ``member``, checked as a registration would check it; a person already registered
    (``registered``) who belongs to no household any more (``registered_in`` no longer lists
    them) moves in. Returns the person, with the household changed (neither saved)."""
    errors: list[FieldError] = []
    member = validate_member(errors, "", member, today)
    if errors:
        raise ValidationFailed(errors)
    if registered is None:
        person = new_person(member, household.id, household.origin_settlement_code)
    else:
        if registered_in is not None and registered_in.member(registered.id) is not None:
            raise InvalidState(
                f"the person is a member of household {registered_in.id}: remove them there first",
                "fin",
            )
        person = registered
        person.move_to(household.id, reason)
    household.add_member(person.id, person.fin, member.relationship, reason)
    return person
