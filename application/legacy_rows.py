"""Reading the existing registry's rows: the export's columns, and one household's rows turned
into its aggregates, validated by the same rules as the API (domain/text.py for every text,
domain/registration.py for the rest). The import itself is :mod:`application.legacy_import`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from domain import text
from domain.base import FieldError, ValidationFailed
from domain.registration import register_household
from domain.registry import (
    HOUSING_CONDITIONS,
    RELATIONSHIPS,
    VULNERABILITIES,
    NewMember,
    RegisterHousehold,
)

COLUMNS = (
    "household_ref",
    "relationship",
    "fin",
    "last_name",
    "first_name",
    "patronymic",
    "birth_date",
    "sex",
    "idp_certificate_number",
    "idp_status_since",
    "origin_settlement_code",
    "current_address",
    "registered_address",
    "housing_condition",
    "vulnerabilities",
    "contact_phone",
)
"""The columns of a row (one person), in the order of the documented export."""
SEX = {
    "f": "female",
    "female": "female",
    "qadın": "female",
    "qadin": "female",
    "m": "male",
    "male": "male",
    "kişi": "male",
    "kisi": "male",
}
SOURCE = "legacy registry import"


@dataclass
class Row:
    line: int
    values: dict[str, str]
    problem: str | None = None

    @property
    def ref(self) -> str:
        return self.values.get("household_ref", "")

    @property
    def fin(self) -> str:
        return self.values.get("fin", "")


class RowProblem(Exception):
    """A value the importer cannot read, in one row."""

    def __init__(self, column: str, reason: str) -> None:
        super().__init__(f"{column}: {reason}")
        self.column = column
        self.reason = reason


def _date(value: str, column: str) -> date:
    """YYYY-MM-DD, or DD.MM.YYYY as older exports write it."""
    try:
        if len(value) != 10 or not value.isascii():
            pass
        elif value[4] == "-" and value[7] == "-":
            return date.fromisoformat(value)
        elif value[2] == "." and value[5] == "." and value.replace(".", "").isdigit():
            return date(int(value[6:]), int(value[3:5]), int(value[:2]))
    except ValueError:
        pass
    raise RowProblem(column, "not a date (YYYY-MM-DD or DD.MM.YYYY)")


def _keyword(value: str, known: dict[str, str]) -> str:
    """A code word in any letter case (``KİŞİ``, ``QADIN``, ``Child``) as the code it means;
    unchanged when it means none (the domain then says what it may be)."""
    if value in known:
        return known[value]
    for form in text.keyword_forms(value):
        if form in known:
            return known[form]
    return value


def _codes(codes: tuple[str, ...]) -> dict[str, str]:
    return {code: code for code in codes}


RELATIONSHIP_CODES = _codes(RELATIONSHIPS)
HOUSING_CONDITION_CODES = _codes(HOUSING_CONDITIONS)
VULNERABILITY_CODES = _codes(VULNERABILITIES)


def build(rows: list[Row], today: date) -> list[Any]:
    """The household's aggregates, validated by the domain: ``[household, *persons]`` with
    the IDP statuses, housing condition and vulnerabilities the rows record."""
    problems: list[FieldError] = []
    members = []
    for i, row in enumerate(rows):
        v = row.values
        try:
            born = _date(v.get("birth_date", ""), "birth_date")
        except RowProblem as exc:
            problems.append(FieldError(f"members[{i}].birth_date", exc.reason))
            born = date.min
        members.append(
            NewMember(
                fin=v.get("fin", ""),
                first_name=v.get("first_name", ""),
                last_name=v.get("last_name", ""),
                patronymic=v.get("patronymic") or None,
                birth_date=born,
                sex=_keyword(v.get("sex", ""), SEX),
                relationship=_keyword(v.get("relationship", ""), RELATIONSHIP_CODES),
                idp_certificate_number=v.get("idp_certificate_number") or None,
                registered_address=v.get("registered_address") or None,
            )
        )
    head = next(
        (
            r
            for r in rows
            if _keyword(r.values.get("relationship", ""), RELATIONSHIP_CODES) == "head"
        ),
        rows[0],
    )
    h = head.values
    command = RegisterHousehold(
        members,
        h.get("origin_settlement_code", ""),
        h.get("current_address", ""),
        h.get("contact_phone") or None,
    )
    try:
        household, persons = register_household(command, today)
    except ValidationFailed as exc:
        read = {p.field for p in problems}
        raise ValidationFailed(problems + [e for e in exc.errors if e.field not in read]) from None
    if problems:
        raise ValidationFailed(problems)
    for i, (person, row) in enumerate(zip(persons, rows, strict=True)):
        since = row.values.get("idp_status_since")
        if since:
            try:
                effective = _date(since, "idp_status_since")
            except RowProblem as exc:
                raise ValidationFailed(
                    [FieldError(f"members[{i}].idp_status_since", exc.reason)]
                ) from None
            try:
                person.grant_idp_status(SOURCE, effective, person.idp_certificate_number, today)
            except ValidationFailed as exc:
                raise ValidationFailed(
                    [FieldError(f"members[{i}].idp_status_since", e.reason) for e in exc.errors]
                ) from None
    condition = h.get("housing_condition")
    if condition:
        household.record_housing_condition(_keyword(condition, HOUSING_CONDITION_CODES), SOURCE)
    for vulnerability in dict.fromkeys(
        _keyword(v.strip(), VULNERABILITY_CODES)
        for v in h.get("vulnerabilities", "").split(";")
        if v.strip()
    ):
        household.record_vulnerability(vulnerability, None, SOURCE)
    return [household, *persons]
