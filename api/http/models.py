"""Request models shared by the HTTP routes, and the field types they are made of.

Each text field is one of the kinds of :mod:`domain.text` (a name, an identifier, a line, a
paragraph): the OpenAPI document gives its maximum length and the characters it may not
hold, and the request is checked by the same rules the domain applies to the command line and
the legacy import, so that every broken rule of a request, wrong types included, is reported
at once. Every integer has bounds; every path and query parameter has a pattern or bounds.
"""

from __future__ import annotations

from datetime import date
from functools import partial
from typing import Annotated, Any, Literal

from fastapi import Path, Query
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from domain import registry, text
from domain.geography import settlements
from domain.text import IDENTIFIER, LINE, NAME, PARAGRAPH, TextKind

Strict = ConfigDict(extra="forbid")

ONE_LINE = r"^[^\x00-\x1f\x7f-\x9f]*$"
SEVERAL_LINES = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"
FIN_PATTERN = r"^[0-9A-Za-z]{7}$"
DISTRICT_PATTERN = r"^[A-Z]{2,3}$"
RULE_SET_PATTERN = r"^[a-z0-9][a-z0-9-]{1,62}$"
QUESTIONNAIRE_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
VERIFICATION_CODE_PATTERN = r"^[0-9A-Fa-f]{4}(-[0-9A-Fa-f]{4}){3}$"
MAX_VERSION = 10_000
MAX_OFFSET = 1_000_000
MAX_ID = 2**63 - 1


def _checked(kind: TextKind, value: str) -> str:
    reason = text.problem(value, kind)
    if reason is not None:
        raise ValueError(reason)
    cleaned = text.normalise(value, kind)
    if len(cleaned) > kind.max_length:  # counted in NFC, as the domain counts
        raise ValueError(f"at most {kind.max_length} characters")
    return cleaned


def text_field(kind: TextKind, description: str | None = None, **extra: Any) -> Any:
    """A text field of ``kind``: its length and characters documented (and checked, in NFC,
    by the validator of the field types below, or by the domain)."""
    rules = (
        f"{kind.name}: at most {kind.max_length} characters, "
        + ("tab and line breaks allowed" if kind.multiline else "one line")
        + "; NFC; no control characters"
        + ("; no invisible or formatting characters" if kind.strict else "")
    )
    return Field(
        description=f"{description} ({rules})" if description else rules,
        json_schema_extra={
            "maxLength": kind.max_length,
            "pattern": SEVERAL_LINES if kind.multiline else ONE_LINE,
        },
        **extra,
    )


def _text(kind: TextKind) -> Any:
    return AfterValidator(partial(_checked, kind))


Name = Annotated[str, _text(NAME), text_field(NAME)]
Identifier = Annotated[str, _text(IDENTIFIER), text_field(IDENTIFIER)]
Line = Annotated[str, _text(LINE), text_field(LINE)]
Paragraph = Annotated[str, _text(PARAGRAPH), text_field(PARAGRAPH)]
Fin = Annotated[
    str,
    Field(
        description="National personal id (FIN): exactly 7 Latin letters or digits",
        pattern=FIN_PATTERN,
        examples=["5ZK2M7P"],
    ),
]
SETTLEMENT_CODES = tuple(settlements())
SettlementCode = Annotated[
    Literal[SETTLEMENT_CODES],  # type: ignore[valid-type]
    Field(description="Settlement code of the reference data", examples=["ZAN-002"]),
]
Sex = Literal[registry.SEXES]  # type: ignore[valid-type]
Relationship = Literal[registry.RELATIONSHIPS]  # type: ignore[valid-type]
HousingCondition = Literal[registry.HOUSING_CONDITIONS]  # type: ignore[valid-type]
Vulnerability = Literal[registry.VULNERABILITIES]  # type: ignore[valid-type]
MemberAddedReason = Literal[registry.MEMBER_ADDED_REASONS]  # type: ignore[valid-type]
MemberRemovedReason = Literal[registry.MEMBER_REMOVED_REASONS]  # type: ignore[valid-type]
CorrectableField = Literal[registry.CORRECTABLE_FIELDS]  # type: ignore[valid-type]
IdpStatus = Literal[registry.IDP_STATUSES]  # type: ignore[valid-type]

# Path and query parameters.
FinPath = Annotated[str, Path(pattern=FIN_PATTERN, description="FIN: 7 Latin letters or digits")]
SettlementPath = Annotated[
    Literal[SETTLEMENT_CODES],  # type: ignore[valid-type]
    Path(description="Settlement code of the reference data"),
]
RuleSetPath = Annotated[str, Path(pattern=RULE_SET_PATTERN, description="Rule set id")]
QuestionnairePath = Annotated[
    str, Path(pattern=QUESTIONNAIRE_PATTERN, description="Questionnaire code")
]
VersionPath = Annotated[int, Path(ge=1, le=MAX_VERSION)]
Limit = Annotated[int, Query(ge=1, le=500, description="Page size, 1 to 500")]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description=f"Rows to skip, 0 to {MAX_OFFSET}")]
OptionalLimit = Annotated[
    int | None, Query(ge=1, le=500, description="Page size, 1 to 500; every row when absent")
]
TotalInHeader = Annotated[
    bool,
    Query(
        description="Also count every row the filters match, in the `X-Total-Count` header, "
        "for a pager that shows it: one more query over the whole result."
    ),
]
TOTAL_HEADER = {
    "X-Total-Count": {
        "description": "Every row the filters match (with `total=true`)",
        "schema": {"type": "integer"},
    }
}
"""The answer's header of a list with ``total=true``, as the OpenAPI document names it."""
SettlementQuery = Annotated[
    Literal[SETTLEMENT_CODES] | None,  # type: ignore[valid-type]
    Query(description="Settlement code of the reference data"),
]
DistrictQuery = Annotated[str | None, Query(pattern=DISTRICT_PATTERN, description="District code")]
NamePrefixQuery = Annotated[
    str | None,
    Query(
        max_length=NAME.max_length,
        pattern=ONE_LINE,
        description="Name prefix, last name first (Azerbaijani letters folded correctly)",
    ),
]
FinQuery = Annotated[str | None, Query(pattern=FIN_PATTERN, description="A member's FIN")]


class MemberIn(BaseModel):
    model_config = Strict
    fin: Fin
    first_name: Name = Field(examples=["Aysel"])
    last_name: Name = Field(examples=["Məmmədova"])
    patronymic: Name | None = Field(default=None, examples=["Rauf qızı"])
    birth_date: date = Field(examples=["1984-03-12"], description="Not before 1900-01-01")
    sex: Sex = Field(examples=["female"])
    relationship: Relationship = Field(description="Relationship to the head", examples=["head"])
    idp_certificate_number: Identifier | None = Field(default=None, examples=["IDP-0123456"])
    registered_address: Line | None = None


class HouseholdIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "origin_settlement_code": "ZAN-002",
                    "current_address": "Bakı, Xətai rayonu, yataqxana 4, otaq 12",
                    "members": [
                        {
                            "fin": "5ZK2M7P",
                            "first_name": "Aysel",
                            "last_name": "Məmmədova",
                            "patronymic": "Rauf qızı",
                            "birth_date": "1984-03-12",
                            "sex": "female",
                            "relationship": "head",
                        }
                    ],
                    "contact_phone": "+994 50 123 45 67",
                }
            ]
        },
    )
    members: list[MemberIn] = Field(
        description=f"Every member, exactly one with relationship 'head' (1 to "
        f"{registry.MAX_MEMBERS})",
        min_length=1,
        max_length=registry.MAX_MEMBERS,
    )
    origin_settlement_code: SettlementCode
    current_address: Line = Field(examples=["Bakı, Xətai r-nu, yataqxana 4, otaq 12"])
    contact_phone: Annotated[str, _text(LINE.at_most(registry.MAX_PHONE_INPUT))] | None = Field(
        default=None,
        max_length=registry.MAX_PHONE_INPUT,
        description="Where the household can be reached: 9 to 15 digits, optionally after a +",
        examples=["+994501234567"],
    )
